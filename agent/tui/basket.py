"""The sale basket and what the cashier types or scans into it (pure functions).

Scans: the agent reports every scanned barcode as a ``card`` event with a
``code:`` token. A code that is a GS1 product number — 8, 12, 13 or 14 digits
(EAN-8, UPC-A, EAN-13, GTIN-14) with a valid check digit — is a product and
adds a basket line; any other code (``CLUB-1001``, a QR text) identifies a
member.

Typed entries: ``12.50`` is one line of that amount; ``3*2.50`` (or ``3x2.50``)
is three at 2.50; ``4006381333931 2.50`` is a product at a price. A bare
product number is looked up in the club's catalogue (``catalogue.lookup``); one
the catalogue does not know waits for its price and is recorded as an unknown item.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from agent.tui.i18n import ascii_digits, parse_amount

GS1_LENGTHS = (8, 12, 13, 14)


def gs1_check_digit_ok(digits: str) -> bool:
    """True if the last digit is the GS1 mod-10 check digit of the others."""
    body, check = digits[:-1], int(digits[-1])
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return (10 - total % 10) % 10 == check


def is_product_code(text: str) -> bool:
    """True if ``text`` is a GS1 product number (EAN-8/UPC-A/EAN-13/GTIN-14)."""
    return (
        text.isascii() and text.isdigit() and len(text) in GS1_LENGTHS and gs1_check_digit_ok(text)
    )


def scanned_product(token: str) -> str | None:
    """The product number in a ``code:`` token, or None if it names a member."""
    if not token.startswith("code:"):
        return None
    code = token[5:].strip()
    return code if is_product_code(code) else None


@dataclass(frozen=True)
class Line:
    """One basket line (``sku`` None for a bare amount)."""

    sku: str | None
    qty: int
    unit_price: int
    # A product of the club's catalogue: its name, and whether it is weighed (``qty``
    # is then grams and ``unit_price`` the price per kilogram). The agent prices it.
    name: str | None = None
    catalogue: bool = False
    weighed: bool = False
    # (1.3) A top-up or gift card product with an open amount: ``unit_price`` is the
    # amount typed at the till.
    open_amount: bool = False
    # (1.3) Paid with the member's units (the product's ``price_units``), not money.
    units: bool = False

    @property
    def total(self) -> int:
        """qty × unit price (grams × price per kg / 1000 for a weighed product)."""
        if self.weighed:
            return self.unit_price * self.qty // 1000
        return self.qty * self.unit_price

    def to_param(self) -> dict[str, object]:
        """The line as ``sale.quote`` takes it (a catalogue product by its sku)."""
        if self.catalogue and self.open_amount:
            return {"sku": self.sku, "qty": self.qty, "amount": self.unit_price}
        if self.catalogue and self.units:
            return {"sku": self.sku, "qty": self.qty, "units": True}
        if self.catalogue:
            return {"sku": self.sku, "weight_g": self.qty} if self.weighed \
                else {"sku": self.sku, "qty": self.qty}
        return {"sku": self.sku, "category": None, "qty": self.qty, "unit_price": self.unit_price}


def catalogue_line(product: dict[str, object], language: str, qty: int = 1) -> Line:
    """A basket line for a product of ``catalogue.lookup``/``search`` (its name in
    ``language``, else English, else any)."""
    names = product.get("names")
    name = None
    if isinstance(names, dict) and names:
        name = str(names.get(language) or names.get("en") or next(iter(names.values())))
    price = product.get("price")
    return Line(str(product.get("sku")), qty, price if isinstance(price, int) else 0, name,
                catalogue=True, weighed=product.get("unit") == "weight",
                open_amount=is_open_amount(product))


def is_open_amount(product: dict[str, object]) -> bool:
    """(1.3) A top-up or gift card product whose amount is typed at the till."""
    spec = product.get("topup") or product.get("gift_card")
    return isinstance(spec, dict) and spec.get("amount") is None


@dataclass(frozen=True)
class NeedsPrice:
    """A product number was entered without a price."""

    sku: str


@dataclass(frozen=True)
class SetQuantity:
    """``*3`` (or ``x3``, ``×3``): the highlighted line's quantity becomes 3."""

    qty: int


def parse_entry(text: str, minor_units: int) -> Line | NeedsPrice | SetQuantity | None:
    """What a typed entry means, or None if it means nothing."""
    cleaned = ascii_digits(text.strip())
    if not cleaned:
        return None
    quantity = re.fullmatch(r"[*xX×]\s*(\d{1,4})", cleaned)
    if quantity:
        qty = int(quantity.group(1))
        return SetQuantity(qty) if qty > 0 else None
    parts = cleaned.split()
    if len(parts) == 1 and is_product_code(parts[0]):
        return NeedsPrice(parts[0])
    if len(parts) == 2 and is_product_code(parts[0]):
        price = parse_amount(parts[1], minor_units)
        return Line(parts[0], 1, price) if price else None
    match = re.fullmatch(r"(\d{1,4})\s*[*xX×]\s*(\S+)", cleaned)
    if match:
        qty, price = int(match.group(1)), parse_amount(match.group(2), minor_units)
        return Line(None, qty, price) if qty > 0 and price else None
    amount = parse_amount(cleaned, minor_units)
    return Line(None, 1, amount) if amount else None


def add_line(lines: tuple[Line, ...], line: Line) -> tuple[Line, ...]:
    """The basket with ``line`` added; a product at the same price adds quantity
    (a weighed product is a line of its own each time)."""
    if line.sku is not None and not line.weighed:
        for i, existing in enumerate(lines):
            if existing.sku == line.sku and existing.unit_price == line.unit_price:
                merged = replace(existing, qty=existing.qty + line.qty)
                return (*lines[:i], merged, *lines[i + 1 :])
    return (*lines, line)


def line_index_after_add(lines: tuple[Line, ...], line: Line) -> int:
    """Where :func:`add_line` puts ``line`` (the merged line's index, or the end)."""
    if line.sku is not None and not line.weighed:
        for i, existing in enumerate(lines):
            if existing.sku == line.sku and existing.unit_price == line.unit_price:
                return i
    return len(lines)


def last_price(lines: tuple[Line, ...], sku: str) -> int | None:
    """The price this sku was last entered at in this basket, if any."""
    for line in reversed(lines):
        if line.sku == sku:
            return line.unit_price
    return None
