"""(1.3) The stored-value arithmetic (agent/rules/stored_value.py): the worked examples of
docs/protocol/bundle.md "Stored value", and properties by hypothesis."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.errors import RulesError
from agent.rules.model import Quote
from agent.rules.stored_value import (
    ValueRefused,
    gift_card_refusal,
    line_value_rows,
    outside_rules,
    parse_stored_value,
    spendable,
    split_tenders,
    value_delta_of_sale,
    value_refusal,
)

TODAY = dt.date(2026, 11, 24)
CONFIG = parse_stored_value({
    "types": [{"kind": "value.wallet", "name": "Wallet", "max_balance": 100000,
               "expires_days": 365},
              {"kind": "units.wash", "name": "Car wash", "unit": "wash", "spendable": False}],
    "offline_max_spend_per_holder_day": 20000})


def test_worked_example_wallet_lots_and_expiry() -> None:
    # Wallet 80.00, of which 30.00 bought on 2025-11-20 expired after 2026-11-20.
    record = {"balance_lots": {"value.wallet": [{"amount": 3000, "expires": "2026-11-20"},
                                                {"amount": 2000, "expires": "2027-01-01"}]}}
    assert spendable(8000, record["balance_lots"]["value.wallet"], TODAY) == 5000
    refusal = value_refusal(CONFIG, record, {"value.wallet": 8000}, "value.wallet", 5001,
                            TODAY)
    assert refusal is not None and refusal.reason == "insufficient_value"
    assert value_refusal(CONFIG, record, {"value.wallet": 8000}, "value.wallet", 5000,
                         TODAY) is None
    # Units are not a tender; an unknown kind neither.
    for kind in ("units.wash", "value.other"):
        r = value_refusal(CONFIG, {}, {kind: 10}, kind, 1, TODAY)
        assert r is not None and r.reason == "not_spendable"


def test_gift_card_refusals() -> None:
    card = {"holder": "gift_card", "status": "active", "expires": "2026-12-31"}
    assert gift_card_refusal(card, {"value.gift": 500}, 500, TODAY) is None
    for record, balance, amount, reason in [
            (None, 0, 1, "gift_card_unknown"),
            ({"member_id": "m-1"}, 500, 1, "gift_card_unknown"),
            ({**card, "status": "blocked"}, 500, 1, "gift_card_unknown"),
            ({**card, "expires": "2026-11-23"}, 500, 1, "gift_card_expired"),
            (card, 0, 1, "gift_card_empty"),
            (card, 500, 501, "insufficient_value")]:
        r = gift_card_refusal(record, {"value.gift": balance}, amount, TODAY)
        assert r is not None and r.reason == reason


def test_rows_a_basket_sells() -> None:
    specs: list[Any] = [None, {"topup": {"kind": "value.wallet", "amount": 5000}},
                        {"gift_card": {"amount": None, "expires_days": 30}}]
    lines = [{"qty": 1, "unit_price": 250}, {"qty": 2, "unit_price": 5000},
             {"qty": 1, "unit_price": 2500}]
    topups, cards = line_value_rows(specs, lines, CONFIG, TODAY)
    assert topups == [{"line": 1, "kind": "value.wallet", "amount": 10000,
                       "expires": "2027-11-24"}]
    assert cards == [{"line": 2, "amount": 2500, "expires": "2026-12-24"}]
    with pytest.raises(ValueRefused):
        line_value_rows([{"gift_card": {"amount": 100}}], [{"qty": 2, "unit_price": 100}],
                        CONFIG, TODAY)


def test_tenders_split_and_checked() -> None:
    money, value = split_tenders([{"method": "cash", "amount": 5},
                                  {"method": "stored_value", "kind": "value.wallet",
                                   "amount": 7},
                                  {"method": "gift_card", "token": "code:GC-1", "amount": 3}])
    assert money == [{"method": "cash", "amount": 5}]
    assert [(v.method, v.amount, v.kind, v.token) for v in value] == [
        ("stored_value", 7, "value.wallet", None), ("gift_card", 3, None, "code:GC-1")]
    for bad in ([{"method": "stored_value", "kind": "units.wash", "amount": 1}],
                [{"method": "gift_card", "token": 5, "amount": 1}],
                [{"method": "gift_card", "token": "code:X", "amount": True}]):
        with pytest.raises(ValueRefused):
            split_tenders(bad)


def test_bundle_block_is_checked() -> None:
    for bad in ({"types": [{"kind": "wallet"}]}, {"types": [{"kind": "value.a"}] * 2},
                {"types": [{"kind": "value.a", "max_balance": -1}]}, [],
                {"offline_max_spend_per_holder_day": "x"}):
        with pytest.raises(RulesError):
            parse_stored_value(bad)


def test_sale_delta_of_topups_and_tenders() -> None:
    sale = {"topups": [{"kind": "value.wallet", "amount": 5000}],
            "tenders": [{"method": "stored_value", "kind": "value.wallet", "amount": 1200},
                        {"method": "cash", "amount": 100}]}
    assert value_delta_of_sale(sale) == {"value.wallet": 3800}


@given(balance=st.integers(-10**6, 10**9),
       lots=st.lists(st.tuples(st.integers(0, 10**6), st.dates(dt.date(2025, 1, 1),
                                                                dt.date(2028, 1, 1))),
                     max_size=8))
def test_spendable_is_never_negative_nor_above_the_balance(
        balance: int, lots: list[tuple[int, dt.date]]) -> None:
    rows = [{"amount": a, "expires": d.isoformat()} for a, d in lots]
    got = spendable(balance, rows, TODAY)
    assert 0 <= got <= max(0, balance)
    if all(d >= TODAY for _a, d in lots):
        assert got == max(0, balance)


@given(rule_lines=st.lists(st.integers(0, 10**6), max_size=5),
       value_lines=st.lists(st.integers(1, 10**6), min_size=1, max_size=3),
       data=st.data())
def test_stored_value_lines_are_added_at_their_price(
        rule_lines: list[int], value_lines: list[int], data: st.DataObject) -> None:
    n = len(rule_lines) + len(value_lines)
    places = sorted(data.draw(st.lists(st.integers(0, n - 1), min_size=len(value_lines),
                                       max_size=len(value_lines), unique=True)))
    lines: list[dict[str, Any]] = []
    rules_iter, value_iter = iter(rule_lines), iter(value_lines)
    for i in range(n):
        price = next(value_iter) if i in places else next(rules_iter)
        lines.append({"qty": 1, "unit_price": price})
    gross = sum(rule_lines)
    quote = Quote(gross, [], gross, 0, 0, [], gross, [], [], 0, 1,
                  line_nets=list(rule_lines))
    out = outside_rules(quote, lines, places)
    assert out.payable == gross + sum(value_lines) == out.gross == out.net
    assert out.line_nets == [line["unit_price"] for line in lines]
