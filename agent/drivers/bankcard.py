"""Reading a bank card's PAN and expiry over EMV (contact and contactless).

Protocol only: it talks to a :class:`~agent.drivers.apdu.CardChannel` and never to a
reader, so it is tested with recorded exchanges. The steps (EMV Book 1 §12, Book 3
§10, EMV Contactless Book B):

1. Find the applications: PPSE ``2PAY.SYS.DDF01`` for contactless, PSE
   ``1PAY.SYS.DDF01`` for contact (its records are read from the SFI the FCI
   names); when the directory is missing, try :data:`KNOWN_AIDS` one by one.
2. SELECT the application (by priority), read the PDOL from its FCI.
3. GET PROCESSING OPTIONS with the PDOL filled in from :class:`TerminalData`
   (tags the terminal does not know are zero-filled, as EMV allows); a 6985
   answer means "try the next application".
4. Take the PAN (5A, else track 2 equivalent 57) and expiry (5F24) from the GPO
   answer (format 1 ``80`` or format 2 ``77``), else walk the AFL with READ
   RECORD, stopping as soon as both are known.

The PAN lives only in the returned :class:`BankCard` (never in its ``repr``);
the caller turns it into a token at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from agent.carddata import emv, tlv
from agent.drivers.apdu import CardChannel, Response
from agent.errors import CardDataError, ReaderError

PPSE = b"2PAY.SYS.DDF01"
PSE = b"1PAY.SYS.DDF01"

# Tried in this order when the card has no usable PSE/PPSE.
KNOWN_AIDS: tuple[tuple[str, str], ...] = (
    ("Visa", "A0000000031010"),
    ("Visa Electron", "A0000000032010"),
    ("V PAY", "A0000000032020"),
    ("Mastercard", "A0000000041010"),
    ("Maestro", "A0000000043060"),
    ("Cirrus", "A0000000046000"),
    ("American Express", "A00000002501"),
    ("Discover", "A0000001523010"),
    ("Diners Club / Discover", "A0000001524010"),
    ("JCB", "A0000000651010"),
    ("UnionPay Debit", "A000000333010101"),
    ("UnionPay Credit", "A000000333010102"),
    ("UnionPay Quasi-credit", "A000000333010103"),
    ("Interac", "A0000002771010"),
    ("RuPay", "A0000005241010"),
    ("Mir", "A0000006581010"),
    ("Cartes Bancaires", "A0000000421010"),
    ("girocard", "A0000003591010028001"),
)

# Status words.
SW_OK = 0x9000
SW_NOT_FOUND = 0x6A82
SW_RECORD_NOT_FOUND = 0x6A83
SW_CONDITIONS = 0x6985

# EMV tags used here.
T_FCI = 0x6F
T_FCI_PROP = 0xA5
T_FCI_ISSUER = 0xBF0C
T_DIR_ENTRY = 0x61
T_AID = 0x4F
T_PRIORITY = 0x87
T_SFI = 0x88
T_PDOL = 0x9F38
T_RECORD = 0x70
T_GPO_F1 = 0x80
T_GPO_F2 = 0x77
T_AFL = 0x94
T_PAN = 0x5A
T_TRACK2 = 0x57
T_EXPIRY = 0x5F24

# Numeric (n) terminal tags: shorter values are left-padded, longer cut on the left.
_NUMERIC_TAGS = {0x9F02, 0x9F03, 0x9F1A, 0x5F2A, 0x9A, 0x9C, 0x9F21, 0x5F36}


class NoBankApplication(ReaderError):
    """The card has no EMV payment application we can select."""


@dataclass(frozen=True)
class TerminalData:
    """What the terminal puts in a PDOL. ``today`` and ``unpredictable`` are inputs
    (no clock, no randomness in here)."""

    today: date
    unpredictable: bytes = b"\x00\x00\x00\x00"
    country: int = 840            # ISO 3166 numeric (9F1A)
    currency: int = 840           # ISO 4217 numeric (5F2A)
    # TTQ (9F66): qVSDC, contact chip, online PIN and signature supported; online
    # cryptogram not required; consumer device CVM supported.
    ttq: bytes = bytes.fromhex("36004000")
    terminal_type: int = 0x22     # attended, offline with online capability
    capabilities: bytes = bytes.fromhex("E0F8C8")
    additional_capabilities: bytes = bytes.fromhex("6000F0A001")

    def values(self) -> dict[int, bytes]:
        """The known tags and their values."""
        return {
            0x9F66: self.ttq,
            0x9F02: bytes(6),                       # amount authorised: zero
            0x9F03: bytes(6),                       # amount other: zero
            0x9F1A: _bcd(self.country, 2),
            0x5F2A: _bcd(self.currency, 2),
            0x9A: _bcd(self.today.year % 100, 1) + _bcd(self.today.month, 1)
            + _bcd(self.today.day, 1),
            0x9C: b"\x00",                           # transaction type: purchase
            0x95: bytes(5),                          # TVR: nothing wrong yet
            0x9F37: self.unpredictable,
            0x9F35: bytes([self.terminal_type]),
            0x9F33: self.capabilities,
            0x9F40: self.additional_capabilities,
        }


@dataclass(frozen=True)
class BankCard:
    """What was read. ``pan`` is never shown by ``repr``."""

    pan: str = field(repr=False)
    expiry: str | None = field(repr=False)
    aid: bytes
    apdus: int


def _bcd(number: int, size: int) -> bytes:
    digits = str(number).rjust(size * 2, "0")[-size * 2:]
    return bytes.fromhex(digits)


def build_pdol_data(pdol: bytes, terminal: TerminalData) -> bytes:
    """The concatenated values the card asked for in its PDOL (unknown tags zero-filled)."""
    known = terminal.values()
    out = b""
    for tag, length in tlv.parse_dol(pdol):
        value = known.get(tag, b"")
        if len(value) != length:
            if tag in _NUMERIC_TAGS:
                value = value[-length:] if len(value) > length else value.rjust(length, b"\x00")
            else:
                value = value[:length].ljust(length, b"\x00")
        out += value
    return out


def select(channel: CardChannel, name: bytes) -> Response:
    """SELECT by DF name (first occurrence)."""
    return channel.send(0x00, 0xA4, 0x04, 0x00, name, 0)


def read_record(channel: CardChannel, sfi: int, record: int) -> Response:
    """READ RECORD ``record`` of short file ``sfi``."""
    return channel.send(0x00, 0xB2, record, (sfi << 3) | 0x04, b"", 0)


def _entries(tlvs: list[tlv.Tlv]) -> list[tuple[int, int, bytes]]:
    """(priority, order, AID) of every directory entry (61) found in ``tlvs``."""
    found: list[tuple[int, int, bytes]] = []

    def walk(items: list[tlv.Tlv]) -> None:
        for item in items:
            if item.tag == T_DIR_ENTRY and item.children is not None:
                aid = tlv.find_tag(item.children, T_AID)
                if aid is None or not aid.value:
                    continue
                prio = tlv.find_tag(item.children, T_PRIORITY)
                level = prio.value[0] & 0x0F if prio is not None and prio.value else 0
                # Priority 0 means "no priority": after the numbered ones.
                found.append((level or 16, len(found), aid.value))
            elif item.children:
                walk(item.children)

    walk(tlvs)
    return found


def _ordered(entries: list[tuple[int, int, bytes]]) -> list[bytes]:
    seen: list[bytes] = []
    for _, _, aid in sorted(entries):
        if aid not in seen:
            seen.append(aid)
    return seen


def find_applications_ppse(channel: CardChannel) -> list[bytes]:
    """AIDs listed by the PPSE, by priority; empty if there is no PPSE."""
    resp = select(channel, PPSE)
    if not resp.ok:
        return []
    return _ordered(_entries(tlv.parse_tlv(resp.data)))


def find_applications_pse(channel: CardChannel) -> list[bytes]:
    """AIDs listed in the PSE's directory records, by priority; empty if no PSE."""
    resp = select(channel, PSE)
    if not resp.ok:
        return []
    sfi_tag = tlv.find_tag(tlv.parse_tlv(resp.data), T_SFI)
    if sfi_tag is None or not sfi_tag.value:
        return []
    sfi = sfi_tag.value[0] & 0x1F
    entries: list[tuple[int, int, bytes]] = []
    for record in range(1, 32):
        rec = read_record(channel, sfi, record)
        if rec.sw == SW_RECORD_NOT_FOUND:
            break
        if not rec.ok:
            break
        for prio, _, aid in _entries(tlv.parse_tlv(rec.data)):
            entries.append((prio, len(entries), aid))
    return _ordered(entries)


def _afl_entries(afl: bytes) -> list[tuple[int, int, int]]:
    if len(afl) % 4:
        raise CardDataError("the card's AFL is not a multiple of 4 bytes")
    out = []
    for i in range(0, len(afl), 4):
        sfi, first, last = afl[i] >> 3, afl[i + 1], afl[i + 2]
        if not 1 <= sfi <= 30 or first == 0 or last < first:
            raise CardDataError("the card's AFL is malformed", offset=i)
        out.append((sfi, first, last))
    return out


class _Found:
    """PAN and expiry collected from TLV data as the read goes on."""

    def __init__(self) -> None:
        self.pan: str | None = None
        self.expiry: str | None = None

    def take(self, tlvs: list[tlv.Tlv]) -> None:
        pan = tlv.find_tag(tlvs, T_PAN)
        if pan is not None and self.pan is None:
            self.pan = emv.pan_from_5a(pan.value)
        track2 = tlv.find_tag(tlvs, T_TRACK2)
        if track2 is not None:
            t2_pan, t2_expiry = emv.track2_equivalent(track2.value)
            if self.pan is None:
                self.pan = t2_pan
            if self.expiry is None:
                self.expiry = t2_expiry
        exp = tlv.find_tag(tlvs, T_EXPIRY)
        if exp is not None:
            # 5F24 is authoritative over the track 2 equivalent.
            self.expiry = emv.expiry_from_5f24(exp.value)

    @property
    def complete(self) -> bool:
        return self.pan is not None and self.expiry is not None


def _read_application(channel: CardChannel, aid: bytes, terminal: TerminalData) -> BankCard | None:
    """SELECT, GPO, AFL walk. None when the card refuses this application."""
    resp = select(channel, aid)
    if not resp.ok:
        return None
    fci = tlv.parse_tlv(resp.data)
    pdol = tlv.find_tag(fci, T_PDOL)
    pdol_data = build_pdol_data(pdol.value, terminal) if pdol is not None else b""
    gpo = channel.send(0x80, 0xA8, 0x00, 0x00, tlv.encode_tlv(0x83, pdol_data), 0)
    if gpo.sw == SW_CONDITIONS:
        return None
    if not gpo.ok:
        raise CardDataError(f"the card refused GET PROCESSING OPTIONS ({gpo.sw:04X})")
    answer = tlv.parse_tlv(gpo.data)
    if not answer:
        raise CardDataError("empty answer to GET PROCESSING OPTIONS")
    found = _Found()
    head = answer[0]
    if head.tag == T_GPO_F1:
        if len(head.value) < 2:
            raise CardDataError("format 1 GPO answer is too short")
        afl = head.value[2:]
    elif head.tag == T_GPO_F2:
        found.take(answer)
        afl_tag = tlv.find_tag(answer, T_AFL)
        afl = afl_tag.value if afl_tag is not None else b""
    else:
        raise CardDataError(f"unknown GPO answer template {head.tag:02X}")
    if not found.complete:
        for sfi, first, last in _afl_entries(afl):
            for record in range(first, last + 1):
                rec = read_record(channel, sfi, record)
                if not rec.ok:
                    raise CardDataError(f"READ RECORD failed ({rec.sw:04X})")
                found.take(tlv.parse_tlv(rec.data))
                if found.complete:
                    break
            if found.complete:
                break
    if found.pan is None:
        raise CardDataError("the card gave no card number")
    return BankCard(pan=found.pan, expiry=found.expiry, aid=aid, apdus=channel.count)


def read_bank_card(channel: CardChannel, terminal: TerminalData, *,
                   contactless: bool) -> BankCard:
    """Read PAN and expiry; raise NoBankApplication, CardDataError or ReaderError."""
    candidates = find_applications_ppse(channel) if contactless else find_applications_pse(channel)
    tried: set[bytes] = set()
    for aid in candidates:
        tried.add(aid)
        card = _read_application(channel, aid, terminal)
        if card is not None:
            return card
    for _, aid_hex in KNOWN_AIDS:
        aid = bytes.fromhex(aid_hex)
        if aid in tried:
            continue
        card = _read_application(channel, aid, terminal)
        if card is not None:
            return card
    raise NoBankApplication("no payment application on the card")
