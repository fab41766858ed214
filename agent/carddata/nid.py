"""National ids typed at the till: cleaned and checked before they become a ``nid:`` token.

Pure: the country's rule is chosen by the terminal's default calling code
(``98`` Iran, ``972`` Israel; any other: 4 to 20 digits, no check digit known).
Every refusal is a :class:`~agent.errors.CardDataError` whose message a cashier
can act on and which never repeats the number (docs/carddata.md, "National ids").
"""

from __future__ import annotations

from agent.carddata.detect import find_card_data
from agent.carddata.tokens import to_ascii_digits
from agent.errors import CardDataError

#: Longest text looked at: anything longer is refused before it is scanned.
MAX_NID_INPUT = 40
#: Separators people type between the digits.
_SEPARATORS = frozenset(" -.\u00a0")
#: Direction marks that come along when a number is copied out of right-to-left text.
_MARKS = frozenset("\u200e\u200f\u200b\u200c\u200d\ufeff")
_OVERRIDES = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def iran_check_ok(digits: str) -> bool:
    """The Iranian national code's check digit (10 digits; the last is the check):
    ``r = Σ d[i]·(10−i) mod 11`` over the first nine; check = r if r < 2 else 11 − r.
    Ten equal digits are refused (they pass the sum but are never issued)."""
    if len(digits) != 10 or not digits.isdigit() or len(set(digits)) == 1:
        return False
    r = sum(int(d) * (10 - i) for i, d in enumerate(digits[:9])) % 11
    return int(digits[9]) == (r if r < 2 else 11 - r)


def israel_check_ok(digits: str) -> bool:
    """The Israeli teudat zehut check (9 digits, shorter ones padded with zeros on the
    left): weights 1,2,1,2,… with the digits of each product summed; total ≡ 0 mod 10."""
    if not 1 <= len(digits) <= 9 or not digits.isdigit():
        return False
    total = 0
    for i, d in enumerate(digits.zfill(9)):
        n = int(d) * (1 + i % 2)
        total += n - 9 if n > 9 else n
    return total % 10 == 0 and int(digits) != 0


def clean_national_id(text: str, country_code: str) -> str:
    """The digits of a national id as the club keys them (``tokens.nid_token``), or
    :class:`CardDataError` naming what is wrong.

    Persian and Arabic-Indic digits become ASCII; spaces, dashes and dots and the
    plain direction marks are dropped; direction overrides, letters and other
    characters are refused. Iran (``98``): exactly 10 digits with a valid check digit.
    Israel (``972``): up to 9 digits (padded with zeros on the left to 9) with a valid
    check digit. Elsewhere 4 to 20 digits. A bank card number is refused as such.
    """
    if not isinstance(text, str) or not text.strip():
        raise CardDataError("type the national id number")
    if len(text) > MAX_NID_INPUT:
        raise CardDataError(f"a national id is at most {MAX_NID_INPUT} characters long")
    if any(ch in _OVERRIDES for ch in text):
        raise CardDataError("the national id holds direction control characters; type it again")
    digits = "".join(ch for ch in to_ascii_digits(text)
                     if ch not in _SEPARATORS and ch not in _MARKS)
    if not digits.isascii() or not digits.isdigit():
        raise CardDataError("a national id has digits only")
    cc = country_code.strip().removeprefix("+")
    if cc == "98":
        if len(digits) != 10:
            raise CardDataError("an Iranian national code has 10 digits")
        if not iran_check_ok(digits):
            raise CardDataError("this national code's check digit is wrong; check the number")
        return digits
    if cc == "972":
        if len(digits) > 9:
            raise CardDataError("an Israeli id number has at most 9 digits")
        if not israel_check_ok(digits):
            raise CardDataError("this id number's check digit is wrong; check the number")
        return digits.zfill(9)
    if not 4 <= len(digits) <= 20:
        raise CardDataError("a national id has 4 to 20 digits")
    if find_card_data(digits) is not None:
        raise CardDataError("this looks like a bank card number, not a national id")
    return digits
