"""Card data inside EMV records: tags 5A, 57 (and 9F6B), 5F24, 5F20.

Values are BCD, padded at the end with ``F`` nibbles to a whole byte. Every
function validates what it returns (digits, Luhn, month) and raises
:class:`~agent.errors.CardDataError` otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from agent.carddata.luhn import luhn_valid, mask_pan
from agent.carddata.tlv import Tlv, find_tag, tag_hex
from agent.carddata.tracks import LUHN_MESSAGE, Swipe, check_yymm, parse_swipe
from agent.errors import CardDataError

TAG_PAN = 0x5A
TAG_TRACK2_EQUIVALENT = 0x57
TAG_TRACK2_DATA = 0x9F6B  # contactless magstripe mode, same layout as 57
TAG_TRACK1_DATA = 0x56  # contactless magstripe mode, track 1 text
TAG_EXPIRY = 0x5F24
TAG_CARDHOLDER_NAME = 0x5F20

# Names of the EMV tags a technician meets in SELECT, GPO and READ RECORD answers
# (EMV Book 3 Annex A; contactless kernels C-2, C-3).
TAG_NAMES: dict[int, str] = {
    0x42: "Issuer Identification Number",
    0x4F: "Application Identifier (AID)",
    0x50: "Application Label",
    0x56: "Track 1 Data",
    0x57: "Track 2 Equivalent Data",
    0x5A: "Application PAN",
    0x5F20: "Cardholder Name",
    0x5F24: "Application Expiration Date",
    0x5F25: "Application Effective Date",
    0x5F28: "Issuer Country Code",
    0x5F2D: "Language Preference",
    0x5F30: "Service Code",
    0x5F34: "PAN Sequence Number",
    0x61: "Application Template",
    0x6F: "FCI Template",
    0x70: "READ RECORD Response Template",
    0x77: "Response Message Template Format 2",
    0x80: "Response Message Template Format 1",
    0x82: "Application Interchange Profile",
    0x84: "Dedicated File (DF) Name",
    0x87: "Application Priority Indicator",
    0x88: "Short File Identifier (SFI)",
    0x8C: "CDOL1",
    0x8D: "CDOL2",
    0x8E: "Cardholder Verification Method (CVM) List",
    0x8F: "Certification Authority Public Key Index",
    0x90: "Issuer Public Key Certificate",
    0x92: "Issuer Public Key Remainder",
    0x93: "Signed Static Application Data",
    0x94: "Application File Locator (AFL)",
    0x9F07: "Application Usage Control",
    0x9F08: "Application Version Number",
    0x9F0D: "Issuer Action Code - Default",
    0x9F0E: "Issuer Action Code - Denial",
    0x9F0F: "Issuer Action Code - Online",
    0x9F10: "Issuer Application Data",
    0x9F11: "Issuer Code Table Index",
    0x9F12: "Application Preferred Name",
    0x9F1F: "Track 1 Discretionary Data",
    0x9F20: "Track 2 Discretionary Data",
    0x9F26: "Application Cryptogram",
    0x9F27: "Cryptogram Information Data",
    0x9F32: "Issuer Public Key Exponent",
    0x9F36: "Application Transaction Counter (ATC)",
    0x9F38: "PDOL",
    0x9F42: "Application Currency Code",
    0x9F44: "Application Currency Exponent",
    0x9F46: "ICC Public Key Certificate",
    0x9F47: "ICC Public Key Exponent",
    0x9F48: "ICC Public Key Remainder",
    0x9F49: "DDOL",
    0x9F4A: "Static Data Authentication Tag List",
    0x9F4B: "Signed Dynamic Application Data",
    0x9F4D: "Log Entry",
    0x9F62: "PCVC3 (Track 1)",
    0x9F63: "PUNATC (Track 1)",
    0x9F64: "NATC (Track 1)",
    0x9F65: "PCVC3 (Track 2)",
    0x9F66: "PUNATC (Track 2)",
    0x9F67: "NATC (Track 2)",
    0x9F69: "Card Authentication Related Data",
    0x9F6B: "Track 2 Data",
    0x9F6C: "Card Transaction Qualifiers",
    0x9F6E: "Form Factor Indicator / Third Party Data",
    0xA5: "FCI Proprietary Template",
    0xBF0C: "FCI Issuer Discretionary Data",
}

# Tags whose value is (or holds) the PAN: shown only masked.
PAN_TAGS = frozenset({TAG_PAN, TAG_TRACK2_EQUIVALENT, TAG_TRACK2_DATA, TAG_TRACK1_DATA})
# Tags whose value is card data that must never be shown or kept (expiry,
# discretionary data, name): only the tag and its length may be shown.
SENSITIVE_TAGS = PAN_TAGS | frozenset({TAG_EXPIRY, TAG_CARDHOLDER_NAME, 0x9F1F, 0x9F20, 0x5F30})


def tag_name(tag: int) -> str | None:
    """The EMV name of a tag, or None for one this table does not know."""
    return TAG_NAMES.get(tag)


def _nibbles(value: bytes) -> str:
    """Hex digits of ``value`` (uppercase), with trailing ``F`` padding removed."""
    return bytes(value).hex().upper().rstrip("F")


def _check_pan(pan: str, what: str) -> str:
    if not pan:
        raise CardDataError(f"{what} holds no card number digits")
    if not pan.isdigit():
        raise CardDataError(f"{what} holds a nibble that is not a decimal digit")
    if not 12 <= len(pan) <= 19:
        raise CardDataError(f"{what}: card number has {len(pan)} digits, not 12 to 19")
    if not luhn_valid(pan):
        raise CardDataError(LUHN_MESSAGE)
    return pan


def pan_from_5a(value: bytes) -> str:
    """The PAN in tag 5A: BCD digits, ``F``-padded at the end."""
    if not isinstance(value, bytes | bytearray) or not value:
        raise CardDataError("tag 5A is empty")
    return _check_pan(_nibbles(value), "tag 5A")


def track2_fields(value: bytes) -> tuple[str, str, str | None]:
    """PAN, expiry ``YYMM`` and service code of tag 57 (or 9F6B).

    Layout: ``PAN 'D' YYMM SSS discretionary`` in nibbles, ``F``-padded. The
    discretionary data is dropped.
    """
    if not isinstance(value, bytes | bytearray) or not value:
        raise CardDataError("track 2 equivalent data is empty")
    if len(value) > 19:
        raise CardDataError("track 2 equivalent data is longer than 19 bytes")
    text = _nibbles(value)
    pan, sep, rest = text.partition("D")
    if not sep:
        raise CardDataError("track 2 equivalent data has no 'D' separator")
    pan = _check_pan(pan, "track 2 equivalent data")
    if not rest[:4].isdigit():
        raise CardDataError("track 2 equivalent data has no valid expiry date")
    expiry = check_yymm(rest[:4])
    code = rest[4:7]
    if code and not (len(code) == 3 and code.isdigit()):
        raise CardDataError("track 2 equivalent data has a malformed service code")
    if not all(ch.isdigit() for ch in rest[7:]):
        raise CardDataError("track 2 equivalent data has a malformed discretionary field")
    return pan, expiry, code or None


def track2_equivalent(value: bytes) -> tuple[str, str]:
    """PAN and expiry ``YYMM`` of tag 57 (Track 2 Equivalent Data) or 9F6B."""
    pan, expiry, _ = track2_fields(value)
    return pan, expiry


def expiry_from_5f24(value: bytes) -> str:
    """Expiry ``YYMM`` from tag 5F24 (``YYMMDD`` in BCD, 3 bytes)."""
    if not isinstance(value, bytes | bytearray) or len(value) != 3:
        raise CardDataError("tag 5F24 must be 3 bytes (YYMMDD)")
    text = bytes(value).hex()
    if not text.isdigit():
        raise CardDataError("tag 5F24 is not BCD")
    if not 1 <= int(text[4:6]) <= 31:
        raise CardDataError("tag 5F24 has no valid day")
    return check_yymm(text[:4])


@dataclass(frozen=True, slots=True)
class EmvCard:
    """Card data found in EMV records; the repr never shows PAN or expiry."""

    pan: str = field(repr=False)
    expiry: str | None = field(repr=False)
    name: str | None
    service_code: str | None
    source_tag: int

    @property
    def masked(self) -> str:
        """First 6 and last 4 digits of the PAN."""
        return mask_pan(self.pan)

    def __repr__(self) -> str:
        return (f"EmvCard(masked={self.masked!r}, name={self.name!r}, "
                f"service_code={self.service_code!r}, source_tag={self.source_tag:X})")


def card_from_records(tlvs: Iterable[Tlv]) -> EmvCard | None:
    """The card in parsed EMV records, or None if they hold no PAN.

    Tag 57 (or 9F6B) is preferred, then 5A with 5F24, then 56 (track 1 text).
    When both 57 and 5A are present they must agree. The name comes from 5F20
    (or from tag 56).
    """
    nodes = list(tlvs)
    t57 = find_tag(nodes, TAG_TRACK2_EQUIVALENT) or find_tag(nodes, TAG_TRACK2_DATA)
    t5a = find_tag(nodes, TAG_PAN)
    t5f24 = find_tag(nodes, TAG_EXPIRY)
    t5f20 = find_tag(nodes, TAG_CARDHOLDER_NAME)
    t56 = find_tag(nodes, TAG_TRACK1_DATA)
    name = _name(t5f20.value) if t5f20 else None
    track1 = _track1(t56.value) if t56 is not None else None
    if name is None and track1 is not None:
        name = track1.name

    if t57 is not None:
        pan, expiry, service = track2_fields(t57.value)
        for other in (pan_from_5a(t5a.value) if t5a else None, track1.pan if track1 else None):
            if other is not None and other != pan:
                raise CardDataError(f"tags {tag_hex(t57.tag)} and 5A/56 name different cards")
        return EmvCard(pan, expiry, name, service, t57.tag)
    if t5a is not None:
        pan = pan_from_5a(t5a.value)
        expiry_5f24 = expiry_from_5f24(t5f24.value) if t5f24 else None
        return EmvCard(pan, expiry_5f24, name, None, TAG_PAN)
    if track1 is not None:
        return EmvCard(track1.pan, track1.expiry, name, track1.service_code, TAG_TRACK1_DATA)
    return None


def _track1(value: bytes) -> Swipe:
    """Tag 56: track 1 text without sentinels (``B<PAN>^NAME^YYMM...``)."""
    try:
        text = bytes(value).decode("ascii")
    except UnicodeDecodeError:
        raise CardDataError("tag 56 is not track 1 text") from None
    swipe = parse_swipe("%" + text + "?")
    if swipe.tracks != (1,):
        raise CardDataError("tag 56 is not track 1 text")
    return swipe


def _name(value: bytes) -> str | None:
    """Cardholder name from 5F20 (ASCII, space-padded); None when blank."""
    text = bytes(value).decode("ascii", errors="replace").strip()
    return text or None
