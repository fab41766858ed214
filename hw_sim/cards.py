"""Card personalities for the virtual smart card (see :mod:`hw_sim.vpcd`).

Each personality answers APDUs the way a kind of real card does. The PANs are the
public test numbers 4111111111111111, 5555555555554444 and 4761739001010119;
:data:`CARDS` says which card has which PAN (or UID), so tests can compute the
expected token with ``agent.carddata.tokens``.

The TLV answers are built here with a tiny encoder of their own, on purpose not
the parser's: the simulator must not share a bug with the code it tests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

# ATRs. Contactless cards get a PC/SC part 3 pseudo-ATR as a reader builds it.
ATR_CONTACTLESS_EMV = bytes.fromhex("3B8880010000000000718100F9")   # ISO 14443-4 (T=1)
ATR_CONTACT_T0 = bytes.fromhex("3B6800000073C84013009000")          # T=0 only
ATR_CONTACT_T1 = bytes.fromhex("3B8A800114000000000000000000")      # hypothetical T=1
ATR_NTAG = bytes.fromhex("3B8F8001804F0CA0000003060300030000000068")  # NTAG/Ultralight

EXPIRY = "2812"        # YYMM, December 2028, on every test card
PPSE = b"2PAY.SYS.DDF01"
PSE = b"1PAY.SYS.DDF01"
AID_VISA = bytes.fromhex("A0000000031010")
AID_MC = bytes.fromhex("A0000000041010")

SW_OK = b"\x90\x00"
SW_NOT_FOUND = b"\x6A\x82"
SW_RECORD_NOT_FOUND = b"\x6A\x83"
SW_WRONG_LENGTH = b"\x67\x00"
SW_CONDITIONS = b"\x69\x85"
SW_INS = b"\x6D\x00"


def tlv(tag: int, value: bytes) -> bytes:
    """BER-TLV encode (simulator side)."""
    tag_b = tag.to_bytes((tag.bit_length() + 7) // 8 or 1, "big")
    n = len(value)
    if n < 0x80:
        length = bytes([n])
    elif n < 0x100:
        length = bytes([0x81, n])
    else:
        length = bytes([0x82, n >> 8, n & 0xFF])
    return tag_b + length + value


def _bcd_pan(pan: str) -> bytes:
    return bytes.fromhex(pan + ("F" if len(pan) % 2 else ""))


def track2_eq(pan: str, expiry: str = EXPIRY, service: str = "201") -> bytes:
    """Track 2 equivalent data (57): PAN D YYMM service discretionary, F-padded."""
    text = f"{pan}D{expiry}{service}0000000000000"
    if len(text) % 2:
        text += "F"
    return bytes.fromhex(text)


def fci(name: bytes, *, pdol: bytes | None = None, label: bytes = b"", extra: bytes = b"") -> bytes:
    """An FCI template for SELECT answers."""
    prop = b""
    if label:
        prop += tlv(0x50, label)
    prop += tlv(0x87, b"\x01")
    if pdol is not None:
        prop += tlv(0x9F38, pdol)
    return tlv(0x6F, tlv(0x84, name) + tlv(0xA5, prop + extra))


def dol_length(dol: bytes) -> int:
    """Total length a DOL asks for (simulator side)."""
    total, i = 0, 0
    while i < len(dol):
        first = dol[i]
        i += 1
        if first & 0x1F == 0x1F:
            while dol[i] & 0x80:
                i += 1
            i += 1
        total += dol[i]
        i += 1
    return total


@dataclass
class EmvApp:
    """One payment application on a simulated card."""

    aid: bytes
    label: bytes
    pdol: bytes | None
    gpo: Callable[[bytes], bytes]            # PDOL data -> GPO answer (with SW)
    records: dict[tuple[int, int], bytes]    # (sfi, record) -> record template 70


@dataclass
class EmvCardSim:
    """A generic EMV card: PPSE and/or PSE, applications, records.

    ``t0``: case-4 commands answer 61xx and the data comes by GET RESPONSE.
    ``wrong_le``: a READ RECORD with Le 00 answers 6Cxx first.
    ``vanish_after``: after that many APDUs the card leaves (answers None).
    """

    atr: bytes
    apps: list[EmvApp]
    ppse: bool = True
    pse_sfi: int | None = None
    t0: bool = False
    wrong_le: bool = False
    force_61: bool = False
    vanish_after: int | None = None
    selected: EmvApp | None = field(default=None, init=False)
    pending: bytes = field(default=b"", init=False)
    seen: int = field(default=0, init=False)

    def reset(self) -> None:
        """Power on: nothing selected."""
        self.selected = None
        self.pending = b""

    def answer(self, apdu: bytes) -> bytes | None:
        """Answer one command APDU."""
        self.seen += 1
        if self.vanish_after is not None and self.seen > self.vanish_after:
            return None
        cla, ins, p1, p2 = apdu[:4]
        body = apdu[4:]
        lc = body[0] if len(body) > 1 else 0
        data = body[1:1 + lc] if len(body) > 1 else b""
        le = body[-1] if (len(body) == 1 or len(body) == 2 + lc) else None
        if ins == 0xC0:                                  # GET RESPONSE
            out, self.pending = self.pending, b""
            if le not in (None, 0) and le < len(out):
                out, self.pending = out[:le], out[le:]
                return out + (bytes([0x61, min(len(self.pending), 255)]) if self.pending else SW_OK)
            return out + SW_OK
        if ins == 0xA4:
            resp = self._select(data)
        elif ins == 0xA8 and cla == 0x80:
            resp = self._gpo(data)
        elif ins == 0xB2:
            resp = self._read_record(p1, p2 >> 3)
            if resp[-2:] == SW_OK and self.wrong_le and le == 0:
                return bytes([0x6C, len(resp) - 2])
        else:
            return SW_INS
        if resp[-2:] == SW_OK and len(resp) > 2 and (
                (self.t0 and data and le is None) or (self.force_61 and ins == 0xA4)):
            self.pending = resp[:-2]
            return bytes([0x61, min(len(self.pending), 255)])
        return resp

    def _select(self, name: bytes) -> bytes:
        self.selected = None
        if name == PPSE:
            if not self.ppse:
                return SW_NOT_FOUND
            entries = b"".join(
                tlv(0x61, tlv(0x4F, a.aid) + tlv(0x50, a.label) + tlv(0x87, bytes([i + 1])))
                for i, a in enumerate(self.apps)
            )
            return fci(PPSE, extra=tlv(0xBF0C, entries)) + SW_OK
        if name == PSE:
            if self.pse_sfi is None:
                return SW_NOT_FOUND
            return tlv(0x6F, tlv(0x84, PSE) + tlv(0xA5, tlv(0x88, bytes([self.pse_sfi])))) + SW_OK
        for app in self.apps:
            if app.aid == name:
                self.selected = app
                return fci(app.aid, pdol=app.pdol, label=app.label) + SW_OK
        return SW_NOT_FOUND

    def _gpo(self, data: bytes) -> bytes:
        app = self.selected
        if app is None or len(data) < 2 or data[0] != 0x83:
            return SW_CONDITIONS
        pdol_data = data[2:2 + data[1]]
        expected = dol_length(app.pdol) if app.pdol else 0
        if len(pdol_data) != expected:
            return SW_WRONG_LENGTH
        return app.gpo(pdol_data)

    def _read_record(self, record: int, sfi: int) -> bytes:
        if self.pse_sfi is not None and sfi == self.pse_sfi and self.selected is None:
            directory = self._directory_records()
            if 1 <= record <= len(directory):
                return directory[record - 1] + SW_OK
            return SW_RECORD_NOT_FOUND
        if self.selected is None:
            return SW_CONDITIONS
        rec = self.selected.records.get((sfi, record))
        return rec + SW_OK if rec is not None else SW_RECORD_NOT_FOUND

    def _directory_records(self) -> list[bytes]:
        return [
            tlv(0x70, tlv(0x61, tlv(0x4F, a.aid) + tlv(0x50, a.label) + tlv(0x87, bytes([i + 1]))))
            for i, a in enumerate(self.apps)
        ]


VISA_PDOL = bytes.fromhex("9F66049F02069F03069F1A0295055F2A029A039C019F3704")


def _visa_qvsdc_gpo(pan: str) -> Callable[[bytes], bytes]:
    def gpo(pdol_data: bytes) -> bytes:
        # Visa contactless refuses a GPO whose TTQ is missing (all zero).
        if pdol_data[:4] == b"\x00\x00\x00\x00":
            return SW_CONDITIONS
        body = (tlv(0x82, b"\x20\x40") + tlv(0x94, bytes.fromhex("18010100"))
                + tlv(0x57, track2_eq(pan)) + tlv(0x5F34, b"\x00")
                + tlv(0x9F26, bytes(8)) + tlv(0x9F36, b"\x00\x01"))
        return tlv(0x77, body) + SW_OK
    return gpo


def _format1_gpo(afl: bytes) -> Callable[[bytes], bytes]:
    def gpo(pdol_data: bytes) -> bytes:
        return tlv(0x80, b"\x19\x80" + afl) + SW_OK
    return gpo


def visa_contactless() -> EmvCardSim:
    """Visa-like contactless (qVSDC): PPSE, PDOL with TTQ, format 2 GPO with 57."""
    pan = "4111111111111111"
    app = EmvApp(AID_VISA, b"VISA CREDIT", VISA_PDOL, _visa_qvsdc_gpo(pan), {
        (3, 1): tlv(0x70, tlv(0x5F24, bytes.fromhex(EXPIRY + "31")) + tlv(0x5A, _bcd_pan(pan))),
    })
    return EmvCardSim(ATR_CONTACTLESS_EMV, [app])


def mastercard() -> EmvCardSim:
    """Mastercard-like contactless: PPSE, no PDOL, format 1 GPO, PAN in records."""
    pan = "5555555555554444"
    app = EmvApp(AID_MC, b"MASTERCARD", None, _format1_gpo(bytes.fromhex("0801010010010200")), {
        (1, 1): tlv(0x70, tlv(0x9F6C, b"\x00\x01") + tlv(0x5F20, b"TEST/CARDHOLDER")),
        (2, 1): tlv(0x70, tlv(0x5A, _bcd_pan(pan)) + tlv(0x5F24, bytes.fromhex(EXPIRY + "31"))),
        (2, 2): tlv(0x70, tlv(0x8C, bytes.fromhex("9F02069F03069F1A0295055F2A029A039C019F3704"))),
    })
    return EmvCardSim(ATR_CONTACTLESS_EMV, [app])


def visa_contact() -> EmvCardSim:
    """Contact chip card on T=0: PSE in SFI 1, data in SFIs 2 and 3, 61xx answers."""
    pan = "4761739001010119"
    app = EmvApp(AID_VISA, b"VISA DEBIT", None,
                 _format1_gpo(bytes.fromhex("1001020118010100")), {
        (2, 1): tlv(0x70, tlv(0x5F20, b"UAT/TEST CARD") + tlv(0x9F1F, b"000000")),
        (2, 2): tlv(0x70, tlv(0x5A, _bcd_pan(pan)) + tlv(0x5F34, b"\x01")),
        (3, 1): tlv(0x70, tlv(0x5F25, bytes.fromhex("230101"))
                    + tlv(0x5F24, bytes.fromhex(EXPIRY + "31"))),
    })
    return EmvCardSim(ATR_CONTACT_T0, [app], ppse=False, pse_sfi=1, t0=True)


def ppse_fails() -> EmvCardSim:
    """Contactless card whose PPSE select answers 6A82: the AID list must be tried."""
    card = mastercard()
    card.ppse = False
    return card


def sw_chaining() -> EmvCardSim:
    """T=1 card that still answers SELECT with 61xx and READ RECORD (Le 00) with 6Cxx."""
    card = visa_contact()
    card.atr = ATR_CONTACT_T1
    card.t0 = False
    card.force_61 = True
    card.wrong_le = True
    return card


def removed_mid_read() -> EmvCardSim:
    """The Visa contactless card, pulled away after SELECT AID (before GPO)."""
    card = visa_contactless()
    card.vanish_after = 2
    return card


@dataclass
class NtagSim:
    """An NFC Forum Type 2 tag (NTAG213) seen through a PC/SC contactless reader."""

    uid: bytes
    text: str
    atr: bytes = ATR_NTAG
    memory: bytes = field(default=b"", init=False)

    def __post_init__(self) -> None:
        payload = b"\x02en" + self.text.encode("utf-8")
        record = bytes([0xD1, 0x01, len(payload)]) + b"T" + payload
        ndef = bytes([0x03, len(record)]) + record + b"\xFE"
        u = self.uid.ljust(7, b"\x00")  # a staff badge's short UID: pages padded
        page0 = u[:3] + bytes([0x88 ^ u[0] ^ u[1] ^ u[2]])
        page1 = u[3:7]
        page2 = bytes([u[3] ^ u[4] ^ u[5] ^ u[6], 0x48, 0x00, 0x00])   # BCC1, internal, lock
        page3 = b"\xE1\x10\x12\x00"                                   # capability container
        pages = page0 + page1 + page2 + page3 + ndef
        self.memory = pages.ljust(45 * 4, b"\x00")       # NTAG213: 45 pages

    def reset(self) -> None:
        """Nothing to forget."""

    def answer(self, apdu: bytes) -> bytes | None:
        """FF CA (UID) and FF B0 (READ BINARY) as a PC/SC reader offers them."""
        if apdu[:4] == b"\xFF\xCA\x00\x00":
            return self.uid + SW_OK
        if apdu[:2] == b"\xFF\xB0":
            page = apdu[3]
            length = apdu[4] if len(apdu) > 4 else 16
            start = page * 4
            if start >= len(self.memory):
                return b"\x6B\x00"
            return self.memory[start:start + (length or 16)].ljust(length or 16, b"\x00") + SW_OK
        return b"\x6A\x81"


def nfc_club() -> NtagSim:
    """A club member's NTAG213 with a 7-byte UID and an NDEF text record."""
    return NtagSim(uid=bytes.fromhex("04A2241A3C5E80"), text="Club member card")


@dataclass(frozen=True)
class CardInfo:
    """What a test needs to know about a virtual card."""

    name: str
    description: str
    factory: Callable[[], object]
    token_kind: str               # "pan", "nfc", or "" when the read must fail
    pan: str | None = None
    uid: str | None = None
    source: str = "pcsc"

    def make(self) -> object:
        """A fresh card instance."""
        return self.factory()


CARDS: dict[str, CardInfo] = {c.name: c for c in (
    CardInfo("visa-contactless", "Visa qVSDC contactless, PPSE, PDOL with TTQ",
             visa_contactless, "pan", pan="4111111111111111"),
    CardInfo("mastercard", "Mastercard contactless, no PDOL, format 1 GPO",
             mastercard, "pan", pan="5555555555554444"),
    CardInfo("visa-contact", "Contact chip (T=0): PSE, records in SFIs 2 and 3",
             visa_contact, "pan", pan="4761739001010119"),
    CardInfo("ppse-fails", "Contactless, PPSE 6A82 → AID list fallback",
             ppse_fails, "pan", pan="5555555555554444"),
    CardInfo("sw-chaining", "T=1 card answering 61xx to SELECT and 6Cxx to READ RECORD",
             sw_chaining, "pan", pan="4761739001010119"),
    CardInfo("nfc-club", "NTAG213 club tag: UID 04A2241A3C5E80, NDEF text",
             nfc_club, "nfc", uid="04A2241A3C5E80", source="nfc"),
    # The demo's staff badges (hw_sim.terminal.STAFF): a tap signs in or clocks.
    CardInfo("staff-1", "Staff badge of no. 1 (cashier): UID 04AA000001",
             lambda: NtagSim(uid=bytes.fromhex("04AA000001"), text="Staff badge"), "nfc",
             uid="04AA000001", source="nfc"),
    CardInfo("staff-2", "Staff badge of no. 2 (manager): UID 04AA000002",
             lambda: NtagSim(uid=bytes.fromhex("04AA000002"), text="Staff badge"), "nfc",
             uid="04AA000002", source="nfc"),
    CardInfo("removed-mid-read", "Visa contactless pulled away after SELECT AID",
             removed_mid_read, "", pan="4111111111111111"),
)}


class DirectTransport:
    """An ``ApduTransport`` wired straight to a virtual card, without pcscd.

    For fast protocol tests and benchmarks; the vpcd path is tested separately.
    """

    def __init__(self, card: EmvCardSim | NtagSim):
        self.card = card
        self.atr = card.atr
        self.protocol = "T0" if card.atr == ATR_CONTACT_T0 else "T1"
        self.log: list[tuple[bytes, bytes]] = []
        card.reset()

    def transmit(self, command: bytes) -> bytes:
        """Answer like the card; a vanished card raises CardRemoved."""
        from agent.drivers.apdu import CardRemoved

        answer = self.card.answer(command)
        if answer is None:
            raise CardRemoved("the card was removed")
        self.log.append((command, answer))
        return answer
