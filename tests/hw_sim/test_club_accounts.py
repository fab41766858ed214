"""(1.3) The club applies house-account events exactly once, whatever the delivery order and
repeats, and agrees with the terminal's own arithmetic: events made by the real store
(sales on account, refunds, payments), the club's `owed` equals the terminal's usable
`owed` and the account record reaches the terminal in the change set."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.offline_queue import AccountRefused, Store
from hw_sim.club.ledger import Ledger
from tests.agent.offline_queue.helpers import AT, member_record, sale_body
from tests.agent.offline_queue.test_accounts import account_record, fill, on_account

OPS = st.lists(st.tuples(st.sampled_from(["charge", "pay", "refund", "refund_line"]),
                         st.integers(1, 4000)), min_size=1, max_size=25)


def _terminal_events(tmp: Path, ops: list[tuple[str, int]]) -> tuple[list[dict[str, Any]], int]:
    store = Store.open(tmp / "t.db", "T-1", "M-7")
    fill(store, member_record("m-1"), account_record(limit=20_000, owed=1000))
    sales: list[str] = []
    for op, amount in ops:
        try:
            if op == "charge":
                body = sale_body(payable=amount)
                body["lines"] = [{"sku": "a", "category": None, "qty": 2,
                                  "unit_price": amount // 2},
                                 {"sku": "b", "category": None, "qty": 1,
                                  "unit_price": amount - 2 * (amount // 2)}]
                sales.append(store.outbox.append("sale", on_account(body, amount), at=AT,
                                                 staff_id=None, offline=False).id)
            elif op == "pay":
                store.outbox.append("account_payment", {"account_id": "ac-1", "amount": amount,
                                                        "method": "cash"},
                                    at=AT, staff_id=None, offline=False)
            elif sales and op == "refund":
                store.outbox.append("refund", {"sale_id": sales[amount % len(sales)],
                                               "reason": None}, at=AT, staff_id=None,
                                    offline=False)
            elif sales:
                store.outbox.append("refund_lines", {"sale_id": sales[amount % len(sales)],
                                                     "reason": None,
                                                     "lines": [{"line": 0, "qty": 1}]},
                                    at=AT, staff_id=None, offline=False)
        except (AccountRefused, ValueError):
            continue  # refused by the store: nothing recorded
    rows = store.db.execute_sql("SELECT body FROM events ORDER BY seq").fetchall()
    owed = store.members.usable_balances("ac-1").get("owed", 0)
    store.close()
    return [json.loads(r[0]) for r in rows], owed


@settings(max_examples=25, deadline=None)
@given(ops=OPS, data=st.data())
def test_club_owed_equals_the_terminals_in_any_delivery_order(ops: list[tuple[str, int]],
                                                              data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as d:
        events, terminal_owed = _terminal_events(Path(d), ops)
        if not events:
            return
        deliveries = data.draw(st.lists(st.tuples(st.integers(0, len(events) - 1),
                                                  st.integers(1, 6)), max_size=8))
        batches = [events[i:i + n] for i, n in deliveries] + [events]
        order = data.draw(st.permutations(range(len(batches))))
        ledger = Ledger(Path(d) / "club.db")
        ledger.upsert_members([account_record(limit=20_000, owed=1000),
                               member_record("m-1")])
        changed: dict[str, Any] = {}
        for i in order:
            r = ledger.receive_batch("T-1", batches[i])
            for rec in r.changed_members:
                changed[rec["member_id"]] = rec
        club = ledger.member("ac-1")
        assert club is not None
        assert club["balances"]["owed"] == terminal_owed
        assert club["holder"] == "account" and club["credit_limit"] == 20_000
        # The change set carried the account record to the terminals.
        assert changed["ac-1"]["balances"]["owed"] == terminal_owed
        assert ledger.applied_seq("T-1") == len(events)
        ledger.close()


def test_a_rejected_sale_takes_its_charge_with_it(tmp_path: Path) -> None:
    events, _ = _terminal_events(tmp_path, [("charge", 500)])
    sale, charge = events
    ledger = Ledger(tmp_path / "club.db")
    ledger.upsert_members([account_record(owed=0), member_record("m-1")])
    r = ledger.receive_batch("T-1", [{**sale, "payable": -1}, charge])
    assert [x["id"] for x in r.rejected] == [sale["id"]]
    assert ledger.member("ac-1")["balances"]["owed"] == 0  # type: ignore[index]
    bad = {**charge, "id": "x", "seq": 3, "amount": -5}
    r = ledger.receive_batch("T-1", [bad])
    assert r.rejected[0]["reason"].startswith("malformed: account_charge.amount")
    ledger.close()


@settings(max_examples=20, deadline=None)
@given(ops=st.lists(st.tuples(st.sampled_from(["m-5", "m-6"]), st.integers(0, 300),
                              st.integers(0, 80), st.booleans()), min_size=1, max_size=20),
       data=st.data())
def test_pooled_sales_change_the_pool_alike_at_club_and_terminal(
        ops: list[tuple[str, int, int, bool]], data: st.DataObject) -> None:
    """(1.3) Family pools: the club books a pooled member's points on the pool as the
    terminal projected them; the member's own balances and stats stay the member's."""
    from agent.errors import LimitExceeded
    from tests.agent.offline_queue.test_pools import pool_record, pooled

    with tempfile.TemporaryDirectory() as d:
        store = Store.open(Path(d) / "t.db", "T-1", "M-7")
        members = [member_record("m-5", points=7, pool="pl-1"),
                   member_record("m-6", tokens=("code:CLUB-1006",), points=0, pool="pl-1"),
                   pool_record(400)]
        fill(store, *members)
        sales: list[str] = []
        for member_id, redeem, earn, refund in ops:
            try:
                if refund and sales:
                    store.outbox.append("refund", {"sale_id": sales.pop(0), "reason": None},
                                        at=AT, staff_id=None, offline=True)
                    continue
                sales.append(store.outbox.append(
                    "sale", pooled(member_id, redeemed_points=redeem, earned=(earn,)), at=AT,
                    staff_id=None, offline=True, check_funds=True).id)
            except LimitExceeded:
                continue
        rows = store.db.execute_sql("SELECT body FROM events ORDER BY seq").fetchall()
        events = [json.loads(r[0]) for r in rows]
        here = store.members.usable_balances("pl-1")["points"]
        store.close()
        if not events:
            return
        ledger = Ledger(Path(d) / "club.db")
        ledger.upsert_members(members)
        batches = [events[i:i + n] for i, n in data.draw(st.lists(
            st.tuples(st.integers(0, len(events) - 1), st.integers(1, 5)), max_size=6))]
        for batch in [*batches, events]:
            ledger.receive_batch("T-1", batch)
        assert ledger.member("pl-1")["balances"]["points"] == here  # type: ignore[index]
        assert ledger.member("m-5")["balances"]["points"] == 7  # type: ignore[index]
        ledger.close()
