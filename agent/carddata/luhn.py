"""Luhn check digit (ISO/IEC 7812-1) and PAN masking."""

from __future__ import annotations

from agent.errors import CardDataError


def luhn_valid(digits: str) -> bool:
    """True if ``digits`` (ASCII digits only) passes the Luhn check."""
    if not digits or not digits.isascii() or not digits.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def mask_pan(pan: str) -> str:
    """First 6 and last 4 digits, the rest as ``*`` (PCI DSS req. 3.4).

    >>> mask_pan("4111111111111111")
    '411111******1111'
    """
    if not pan.isascii() or not pan.isdigit() or not 12 <= len(pan) <= 19:
        raise CardDataError("not a card number: expected 12 to 19 digits")
    return pan[:6] + "*" * (len(pan) - 10) + pan[-4:]
