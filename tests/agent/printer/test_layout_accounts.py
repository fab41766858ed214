"""(1.3) A sale paid on a house account prints the tender as "On account", in each language."""

from __future__ import annotations

from agent.printer.layout import layout_sale
from tests.agent.printer.test_layout import SALE, Shop, rows


def test_on_account_tender_is_named() -> None:
    sale = {**SALE, "payment": "other",
            "tenders": [{"method": "account", "amount": 9070, "account_id": "ac-1"},
                        {"method": "cash", "amount": 2000}]}
    text = "\n".join(rows(layout_sale(sale, reasons={}, shop=Shop(), columns=42)))
    assert "On account|90.70 EUR" in text and "Cash|20.00 EUR" in text
    fa = "\n".join(rows(layout_sale(sale, reasons={}, shop=Shop(), columns=32, language="fa")))
    assert "نسیه" in fa and "account" not in fa
