"""The receipt layout (pure): widths, cleaning, reasons, offline notice, tenders."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.printer.encode import EncodeOptions, encode, isolate_ltr
from agent.printer.layout import (
    Qr,
    Row,
    Separator,
    Shop,
    cell_width,
    clean,
    fit_rows,
    layout_sale,
    layout_text,
    wrap,
)
from agent.printer.reasons import rule_reasons
from agent.rules import parse_bundle
from hw_sim.escpos_decode import decode

SALE: dict[str, Any] = {
    "sale_id": "01a2230e-c551-7687-8277-4744162257b8", "at": "2026-11-25T10:00:00.000+01:00",
    "terminal_id": "T-0001", "staff_name": "Cara", "offline": False,
    "member": {"name": "Sara K."},
    "lines": [{"sku": "beans", "category": "coffee", "qty": 2, "unit_price": 6000},
              {"name": "Bánh mì đặc biệt", "qty": 1, "unit_price": 300}],
    "gross": 12300, "discounts": [{"rule": "gold10", "amount": 1230}],
    "redeemed_points": 0, "redeemed_value": 0, "credits_used": [], "payable": 11070,
    "payment": "cash", "points_earned": 110, "credits_earned": [],
    "balances_after": {"points": 1310}, "currency": "EUR", "minor_units": 2,
}
REASONS = {"gold10": [("why_percent", {"pct": "10"}), ("why_tier", {"tier": "gold"})]}


def rows(receipt: Any) -> list[str]:
    return [f"{b.start}|{b.end}" for b in receipt.blocks if isinstance(b, Row)]


@pytest.mark.parametrize("columns", [32, 42, 48])
def test_every_row_fits_the_paper(columns: int) -> None:
    receipt = layout_sale({**SALE, "staff_name": "A" * 100}, reasons=REASONS,
                          shop=Shop("Café Rose " * 5, ("x" * 80,)), columns=columns)
    for b in receipt.blocks:
        if isinstance(b, Row):
            assert cell_width(b.start) + cell_width(b.end) + (1 if b.end else 0) <= columns
    assert receipt.cash and not receipt.rtl
    assert sum(isinstance(b, Qr) for b in receipt.blocks) == 1


def test_benefit_says_why_in_words_not_the_rule_id() -> None:
    text = "\n".join(rows(layout_sale(SALE, reasons=REASONS, shop=Shop(), columns=42)))
    assert "Discount|-12.30 EUR" in text and "10% off · for gold members|" in text
    assert "gold10" not in text
    fa = "\n".join(rows(layout_sale(SALE, reasons=REASONS, shop=Shop(), columns=42,
                                    language="fa")))
    assert "۱۰٪ تخفیف · برای سطح gold" in fa and "-۱۲.۳۰ EUR" in fa


def test_offline_notice_tenders_change_and_card() -> None:
    sale = {**SALE, "offline": True, "payment": "card",
            "tenders": [{"method": "cash", "amount": 2000}, {"method": "card", "amount": 9070}],
            "change": 0}
    text = "\n".join(rows(layout_sale(sale, reasons={}, shop=Shop(), columns=42)))
    assert "Priced offline" in text
    assert "Cash|20.00 EUR" in text and "Card|90.70 EUR" in text
    card = layout_sale({**SALE, "payment": "card"}, reasons={}, shop=Shop(), columns=42)
    assert not card.cash


def test_control_characters_become_spaces_everywhere() -> None:
    hostile = "A\x1bp\x00\x19\xfa\x1dV\x00\x10\x04\x01\u202eB\r\nC\x9b"
    assert clean(hostile) == "A p \xfa V B C"
    sale = {**SALE, "staff_name": hostile, "member": {"name": hostile},
            "lines": [{"sku": hostile, "qty": 1, "unit_price": 1}]}
    receipt = layout_sale(sale, reasons={}, shop=Shop(hostile, (hostile,)), columns=32)
    data = encode(receipt, EncodeOptions()).body
    decoded = decode(data)
    assert decoded.unknown == [] and decoded.drawer == [] and decoded.cuts == 1
    assert not any(ch < " " for line in decoded.lines for ch in line)


def test_a_name_outside_the_code_page_is_an_image_row() -> None:
    receipt = layout_sale(SALE, reasons={}, shop=Shop(), columns=42)
    decoded = decode(encode(receipt, EncodeOptions(code_page="cp437")).body)
    assert len(decoded.images) == 1  # the Vietnamese name
    assert not any("Bánh" in line for line in decoded.lines)
    assert "beans" + " " * (42 - 5 - 10) + "120.00 EUR" in decoded.lines


def test_cash_register_lines_are_wrapped_and_bounded() -> None:
    receipt = layout_text(["x" * 200] * 70, shop=Shop("S"), columns=32, title="T")
    body = [b for b in receipt.blocks if isinstance(b, Row)][2:]
    assert sum(len(b.start) for b in body) == 200 * 60  # at most 60 lines taken
    assert all(len(b.start) <= 32 for b in body)
    assert isinstance(receipt.blocks[2], Separator)


@given(st.text(max_size=300), st.sampled_from([32, 42, 48]))
def test_wrap_never_loses_text_or_overflows(value: str, columns: int) -> None:
    text = clean(value)
    lines = wrap(text, columns)
    assert all(cell_width(line) <= columns for line in lines)
    assert "".join(lines).replace(" ", "") == text.replace(" ", "")


def test_amount_goes_on_its_own_row_when_the_label_fills_the_paper() -> None:
    out = fit_rows(Row("word " * 20, "1234567.89 EUR"), 32)
    assert out[-1].end == "1234567.89 EUR" and all(not r.end for r in out[:-1])


def test_isolate_keeps_latin_runs_whole() -> None:
    assert isolate_ltr("عضو: Sara K.") == "عضو: \u2066Sara K.\u2069"
    assert isolate_ltr("اعتبار (credit.club)") == "اعتبار (\u2066credit.club\u2069)"
    # A signed amount keeps its sign on the left ("-۲.۲۵", not "۲.۲۵-"); a date's
    # dashes are not signs.
    assert isolate_ltr("-۲.۲۵ EUR") == "\u2066-۲.۲۵\u2069 \u2066EUR\u2069"
    assert isolate_ltr("+۱۲") == "\u2066+۱۲\u2069"
    assert isolate_ltr("-2.25 EUR") == "\u2066-2.25 EUR\u2069"
    assert isolate_ltr("۲۰۲۶-۱۱-۲۵") == "۲۰۲۶-۱۱-۲۵"


def test_reasons_from_the_rule_conditions() -> None:
    from hw_sim.terminal import demo_bundle

    bundle = parse_bundle(demo_bundle()["payload"] if "payload" in demo_bundle()
                          else demo_bundle())
    gold = bundle.rule("gold10")
    coffee = bundle.rule("coffee-2")
    assert gold is not None and coffee is not None
    assert rule_reasons(gold, 2, "EUR") == (("why_percent", {"pct": "10"}),
                                            ("why_tier", {"tier": "gold"}))
    assert rule_reasons(coffee, 2, "EUR") == (("why_category", {"what": "coffee"}),)


def test_receipt_time_is_the_shops() -> None:
    from agent.printer.service import at_text

    assert at_text("2026-11-25T09:00:00.000Z", "Europe/Berlin") == "2026-11-25 10:00"
    assert at_text("2026-11-25T09:00:00.000Z", "Asia/Tehran") == "2026-11-25 12:30"
    assert at_text("2026-11-25T10:00:00.000+01:00", None) == "2026-11-25 10:00"
    assert at_text("2026-11-25T10:00:00.000+01:00", "No/Such_Zone") == "2026-11-25 10:00"
    assert at_text("garbage\x1b", None) == "garbage\x1b"  # cleaned by the layout


def test_balances_are_named_as_a_customer_reads_them_not_by_their_keys() -> None:
    sale = {**SALE, "balances_after": {"points": 1310, "credit.club": 5000,
                                       "credit.merchant:M-7": 2000},
            "credits_earned": [{"rule": "cb", "kind": "credit.club", "amount": 100}]}
    text = "\n".join(rows(layout_sale(sale, reasons={}, shop=Shop(), columns=42)))
    assert "Club credit|50.00 EUR" in text and "Shop credit|20.00 EUR" in text, text
    assert "credit.club" not in text and "credit.merchant" not in text
    fa = "\n".join(rows(layout_sale(sale, reasons={}, shop=Shop(), columns=42, language="fa")))
    assert "اعتبار باشگاه" in fa and "اعتبار فروشگاه" in fa and "credit." not in fa


def test_stored_value_tenders_topup_and_the_gift_card_code_are_printed() -> None:
    """(1.3) The customer takes the gift card's code home on the receipt; units print
    as a count, not money."""
    sale = {**SALE, "tenders": [{"method": "gift_card", "amount": 9070, "card_id": "gc-1"},
                                {"method": "stored_value", "amount": 2000,
                                 "kind": "value.wallet"}],
            "topups": [{"line": 0, "kind": "value.wallet", "amount": 5000}],
            "gift_cards_issued": [{"line": 1, "card_id": "gc-2", "token": "code:GC-ABC123",
                                   "amount": 10000, "expires": None}],
            "balances_after": {"units.wash": 4}}
    text = "\n".join(rows(layout_sale(sale, reasons={}, shop=Shop(), columns=42)))
    assert "Gift card|90.70 EUR" in text and "Wallet|20.00 EUR" in text
    assert "Top-up (value.wallet)|+50.00 EUR" in text
    assert "Gift card GC-ABC123|100.00 EUR" in text
    assert "units.wash|4" in text
