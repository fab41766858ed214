"""Find card data in text that should hold none: codes, names, notes, phone numbers.

A bank card number (PAN) or magnetic-stripe track must never be stored, logged or
sent as anything but a ``pan:`` token. Text that a client types or a scanner sends
is checked with :func:`find_card_data` before it becomes a ``code:`` token or is
recorded; what it finds is refused (local API) or turned into a card read (reader).

What counts (``docs/carddata.md``, "Card numbers where they do not belong"):

* **track data**: a track 1 start ``%B<digits>^`` (also without the ``%``), a
  track 2 start ``;<digits>=``, or track 2 data without sentinels
  ``<12-19 digits>=<4 digits>``, whatever the check digit;
* **a card number**: 12 to 19 digits, written together or in groups separated
  by spaces, dashes or dots (at most 3 separator characters between groups),
  that pass the Luhn check *and* start with a prefix of a card network at a
  length that network issues (:data:`CARD_RANGES`). Persian, Arabic-Indic and
  other Unicode digits count as digits; zero-width and direction marks between
  digits are skipped.

A 12- or 13-digit run whose last digit is also a valid GS1 check digit (UPC-A,
EAN-13) is taken as a product barcode, not a card: real 12- and 13-digit card
numbers are no longer issued, while EAN-13 codes from countries 400-440 (Germany)
or 600-699 start like Visa and Maestro cards. Digits inside a longer run of
digits are not searched (a 24-digit GS1 code is not a card), but every group of
a grouped number is, so ``card 4111 1111 1111 1111 cvv 123`` is found.

Pure functions: no I/O, no globals but constant tables, never raise.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Literal

from agent.carddata.luhn import luhn_valid

# (first digits low, high, lengths): a card network's prefix range and the lengths
# it issues. Public IIN ranges of the major networks (ISO/IEC 7812 registrations
# as the networks publish them); a new range is one more line.
CARD_RANGES: tuple[tuple[str, str, str, tuple[int, ...]], ...] = (
    ("visa", "4", "4", (13, 16, 19)),
    ("mastercard", "51", "55", (16,)),
    ("mastercard", "2221", "2720", (16,)),
    ("mir", "2200", "2204", (16, 17, 18, 19)),
    ("amex", "34", "34", (15,)),
    ("amex", "37", "37", (15,)),
    ("diners", "300", "305", (14, 15, 16, 17, 18, 19)),
    ("diners", "36", "36", (14, 15, 16, 17, 18, 19)),
    ("diners", "38", "39", (16, 17, 18, 19)),
    ("jcb", "3528", "3589", (16, 17, 18, 19)),
    ("discover", "6011", "6011", (16, 17, 18, 19)),
    ("discover", "644", "649", (16, 17, 18, 19)),
    ("discover", "65", "65", (16, 17, 18, 19)),
    ("unionpay", "62", "62", (16, 17, 18, 19)),
    # Maestro and the domestic schemes in 50 and 56-69 (Shetab 5022.., 6037.., RuPay
    # 60.., Verve 5061..): 16 to 19 digits; the old short Maestro ranges 12 to 15.
    ("maestro", "50", "50", (16, 17, 18, 19)),
    ("maestro", "56", "69", (16, 17, 18, 19)),
    ("maestro", "5018", "5018", (12, 13, 14, 15)),
    ("maestro", "5020", "5020", (12, 13, 14, 15)),
    ("maestro", "5038", "5038", (12, 13, 14, 15)),
    ("maestro", "5893", "5893", (12, 13, 14, 15)),
    ("maestro", "6304", "6304", (12, 13, 14, 15)),
    ("maestro", "6759", "6759", (12, 13, 14, 15)),
    ("maestro", "6761", "6763", (12, 13, 14, 15)),
)
MIN_PAN_DIGITS = 12
MAX_PAN_DIGITS = 19
# Separator characters allowed between digit groups, and how many in a row.
_SEPARATORS = frozenset(" -.\u00a0\u2007\u202f\u2009\u2010\u2011\u2012\u2013\u2212")
MAX_SEPARATOR_RUN = 3

_TRACK1 = re.compile(r"[Bb][0-9][0-9 ]{7,22}\^")
_TRACK2 = re.compile(r";[0-9]{8,19}=")
_TRACK2_BARE = re.compile(r"(?<![0-9])[0-9]{12,19}=[0-9]{4}")


@dataclass(frozen=True)
class CardDataFound:
    """Where :func:`find_card_data` found card data, and what it is.

    ``start``/``end`` index the text given; ``pan`` is the card number's digits
    for ``kind == "pan"`` (None for track data, which
    :func:`agent.carddata.tracks.parse_swipe` reads). Its repr shows neither.
    """

    kind: Literal["pan", "track"]
    start: int
    end: int
    network: str | None = None
    pan: str | None = field(default=None, repr=False)


def card_network(digits: str) -> str | None:
    """The network whose prefix and length ``digits`` has, or None.

    Only the prefix and the length: the Luhn check is the caller's.

    >>> card_network("4111111111111111"), card_network("4006381333931")
    ('visa', 'visa')
    """
    n = len(digits)
    for network, low, high, lengths in CARD_RANGES:
        if n in lengths and low <= digits[: len(low)] <= high:
            return network
    return None


def gs1_check_valid(digits: str) -> bool:
    """True if the last digit is the GS1 check digit (UPC-A, EAN-8/13, GTIN-14)."""
    if len(digits) < 8 or not digits.isascii() or not digits.isdigit():
        return False
    body, check = digits[:-1], int(digits[-1])
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return (10 - total % 10) % 10 == check


def is_card_number(digits: str) -> bool:
    """True if ``digits`` (ASCII) is taken as a bank card number (module docstring)."""
    if not MIN_PAN_DIGITS <= len(digits) <= MAX_PAN_DIGITS or not luhn_valid(digits):
        return False
    if card_network(digits) is None:
        return False
    # A product barcode that happens to pass Luhn too.
    return not (len(digits) in (12, 13) and gs1_check_valid(digits))


def _ascii_digit(ch: str) -> str | None:
    if "0" <= ch <= "9":
        return ch
    if ch.isdecimal():
        return str(unicodedata.decimal(ch))
    return None


def _ignorable(ch: str) -> bool:
    # Zero-width and direction marks (format characters) carry nothing visible.
    return not ch.isascii() and unicodedata.category(ch) == "Cf"


@dataclass
class _Group:
    digits: str
    start: int
    end: int


def _chains(text: str) -> list[list[_Group]]:
    """Digit groups, chained where only short separator runs lie between them."""
    chains: list[list[_Group]] = []
    chain: list[_Group] = []
    group: _Group | None = None
    gap = 0  # separator characters since the last group ended
    for i, ch in enumerate(text):
        digit = _ascii_digit(ch)
        if digit is not None:
            if group is None:
                group = _Group("", i, i)
            group.digits += digit
            group.end = i + 1
            continue
        if _ignorable(ch):
            continue
        if group is not None:
            chain.append(group)
            group = None
            gap = 0
        if ch in _SEPARATORS and chain and gap < MAX_SEPARATOR_RUN:
            gap += 1
        elif chain:
            chains.append(chain)
            chain = []
    if group is not None:
        chain.append(group)
    if chain:
        chains.append(chain)
    return chains


def _find_pan(text: str, min_digits: int) -> CardDataFound | None:
    for chain in _chains(text):
        for i in range(len(chain)):
            digits = ""
            for j in range(i, len(chain)):
                digits += chain[j].digits
                if len(digits) > MAX_PAN_DIGITS:
                    break
                if len(digits) >= min_digits and is_card_number(digits):
                    return CardDataFound("pan", chain[i].start, chain[j].end,
                                         card_network(digits), digits)
    return None


def _find_track(text: str) -> CardDataFound | None:
    ascii_text = "".join(_ascii_digit(ch) or ch for ch in text)
    for pattern in (_TRACK1, _TRACK2, _TRACK2_BARE):
        match = pattern.search(ascii_text)
        if match is not None:
            return CardDataFound("track", match.start(), match.end())
    return None


def find_card_data(text: str, *, min_digits: int = MIN_PAN_DIGITS) -> CardDataFound | None:
    """The first track data or card number in ``text`` (module docstring), or None.

    ``min_digits`` raises the shortest card number looked for (a phone number
    field passes 14: E.164 numbers of 12-13 digits collide with the old 13-digit
    Visa and short Maestro ranges). Track data is looked for first.
    """
    if not isinstance(text, str) or not text:
        return None
    return _find_track(text) or _find_pan(text, max(min_digits, MIN_PAN_DIGITS))


def contains_card_data(text: str) -> bool:
    """True if :func:`find_card_data` finds anything in ``text``."""
    return find_card_data(text) is not None
