"""The pure event arithmetic: validation, wire form, effects."""

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.offline_queue import events as ev

from .helpers import sale_body


@pytest.mark.parametrize(("type_", "body", "fragment"), [
    ("coffee", {}, "unknown event type"),
    ("refund", {"sale_id": "x"}, "needs reason"),
    ("sale", {**sale_body(), "gross": "10"}, "sale.gross must be an integer"),
    ("sale", {**sale_body(), "redeemed_points": True}, "must be an integer"),
    ("sale", {**sale_body(), "credits_used": [{"amount": 1}]}, "'kind'"),
    ("sale", {**sale_body(), "seq": 4}, "set by the store"),
    ("attendance", {"staff_id": "s", "action": "sideways", "identified_by": None}, "'in'"),
    ("expense", {"amount": 1.5, "category": "x", "note": ""}, "integer"),
    ("appointment", {"appointment_id": "a", "action": "move", "customer": None,
                     "service": None, "staff_id": None, "start": "x", "minutes": 3,
                     "note": None}, "create, update or cancel"),
    ("member_enrol", {"member_id": "local:1", "name": "x", "identifiers": [3],
                      "referred_by": None}, "tokens"),
])
def test_malformed_bodies_are_refused(type_: str, body: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ev.InvalidEvent, match=fragment):
        ev.validate_body(type_, body)


def test_every_protocol_type_is_known() -> None:
    known = set(ev.EVENT_TYPES) - set(ev.ACCOUNT_TYPES)  # #19 accounts: the test below
    assert known == {"sale", "refund", "attendance", "expense", "cash_receipt",
                                   "appointment", "member_enrol", "card_link", "staff_change",
                                   "correction", "day_close",  # #15 items 7 and 10
                                   "refund_lines",  # #17: refunds by line
                                   "gift_card_redeem",  # #19: gift cards (1.3)
                                   "balance_adjust",  # #19: manual adjustments (1.3)
                                   "package_use", "package_freeze"}  # #19: packages (1.3)


def test_every_protocol_type_is_known_19_accounts() -> None:
    assert {"account_charge", "account_refund", "account_payment"} <= set(ev.EVENT_TYPES)


def test_wire_event_has_common_keys_and_own_staff_id_wins_for_attendance() -> None:
    wire = ev.wire_event(event_id="i", seq=3, type_="attendance", at="2026-11-24T10:00:00+01:00",
                         merchant_id="M", terminal_id="T", staff_id="mgr", offline=True,
                         body={"staff_id": "s-9", "action": "in", "identified_by": None})
    assert list(wire)[:8] == list(ev.COMMON_KEYS)
    assert wire["staff_id"] == "s-9"
    # 1.1: who recorded it and whom it is about, each under its own name.
    assert (wire["recorded_by"], wire["target_staff_id"]) == ("mgr", "s-9")
    sale = ev.wire_event(event_id="i", seq=3, type_="expense", at="x", merchant_id="M",
                         terminal_id="T", staff_id="mgr", offline=False,
                         body={"amount": 1, "category": "c", "note": ""})
    assert sale["staff_id"] == "mgr" and sale["recorded_by"] == "mgr"
    assert "target_staff_id" not in sale


def test_worked_example_b_of_rules_md() -> None:
    # Redeeming 1000 of 1200 points, earning 33 + 33 (multiplier row) and 66 credit.
    body = sale_body(redeemed_points=1000, redeemed_value=1000, earned=(33, 33),
                     credits_earned=(("credit.club", 66),), payable=3345)
    effect = ev.sale_effect(body)
    assert effect.balance == {"points": -934, "credit.club": 66}
    assert ev.sum_balances({"points": 1200}, effect.balance.items())["points"] == 266
    assert effect.redeemed_value == 1000 and effect.purchases == 1 and effect.spend == 3345


def test_anonymous_sale_has_no_effect() -> None:
    assert ev.sale_effect(sale_body(None)) == ev.Effect()


amounts = st.integers(min_value=0, max_value=10**9)


@given(redeem=amounts, earned=st.lists(amounts, max_size=4),
       used=st.lists(st.tuples(st.sampled_from(["credit.club", "credit.merchant:M-7"]), amounts),
                     max_size=3),
       got=st.lists(st.tuples(st.sampled_from(["credit.club", "points2"]), amounts), max_size=3))
def test_effect_matches_the_formula_and_a_refund_undoes_it(
        redeem: int, earned: list[int], used: list[tuple[str, int]],
        got: list[tuple[str, int]]) -> None:
    body = sale_body(redeemed_points=redeem, earned=tuple(earned), credits_used=tuple(used),
                     credits_earned=tuple(got))
    effect = ev.sale_effect(body)
    expect: dict[str, int] = {"points": sum(earned) - redeem}
    for kind, amount in used:
        expect[kind] = expect.get(kind, 0) - amount
    for kind, amount in got:
        expect[kind] = expect.get(kind, 0) + amount
    assert effect.balance == {k: v for k, v in expect.items() if v}
    back = ev.sum_balances(ev.sum_balances({}, effect.balance.items()),
                           effect.reversed().balance.items())
    assert all(v == 0 for v in back.values())


def test_encode_batch_is_compact_utf8() -> None:
    data = ev.encode_batch("b", "T", [{"name": "سارا"}])
    assert data == '{"batch":"b","terminal_id":"T","events":[{"name":"سارا"}]}'.encode()
