"""The basket's pure functions: scans, typed entries, merging lines."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.tui.basket import (
    Line,
    NeedsPrice,
    SetQuantity,
    add_line,
    gs1_check_digit_ok,
    is_product_code,
    last_price,
    parse_entry,
    scanned_product,
)


@pytest.mark.parametrize(("code", "ok"), [
    ("4006381333931", True),   # EAN-13
    ("96385074", True),        # EAN-8
    ("036000291452", True),    # UPC-A
    ("10012345678902", True),  # GTIN-14
    ("4006381333932", False),  # wrong check digit
    ("123456", False),         # wrong length
    ("CLUB-1001", False),
])
def test_product_codes(code, ok) -> None:
    assert is_product_code(code) is ok


def test_scans_are_products_or_members() -> None:
    assert scanned_product("code:4006381333931") == "4006381333931"
    assert scanned_product("code:CLUB-1001") is None
    assert scanned_product("nfc:04A1B2C3D4E5F6") is None


@given(st.text(alphabet="0123456789", min_size=7, max_size=13))
def test_exactly_one_check_digit_fits(body) -> None:
    fits = [d for d in "0123456789" if gs1_check_digit_ok(body + d)]
    assert len(fits) == 1


def test_entries() -> None:
    assert parse_entry("12.50", 2) == Line(None, 1, 1250)
    assert parse_entry("3*2.50", 2) == Line(None, 3, 250)
    assert parse_entry("3x2.50", 2) == Line(None, 3, 250)
    assert parse_entry("۳*۲٫۵۰", 2) == Line(None, 3, 250)
    assert parse_entry("4006381333931", 2) == NeedsPrice("4006381333931")
    assert parse_entry("4006381333931 1.99", 2) == Line("4006381333931", 1, 199)
    assert parse_entry("0", 2) is None
    assert parse_entry("0*5", 2) is None
    assert parse_entry("", 2) is None


def test_same_product_same_price_adds_quantity() -> None:
    basket = add_line((), Line("4006381333931", 1, 199))
    basket = add_line(basket, Line("4006381333931", 1, 199))
    basket = add_line(basket, Line(None, 1, 500))
    basket = add_line(basket, Line(None, 1, 500))
    assert basket == (Line("4006381333931", 2, 199), Line(None, 1, 500), Line(None, 1, 500))
    assert last_price(basket, "4006381333931") == 199
    assert sum(line.total for line in basket) == 1398


@pytest.mark.parametrize("text,qty", [("*3", 3), ("x 12", 12), ("×2", 2), ("*۴", 4)])
def test_star_and_a_number_sets_the_quantity(text, qty) -> None:
    assert parse_entry(text, 2) == SetQuantity(qty)


@pytest.mark.parametrize("text", ["*0", "*", "*12345"])
def test_star_without_a_sane_quantity_means_nothing(text) -> None:
    assert parse_entry(text, 2) is None
