"""Refunds by line attacked: four clients refunding overlapping lines of one sale at
once never refund more than was sold, and the member's balances come back exactly."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from agent.errors import ApiError
from tests.agent.localapi.harness import Harness, run
from tests.agent.localapi.test_methods import expect

BASKET = [{"sku": "espresso", "category": "coffee", "qty": 3, "unit_price": 250},
          {"sku": "cake", "category": "bakery", "qty": 2, "unit_price": 4550},
          {"sku": "tea", "category": "tea", "qty": 1, "unit_price": 333}]


async def _member_sale(h: Harness, session: str, **extra: Any) -> dict[str, Any]:
    c = h.client()
    q = await c.call("sale.quote", {"lines": BASKET, "token": "nfc:04A1B2", **extra})
    return dict(await c.call("sale.commit", {"quote_id": q["quote_id"], "payment": "cash",
                                             "session": session}))


def _balances(h: Harness) -> dict[str, int]:
    return dict(h.store.members.usable_balances("m-1"))


def test_four_clients_refunding_overlapping_lines_never_refund_more_than_sold() -> None:
    async def scenario(h: Harness) -> None:
        manager = await h.login("mg", "9999")
        before = _balances(h)
        sale = await _member_sale(h, manager, redeem_points=200)
        sale_id = sale["sale_id"]
        after_sale = _balances(h)
        assert after_sale != before
        clients = [h.client() for _ in range(4)]
        # Overlapping asks: 10 units asked for a sale of 6.
        asks = [[{"line": 0, "qty": 2}, {"line": 1, "qty": 1}],
                [{"line": 0, "qty": 2}],
                [{"line": 1, "qty": 2}, {"line": 2, "qty": 1}],
                [{"line": 0, "qty": 1}, {"line": 2, "qty": 1}]]

        async def refund(c: Any, lines: list[dict[str, int]]) -> Any:
            try:
                return await c.call("sale.refund", {"sale_id": sale_id, "reason": "race",
                                                    "lines": lines, "session": manager})
            except ApiError as exc:
                return exc

        answers = await asyncio.gather(*(refund(c, a) for c, a in zip(clients, asks,
                                                                      strict=True)))
        refused = [a for a in answers if isinstance(a, ApiError)]
        assert all(isinstance(a.data, dict) and a.data.get("reason") == "over_refund"
                   for a in refused), [(a.code, a.data) for a in refused]
        parts = [e for e in h.outbox() if e["type"] == "refund_lines"]
        per_line = [0, 0, 0]
        for p in parts:
            for x in p["lines"]:
                per_line[x["line"]] += x["qty"]
        assert all(done <= line["qty"] for done, line in zip(per_line, BASKET, strict=True))
        # Whatever is left, a whole refund now takes it; the balances come back exactly.
        rest = await clients[0].call("sale.refund", {"sale_id": sale_id, "reason": "rest",
                                                     "session": manager})
        assert rest["completes"] is True and rest["whole"] is False
        assert _balances(h) == before
        day = (h.now.replace(hour=0), h.now.replace(hour=23))
        assert h.store.members.offline_counters("m-1", *day) == (0, 0)
        err = await expect(-32008, clients[1].call(
            "sale.refund", {"sale_id": sale_id, "reason": "again", "session": manager}))
        assert err.data == {"reason": "refunded"}
        err = await expect(-32008, clients[1].call(
            "sale.refund", {"sale_id": sale_id, "reason": "again", "session": manager,
                            "lines": [{"line": 2, "qty": 1}]}))
        assert isinstance(err.data, dict) and err.data["reason"] == "over_refund"
        parts = [e for e in h.outbox() if e["type"] == "refund_lines"]
        sale_event = next(e for e in h.outbox() if e["id"] == sale_id)
        assert sum(p["payable"] for p in parts) == sale_event["payable"]
        assert sum(p["redeemed_points"] for p in parts) == sale_event["redeemed_points"]
        print(f"figure: 4 concurrent refunds asked 10 of 6 units; {len(answers) - len(refused)}"
              f" recorded, {len(refused)} refused over_refund; payable back "
              f"{sum(p['payable'] for p in parts)} of {sale_event['payable']}")
    run(scenario)


def test_hostile_lines_are_refused_with_reasons_and_nothing_is_recorded() -> None:
    async def scenario(h: Harness) -> None:
        manager = await h.login("mg", "9999")
        sale = await _member_sale(h, manager)
        c = h.client()
        recorded = len(h.outbox())
        base = {"sale_id": sale["sale_id"], "reason": "x", "session": manager}
        for lines, code, reason in [
                ([], -32602, "bad_lines"), ("all", -32602, "bad_lines"),
                ([{"line": 3, "qty": 1}], -32602, "no_such_line"),
                ([{"line": -1, "qty": 1}], -32602, "no_such_line"),
                ([{"line": 0, "qty": 0}], -32602, "bad_lines"),
                ([{"line": 0, "qty": True}], -32602, "bad_lines"),
                ([{"line": 0, "qty": 2**40}], -32008, "over_refund"),
                ([{"line": 0, "qty": 2}, {"line": 0, "qty": 2}], -32008, "over_refund"),
                ([{"line": 0, "qty": 1}] * 501, -32602, "bad_lines"),
                ([[0, 1]], -32602, "bad_lines")]:
            err = await expect(code, c.call("sale.refund", {**base, "lines": lines}))
            assert isinstance(err.data, dict) and err.data["reason"] == reason, (lines, err.data)
        assert len(h.outbox()) == recorded
        # A whole refund after a refund by line is the rest, never the whole again.
        await c.call("sale.refund", {**base, "lines": [{"line": 1, "qty": 1}]})
        rest = await c.call("sale.refund", base)
        assert rest["lines"] == [{"line": 0, "qty": 3}, {"line": 1, "qty": 1},
                                 {"line": 2, "qty": 1}]
        assert not [e for e in h.outbox() if e["type"] == "refund"]
        json.dumps(h.outbox())
    run(scenario)


def test_day_summary_and_cash_up_count_refunds_by_line() -> None:
    async def scenario(h: Harness) -> None:
        manager = await h.login("mg", "9999")
        c = h.client()
        sale = await _member_sale(h, manager)
        event = next(e for e in h.outbox() if e["id"] == sale["sale_id"])
        part = await c.call("sale.refund", {"sale_id": sale["sale_id"], "reason": "one cake",
                                            "session": manager,
                                            "lines": [{"line": 1, "qty": 1}]})
        view = h.store.members.member_view("m-1")
        assert view is not None
        assert view["stats"]["spend_30d"] == event["payable"] - part["payable"]
        assert view["stats"]["purchase_count"] == 1
        start, end = h.now.replace(hour=0), h.now.replace(hour=23)
        assert h.store.members.offline_counters("m-1", start, end) == (0, 0)
        s = await c.call("day.summary", {"session": manager})
        assert s["refunds"] == 1 and s["refunded"]["by_line"] == 1
        assert s["refunded"]["payable"] == part["payable"]
        assert s["refunded"]["count"] == 0  # the sale is not undone yet
        assert s["net_sales"]["payable"] == event["payable"] - part["payable"]
        assert s["net_sales"]["count"] == 1
        assert s["refunded"]["by_payment"] == {"cash": part["payable"]}
        assert s["cash"]["refunds"] == part["payable"]
        assert s["cash"]["net"] == event["payable"] - part["payable"]
        rest = await c.call("sale.refund", {"sale_id": sale["sale_id"], "reason": "all",
                                            "session": manager})
        s = await c.call("day.summary", {"session": manager})
        assert s["refunded"]["payable"] == event["payable"]
        assert s["net_sales"] == {k: 0 for k in s["net_sales"]}
        assert s["cash"]["net"] == 0 and rest["completes"]
        view = h.store.members.member_view("m-1")
        assert view is not None and view["stats"]["spend_30d"] == 0
        assert view["stats"]["purchase_count"] == 0
        print(f"figure: two refunds by line took the day's net back from "
              f"{event['payable']} to 0")
    run(scenario)
