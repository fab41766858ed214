"""What a discount and its money read like at the till (#15 item 15 and narrow
screens), from the real agent's quotes and receipts (``tests.agent.localapi.harness``).

Seen: "gold10: 12.00 EUR off (10.00 % of 120.00 EUR)" beside "-12.00" (the amount
twice); the receipt showed the rule id "gold10"; in a narrow Persian panel
"۱۲۰٫۰۰ €" wrapped with the € on the next line.
"""

from __future__ import annotations

import json
from typing import Any

from agent.rules import parse_bundle
from agent.tui.explain import discount_label, why_not
from agent.tui.i18n import load_locale, money, set_locale, wrap_visual
from agent.tui.widgets.bidi import BidiText
from tests.agent.localapi.harness import GOLD, Harness, run
from tests.agent.rules.conftest import spec_bundle

NAMED = [{"id": "gold10", "kind": "discount", "priority": 100, "name": "Gold members",
          "when": {"tiers": ["gold"]}, "then": {"percent_bps": 1000}},
         {"id": "big-basket", "kind": "discount", "priority": 90,
          "when": {"min_gross": 10_000_000}, "then": {"amount": 500}},
         {"id": "coffee-2", "kind": "discount", "priority": 50,
          "when": {"anonymous": True}, "then": {"amount": 200}}]


def _sale(rules: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    out: dict[str, Any] = {}

    async def scenario(h: Harness) -> None:
        h.bundle = parse_bundle(json.dumps(spec_bundle(rules=rules)))
        c = h.client()
        session = await h.login()
        token = GOLD["identifiers"][1]
        out["quote"] = await c.call("sale.quote", {"amount": 12000, "token": token})
        done = await c.call("sale.commit", {"quote_id": out["quote"]["quote_id"],
                                            "session": session})
        out["receipt"] = done["receipt"]
    run(scenario)
    return out["quote"], out["receipt"]


def test_a_discount_reads_naturally_and_names_its_rule_in_every_language() -> None:
    quote, receipt = _sale(NAMED)
    applied = next(x for x in quote["explain"] if x.get("rule") == "gold10")
    assert applied["name"] == "Gold members" and applied["percent_bps"] == 1000
    fixed = next(d for d in receipt["discounts"] if d["rule"] == "coffee-2")
    named = next(d for d in receipt["discounts"] if d["rule"] == "gold10")
    try:
        set_locale(load_locale("en"))
        label = discount_label(applied)
        assert label == "Gold members: 10 % off"
        assert "12.00" not in label                      # the amount stands beside it
        assert discount_label(named) == "Gold members: 10 % off"       # the receipt
        assert discount_label(fixed) == "coffee-2: discount"
        skipped = next(x for x in quote["explain"] if x.get("rule") == "big-basket")
        assert why_not(skipped, quote, lambda n: money(n, "EUR", 2)).startswith(
            "big-basket: not applied")
        for lang in ("fa", "ar", "he", "vi"):
            set_locale(load_locale(lang))
            text = str(BidiText(discount_label(named)))
            assert "Gold members" in text and "gold10" not in text, (lang, text)
            assert load_locale(lang).number(10) in text, (lang, text)
    finally:
        set_locale(load_locale("en"))


def test_a_money_value_never_wraps_away_from_its_sign() -> None:
    try:
        fa = load_locale("fa")
        set_locale(fa)
        quote = {"gross": 12000, "member": {"tier": "gold"}}
        item = {"rule": "big-basket", "why": "min_gross", "applied": False,
                "text": "big-basket: not applied, the basket is under 100,000.00 EUR"}
        sentence = why_not(item, quote, lambda n: money(n, "EUR", 2))
        value = fa.money(12000, "EUR", 2)
        broken = 0
        for width in range(10, 60):
            lines = wrap_visual(sentence, width)
            if not any(value in line for line in lines):
                broken += 1
        print(f"figure: widths 10-59, money value broken at {broken} widths")
        assert broken == 0
    finally:
        set_locale(load_locale("en"))


def test_the_rules_the_agent_did_not_look_at_are_counted_on_the_quote() -> None:
    # Seen: a rule for another day or product simply was not there; the customer
    # asks why. The agent's index note says how many; the panel shows it, last.
    from rich.console import Console

    from agent.tui.widgets.sale_panels import quote_table

    out: dict[str, Any] = {}

    async def scenario(h: Harness) -> None:
        out["quote"] = await h.client().call("sale.quote", {"amount": 12000,
                                                            "token": GOLD["identifiers"][1]})
    run(scenario)
    index = next(x for x in out["quote"]["explain"] if x.get("step") == "index")
    console = Console(width=60, record=True, color_system=None)
    console.print(quote_table(out["quote"], lambda n: money(n, "EUR", 2)))
    text = console.export_text()
    assert f"{index['rules']} other rule" in text, text
    assert text.index("other rule") > text.index("TO PAY") > text.index("Total")   # last
