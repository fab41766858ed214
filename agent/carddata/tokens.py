"""Identifier tokens (protocol.md, "Identifiers and card data") and phone numbers.

A member is found by a token, never by a raw value:

========  ===========================================================
``pan:``  lowercase hex of HMAC-SHA256(pan_key, PAN digits), first 32
``nid:``  the same HMAC over ``"nid:" + digits``, first 32 hex digits
``nfc:``  uppercase hex of the tag's UID
``code:`` the scanned text, trimmed
``tel:``  the E.164 form of a phone number (``+989121234567``)
========  ===========================================================

Pure functions; every refusal is a :class:`~agent.errors.CardDataError` whose
message never repeats the value it refused.
"""

from __future__ import annotations

import hashlib
import hmac

from agent.carddata.detect import find_card_data
from agent.errors import CardDataError

TOKEN_KINDS = ("pan", "nid", "nfc", "code", "tel")
PAN_KEY_BYTES = 32
# Longest scanned text kept as a code token; a longer "barcode" is a reader
# running away (or a keyboard left on the scanner), not a club card.
MAX_CODE_CHARS = 512
MAX_UID_BYTES = 32

# Persian (U+06F0..) and Arabic-Indic (U+0660..) digits, as typed on phones and
# keyboards in Iran and Arab countries, mapped to ASCII.
DIGIT_TRANSLATION = str.maketrans(
    {
        **{chr(0x06F0 + i): str(i) for i in range(10)},
        **{chr(0x0660 + i): str(i) for i in range(10)},
    }
)

# Embeddings and overrides that reorder what a terminal shows (spoofing), U+202A-202E
# and U+2066-2069; the plain marks U+200E/200F are harmless.
BIDI_OVERRIDES = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
CARD_IN_CODE_MESSAGE = ("this looks like a bank card number; it cannot be used as a code - "
                        "tap or swipe the card instead")
CARD_IN_PHONE_MESSAGE = "this looks like a bank card number, not a phone number"

# Separators people write in phone numbers; any Unicode space counts too.
_PHONE_SEPARATORS = frozenset("-.()/")
# Direction marks that come along when a number is copied out of right-to-left text.
_BIDI_MARKS = frozenset("\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
                        "\u200b\u200c\u200d\ufeff")


def to_ascii_digits(text: str) -> str:
    """``text`` with Persian and Arabic-Indic digits replaced by ASCII digits."""
    return text.translate(DIGIT_TRANSLATION)


def _hmac_hex32(pan_key: bytes, message: bytes) -> str:
    if not isinstance(pan_key, bytes | bytearray) or len(pan_key) != PAN_KEY_BYTES:
        raise CardDataError(f"pan_key must be {PAN_KEY_BYTES} bytes (see provisioning)")
    return hmac.new(bytes(pan_key), message, hashlib.sha256).hexdigest()[:32]


def pan_token(pan_key: bytes, pan: str) -> str:
    """``pan:`` + the first 32 lowercase hex digits of HMAC-SHA256(pan_key, PAN).

    ``pan`` is the card number as 12 to 19 ASCII digits (as the parsers return it).
    The Luhn check belongs to the parsers; this function only refuses what cannot
    be a PAN at all.
    """
    if not isinstance(pan, str) or not pan.isascii() or not pan.isdigit() \
            or not 12 <= len(pan) <= 19:
        raise CardDataError("not a card number: expected 12 to 19 digits")
    return "pan:" + _hmac_hex32(pan_key, pan.encode("ascii"))


def nid_token(pan_key: bytes, digits: str) -> str:
    """``nid:`` + the first 32 hex digits of HMAC-SHA256(pan_key, ``"nid:" + digits``).

    Spaces, dashes and dots between the digits are dropped and Persian or
    Arabic-Indic digits become ASCII, so ``"۰۰۱-۲۳۴۵۶۷-۸"`` and ``"0012345678"``
    give the same token. Leading zeros are significant (Iranian national codes
    start with them). 4 to 20 digits.
    """
    cleaned = "".join(ch for ch in to_ascii_digits(digits) if not (ch.isspace() or ch in "-."))
    if not cleaned.isascii() or not cleaned.isdigit() or not 4 <= len(cleaned) <= 20:
        raise CardDataError("not a national id: expected 4 to 20 digits")
    return "nid:" + _hmac_hex32(pan_key, b"nid:" + cleaned.encode("ascii"))


def nfc_token(uid: bytes) -> str:
    """``nfc:`` + the uppercase hex of a tag's UID (1 to 32 bytes)."""
    if not isinstance(uid, bytes | bytearray) or not 1 <= len(uid) <= MAX_UID_BYTES:
        raise CardDataError(f"not a tag UID: expected 1 to {MAX_UID_BYTES} bytes")
    return "nfc:" + bytes(uid).hex().upper()


def code_token(text: str) -> str:
    """``code:`` + the scanned text with surrounding whitespace removed.

    Refuses empty text, text longer than 512 characters, text holding control
    characters (C0 other than the GS1 group separator ``\\x1d``, which GS1
    barcodes legitimately carry; DEL; C1) or direction overrides, and text holding
    a bank card number or track data (:func:`agent.carddata.detect.find_card_data`):
    a card is read as a card (``pan:`` token), never kept as a code.
    """
    trimmed = text.strip()
    if not trimmed:
        raise CardDataError("the scanned code is empty")
    if len(trimmed) > MAX_CODE_CHARS:
        raise CardDataError(f"the scanned code is longer than {MAX_CODE_CHARS} characters")
    if any((ord(ch) < 0x20 and ch != "\x1d") or 0x7F <= ord(ch) <= 0x9F
           or ch in BIDI_OVERRIDES for ch in trimmed):
        raise CardDataError("the scanned code holds control characters")
    if find_card_data(trimmed) is not None:
        raise CardDataError(CARD_IN_CODE_MESSAGE)
    return "code:" + trimmed


def _check_country_code(default_country_code: str) -> str:
    cc = default_country_code.strip().removeprefix("+")
    if not cc.isascii() or not cc.isdigit() or not 1 <= len(cc) <= 3 or cc[0] == "0":
        raise CardDataError(
            "the default country calling code must be 1 to 3 digits, not starting with 0 "
            "(e.g. 98)"
        )
    return cc


def normalise_phone(text: str, default_country_code: str) -> str:
    """The E.164 form (``+989121234567``) of a phone number as people write it.

    Accepted: spaces, dashes, dots, slashes and parentheses between digits;
    Persian and Arabic-Indic digits; direction marks from right-to-left text;
    ``+`` or ``00`` before an international number (and the ``(0)`` some write
    after the country code, ``+44 (0)20 ...``); otherwise a national number,
    whose leading trunk ``0`` is replaced by ``default_country_code`` (digits,
    e.g. ``"98"``). The result must have 8 to 15 digits (E.164 allows at most 15).

    Raises CardDataError for letters (extensions included), other symbols, or a
    digit count outside 8–15.
    """
    cc = _check_country_code(default_country_code)
    raw = to_ascii_digits(text)
    raw = "".join(ch for ch in raw if ch not in _BIDI_MARKS).strip()
    if not raw:
        raise CardDataError("the phone number is empty")
    if any(ch.isalpha() for ch in raw):
        raise CardDataError("a phone number cannot contain letters")
    international = raw.startswith("+")
    body = raw[1:] if international else raw
    if international or body.startswith("00"):
        # "+44 (0)20 ..." : the "(0)" is the trunk prefix written for national callers.
        compact = "".join(ch for ch in body if not ch.isspace())
        if "(0)" in compact:
            compact = compact.replace("(0)", "", 1)
        body = compact
    digits: list[str] = []
    for ch in body:
        if ch.isascii() and ch.isdigit():
            digits.append(ch)
        elif ch.isspace() or ch in _PHONE_SEPARATORS:
            continue
        else:
            raise CardDataError(
                "a phone number may hold only digits, spaces, '-', '.', '/', '(' ')' "
                "and a leading '+'"
            )
    number = "".join(digits)
    if not number:
        raise CardDataError("the phone number has no digits")
    if international:
        full = number
    elif number.startswith("00"):
        full = number[2:]
    elif number.startswith("0"):
        full = cc + number[1:]
    else:
        full = cc + number
    if full.startswith("0"):
        raise CardDataError("a country calling code cannot start with 0")
    if not 8 <= len(full) <= 15:
        raise CardDataError(
            f"a phone number needs 8 to 15 digits with its country code, not {len(full)}"
        )
    return "+" + full


# A phone number is checked for card numbers of this many digits and more: E.164
# numbers have at most 15 digits, and 12-13 digit ones collide with the old 13-digit
# Visa and short Maestro ranges.
PHONE_CARD_MIN_DIGITS = 14


def tel_token(phone: str, default_country_code: str) -> str:
    """``tel:`` + :func:`normalise_phone` of ``phone``.

    A bank card number of 14 digits or more typed as a phone number (an Amex
    number with a ``+`` fits E.164) is refused, before and after normalising.
    """
    if isinstance(phone, str) and find_card_data(phone, min_digits=PHONE_CARD_MIN_DIGITS):
        raise CardDataError(CARD_IN_PHONE_MESSAGE)
    number = normalise_phone(phone, default_country_code)
    if find_card_data(number[1:], min_digits=PHONE_CARD_MIN_DIGITS):
        raise CardDataError(CARD_IN_PHONE_MESSAGE)
    return "tel:" + number


def _is_hex(text: str, alphabet: str) -> bool:
    return bool(text) and all(ch in alphabet for ch in text)


def token_kind(token: str) -> str:
    """The kind of a token (``pan``, ``nid``, ``nfc``, ``code`` or ``tel``).

    The rest of the token must have that kind's form; anything else raises
    CardDataError, so a token that was built by hand the wrong way is caught
    before it is looked up or stored.
    """
    kind, sep, rest = token.partition(":")
    if not sep or kind not in TOKEN_KINDS:
        raise CardDataError(f"not a token: expected one of {', '.join(TOKEN_KINDS)} and ':'")
    if kind in ("pan", "nid"):
        ok = len(rest) == 32 and _is_hex(rest, "0123456789abcdef")
    elif kind == "nfc":
        ok = len(rest) % 2 == 0 and len(rest) <= 2 * MAX_UID_BYTES \
            and _is_hex(rest, "0123456789ABCDEF")
    elif kind == "code":
        ok = bool(rest) and rest == rest.strip() and len(rest) <= MAX_CODE_CHARS
    else:
        ok = rest.startswith("+") and rest[1:].isascii() and rest[1:].isdigit() \
            and 8 <= len(rest) - 1 <= 15 and rest[1] != "0"
    if not ok:
        raise CardDataError(f"malformed {kind} token")
    return kind
