"""sale.list, sale.void, refunds in day.summary, member.search/profile/card_link
(#15 items 3 and 14) against the real services, store and rules."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from agent.localapi import receipt_number
from tests.agent.localapi.harness import Harness, run
from tests.agent.localapi.test_methods import expect


async def _sell(h: Harness, session: str, amount: int, token: str | None = None,
                payment: str = "cash") -> dict[str, Any]:
    c = h.client()
    params: dict[str, Any] = {"amount": amount}
    if token:
        params["token"] = token
    q = await c.call("sale.quote", params)
    return dict(await c.call("sale.commit", {"quote_id": q["quote_id"], "payment": payment,
                                             "session": session}))


def test_sale_list_newest_first_search_paging_and_bounds() -> None:
    async def scenario(h: Harness) -> None:
        c = h.client()
        cashier = await h.login()
        sold = [await _sell(h, cashier, 1000 + i, "nfc:04A1B2" if i == 3 else None)
                for i in range(5)]
        page = await c.call("sale.list", {"session": cashier, "limit": 2})
        assert [s["sale_id"] for s in page["sales"]] == [sold[4]["sale_id"], sold[3]["sale_id"]]
        assert page["sales"][0]["receipt_no"] == receipt_number(sold[4]["sale_id"])
        assert page["sales"][0]["voidable"] is True and page["sales"][1]["voidable"] is False
        assert page["sales"][1]["member_name"] == "Sara K."
        older = await c.call("sale.list", {"session": cashier, "limit": 10,
                                           "before": page["next_before"]})
        assert [s["sale_id"] for s in older["sales"]] == [x["sale_id"] for x in sold[2::-1]]
        assert older["next_before"] is None
        # Search: member name, receipt number (any case, with or without the dash), amount.
        by_name = await c.call("sale.list", {"session": cashier, "query": "sara"})
        assert [s["sale_id"] for s in by_name["sales"]] == [sold[3]["sale_id"]]
        no = receipt_number(sold[1]["sale_id"]).lower().replace("-", "")
        by_no = await c.call("sale.list", {"session": cashier, "query": no})
        assert [s["sale_id"] for s in by_no["sales"]] == [sold[1]["sale_id"]]
        by_amount = await c.call("sale.list", {"session": cashier, "query": "10.02"})
        assert [s["payable"] for s in by_amount["sales"]] == [1002]
        # Bounds and roles.
        await expect(-32602, c.call("sale.list", {"session": cashier, "limit": 51}))
        await expect(-32602, c.call("sale.list", {"session": cashier, "limit": 0}))
        await expect(-32602, c.call("sale.list", {"session": cashier, "query": "x" * 65}))
        await expect(-32602, c.call("sale.list", {"session": cashier,
                                                  "query": "4111 1111 1111 1111"}))
        await expect(-32006, c.call("sale.list", {}))
        await expect(-32006, c.call("sale.list", {"session": await h.login("tech", "0000")}))
        print(f"figure: sale.list answered {len(page['sales'])} of 5 sales per page of 2")
    run(scenario)


def test_sale_list_scans_a_bounded_number_of_sales_per_call() -> None:
    async def scenario(h: Harness) -> None:
        from agent.localapi.services import sales as services

        c = h.client()
        cashier = await h.login()
        for i in range(12):
            await _sell(h, cashier, 100 + i)
        old = services.SALE_LIST_SCAN
        services.SALE_LIST_SCAN = 5
        try:
            hunt = await c.call("sale.list", {"session": cashier, "query": "nothing-matches"})
        finally:
            services.SALE_LIST_SCAN = old
        assert hunt["sales"] == [] and hunt["next_before"] is not None
        print(f"figure: a search with no hit stopped after 5 of 12 sales, "
              f"next_before={hunt['next_before']}")
    run(scenario)


def test_void_is_a_refund_of_the_last_sale_by_its_cashier_within_five_minutes() -> None:
    async def scenario(h: Harness) -> None:
        c = h.client()
        cashier = await h.login()
        other = await h.login("mg", "9999")
        first = await _sell(h, cashier, 700)
        last = await _sell(h, cashier, 900)
        err = await expect(-32006, c.call("sale.void", {"sale_id": first["sale_id"],
                                                        "session": cashier}))
        assert err.data["reason"] == "void_not_last"
        # Two tills voiding the same sale at once: one refund, one conflict.
        results = await asyncio.gather(
            c.call("sale.void", {"sale_id": last["sale_id"], "session": cashier}),
            h.client().call("sale.void", {"sale_id": last["sale_id"], "session": other}),
            return_exceptions=True)
        refunds = [e for e in h.outbox() if e["type"] == "refund"]
        assert len(refunds) == 1 and refunds[0]["reason"] == "void"
        assert sum(isinstance(r, dict) for r in results) == 1
        await expect(-32008, c.call("sale.void", {"sale_id": last["sale_id"],
                                                  "session": cashier}))
        # Another cashier's sale, and a sale older than five minutes.
        mine = await _sell(h, other, 300)
        err = await expect(-32006, c.call("sale.void", {"sale_id": mine["sale_id"],
                                                        "session": cashier}))
        assert err.data["reason"] == "void_other_staff"
        h.now += timedelta(minutes=6)
        err = await expect(-32006, c.call("sale.void", {"sale_id": mine["sale_id"],
                                                        "session": other}))
        assert err.data["reason"] == "void_too_late"
        await expect(-32007, c.call("sale.void", {"sale_id": "nope", "session": cashier}))
    run(scenario)


def test_refunds_count_on_their_own_day_with_their_sales_amounts() -> None:
    async def scenario(h: Harness) -> None:
        c = h.client()
        cashier = await h.login()
        manager = await h.login("mg", "9999")
        yesterday = await _sell(h, cashier, 5050, "nfc:04A1B2", payment="card")
        day1 = h.now.date().isoformat()
        h.now += timedelta(days=1)
        await _sell(h, cashier, 2000)
        await c.call("sale.refund", {"sale_id": yesterday["sale_id"], "reason": "broken",
                                     "session": manager})
        today = await c.call("day.summary", {"session": manager})
        sale = yesterday["receipt"]
        assert today["refunds"] == 1
        assert today["refunded"]["count"] == 1
        assert today["refunded"]["payable"] == sale["payable"]
        assert today["refunded"]["points_given"] == sale["points_earned"]
        assert today["refunded"]["by_payment"] == {"card": sale["payable"]}
        assert today["net_sales"]["payable"] == 2000 - sale["payable"]
        assert today["net_sales"]["count"] == 0
        row = next(r for r in today["per_staff"] if r["staff_id"] == "c1")
        assert row["refunded"] == sale["payable"] and row["net_payable"] == 2000 - sale["payable"]
        before = await c.call("day.summary", {"date": day1, "session": manager})
        assert before["refunds"] == 0 and before["sales"]["payable"] == sale["payable"]
    run(scenario)


def test_card_link_replaces_a_lost_card_manager_only() -> None:
    async def scenario(h: Harness) -> None:
        c = h.client()
        cashier = await h.login()
        manager = await h.login("mg", "9999")
        link = {"member_id": "m-1", "token": "nfc:0BEE55", "replaces": "nfc:04A1B2"}
        err = await expect(-32006, c.call("member.card_link", {**link, "session": cashier}))
        assert err.data["reason"] == "role"
        await expect(-32602, c.call("member.card_link", {**link, "replaces": "pan:" + "b" * 32,
                                                         "session": manager}))
        await expect(-32008, c.call("member.card_link", {**link, "token": "pan:" + "b" * 32,
                                                         "session": manager}))
        await expect(-32602, c.call("member.card_link", {**link, "token": "nfc:4111111111111111",
                                                         "session": manager}))
        await c.call("member.card_link", {**link, "session": manager})
        event = h.outbox()[-1]
        assert (event["type"], event["member_id"], event["identifier"], event["replaces"]) == (
            "card_link", "m-1", "nfc:0BEE55", "nfc:04A1B2")
        assert (await c.call("member.identify", {"token": "nfc:0BEE55"}))["member_id"] == "m-1"
        # #19: the replaced card is refused as lost (it was unknown before).
        err = await expect(-32002, c.call("member.identify", {"token": "nfc:04A1B2"}))
        assert err.data["reason"] == "card_lost" and err.data["member_id"] == "m-1"
    run(scenario)


def test_member_search_and_profile() -> None:
    async def scenario(h: Harness) -> None:
        c = h.client()
        cashier = await h.login()
        await _sell(h, cashier, 1500, "nfc:04A1B2")
        assert [m["member_id"] for m in await c.call(
            "member.search", {"query": "sara", "session": cashier})] == ["m-1"]
        assert [m["member_id"] for m in await c.call(
            "member.search", {"query": "0912 123 4567", "session": cashier})] == ["m-1"]
        assert await c.call("member.search", {"query": "%", "session": cashier}) == []
        await expect(-32006, c.call("member.search", {"query": "sara"}))
        profile = await c.call("member.profile", {"member_id": "m-1", "session": cashier})
        assert profile["name"] == "Sara K." and len(profile["recent_sales"]) == 1
        assert profile["balances"]["points"] > 1200
        assert {card["token"] for card in profile["cards"]} == {"pan:" + "a" * 32, "nfc:04A1B2"}
        await expect(-32001, c.call("member.profile", {"member_id": "m-x", "session": cashier}))
    run(scenario)
