"""Attacks on sale.quote's memory and on amounts no JSON reader agrees on (#13.5, #13.8).

Real socket, services, store and rules (tests/agent/localapi/harness.py).
"""

from __future__ import annotations

import gc
import json
from typing import Any

import pytest

from agent.errors import ApiError
from agent.localapi import MAX_TEXT_CHARS
from agent.localapi import services as svc
from agent.offline_queue import MAX_AMOUNT, InvalidEvent
from tests.agent.localapi.harness import Harness, read_json, run
from tests.agent.offline_queue.helpers import AT, sale_body


def rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


async def expect(code: int, coro: Any) -> ApiError:
    with pytest.raises(ApiError) as info:
        await coro
    assert info.value.code == code, (info.value.code, str(info.value))
    return info.value


def big_basket(unit_price: int, qty: int) -> list[dict[str, Any]]:
    return [{"sku": f"s{i}", "category": "c", "qty": qty, "unit_price": unit_price}
            for i in range(500)]


@pytest.mark.parametrize("over", ["2**53", "2**63"])
def test_a_basket_over_2_53_is_refused_at_quote_and_nothing_recorded(over: str) -> None:
    # 500 lines: 2**53 needs ~1.8e13 a line; 2**63 is passed by 1e5 x 1e12 a line.
    unit_price, qty = (10**12, 19) if over == "2**53" else (10**12, 100_000)
    assert 500 * unit_price * qty > {"2**53": 2**53, "2**63": 2**63}[over]

    async def scenario(h: Harness) -> None:
        session = await h.login()
        c = h.client()
        err = await expect(-32602, c.call("sale.quote", {"lines": big_basket(unit_price, qty)}))
        assert err.data["reason"] == "amount_too_large" and err.data["max"] == MAX_AMOUNT
        assert "too large" in str(err) and str(err).endswith(".")
        # Nothing to commit, nothing recorded; the largest basket that fits still goes.
        await expect(-32004, c.call("sale.commit", {"quote_id": "q-x", "session": session}))
        assert h.outbox() == []
        q = await c.call("sale.quote", {"lines": big_basket(10**12, 18)})  # 9e15, just under
        r = await c.call("sale.commit", {"quote_id": q["quote_id"], "session": session})
        assert h.outbox()[0]["gross"] == 500 * 18 * 10**12 <= MAX_AMOUNT and r["seq"] == 1
        print(f"figure: 500 lines totalling {500 * unit_price * qty:.3g} (> {over}): "
              f"-32602 {err.data['reason']}, {len(h.outbox()) - 1} recorded")
    run(scenario)


def test_the_store_refuses_any_event_beyond_the_bound() -> None:
    """No path records a number beyond 2**53 - 1 (the store's own validation)."""
    async def scenario(h: Harness) -> None:
        before = h.store.outbox.last_seq()
        too_big = [
            ("sale", {**sale_body(), "gross": MAX_AMOUNT + 1}),
            ("sale", {**sale_body(), "payable": 2**63}),
            ("sale", {**sale_body(), "points_earned": [{"rule": "x", "points": 2**53}]}),
            ("sale", {**sale_body(), "lines": [{"sku": "x", "category": "c", "qty": 3,
                                                 "unit_price": MAX_AMOUNT // 2}]}),
            ("expense", {"amount": 2**64, "category": "c", "note": ""}),
            ("cash_receipt", {"amount": -(2**53), "category": "c", "note": ""}),
        ]
        for type_, body in too_big:
            with pytest.raises(InvalidEvent, match="2\\*\\*53 - 1"):
                h.store.outbox.append(type_, body, at=AT, staff_id=None, offline=False)
        assert h.store.outbox.last_seq() == before and h.outbox() == []
        h.store.outbox.append("expense", {"amount": MAX_AMOUNT, "category": "c", "note": ""},
                       at=AT, staff_id=None, offline=False)
        assert h.store.outbox.last_seq() == before + 1
    run(scenario)


def test_quotes_with_huge_texts_are_refused_and_memory_stays_small() -> None:
    """100 quotes with 1 MB sku texts, without signing in."""
    quotes, size = 100, 1_000_000

    async def scenario(h: Harness) -> None:
        r, w = await h.raw()
        gc.collect()
        before = rss_kib()
        for i in range(quotes):
            request = {"jsonrpc": "2.0", "id": i, "method": "sale.quote", "params": {
                "lines": [{"sku": chr(65 + i % 26) * size, "qty": 1, "unit_price": 100}]}}
            w.write(json.dumps(request).encode() + b"\n")
            await w.drain()
            answer = await read_json(r, timeout=10)
            assert answer["error"]["code"] == -32602, answer
            # The server refuses a text over MAX_TEXT_CHARS before any method runs;
            # sale.quote's own cap (MAX_LINE_TEXT) is smaller still.
            assert answer["error"]["data"]["max_chars"] in (MAX_TEXT_CHARS, svc.MAX_LINE_TEXT)
        w.close()
        gc.collect()
        grown = (rss_kib() - before) / 1024
        print(f"figure: {quotes} quotes with {size:,}-character skus: all -32602, "
              f"{len(h.services._quotes)} held, RSS growth {grown:.1f} MiB")
        assert not h.services._quotes
        assert grown < 50
    run(scenario)


def test_one_connection_holds_at_most_100_quotes_the_oldest_go() -> None:
    async def scenario(h: Harness) -> None:
        session = await h.login()
        c = h.client()
        ids = [(await c.call("sale.quote", {"amount": 100 + i}))["quote_id"]
               for i in range(svc.MAX_QUOTES_PER_CONNECTION + 20)]
        assert len(h.services._quotes) == svc.MAX_QUOTES_PER_CONNECTION
        # The oldest 20 went (a till's old quotes are stale); the newest commit.
        await expect(-32004, c.call("sale.commit", {"quote_id": ids[0], "session": session}))
        r = await c.call("sale.commit", {"quote_id": ids[-1], "session": session})
        assert r["seq"] == 1
        # Another connection's quotes are not taken away by this one.
        other = await h.client().call("sale.quote", {"amount": 7})
        for i in range(svc.MAX_QUOTES_PER_CONNECTION):
            await c.call("sale.quote", {"amount": 200 + i})
        assert other["quote_id"] in h.services._quotes
    run(scenario)


def test_all_connections_together_are_capped_new_quotes_refused() -> None:
    """Lines held by open quotes are capped: the next quote is refused, none dropped."""
    async def scenario(h: Harness) -> None:
        per_quote = 500
        fill = svc.MAX_QUOTE_LINES // per_quote
        clients = [h.client() for _ in range(fill // 10 + 1)]
        gc.collect()
        before = rss_kib()
        held = []
        for i in range(fill):
            lines = [{"sku": f"{i:04d}-{n:03d}".ljust(svc.MAX_LINE_TEXT, "x"),
                      "category": f"c{n}".ljust(svc.MAX_LINE_TEXT, "y"), "qty": 1,
                      "unit_price": 100} for n in range(per_quote)]
            held.append((await clients[i // 10].call("sale.quote", {"lines": lines}))["quote_id"])
        gc.collect()
        grown = (rss_kib() - before) / 1024
        err = await expect(-32003, clients[-1].call("sale.quote", {"amount": 100}))
        assert err.data["limit"] == "open_quotes" and "try again" in str(err)
        assert all(q in h.services._quotes for q in held)
        print(f"figure: {fill} quotes of {per_quote} lines with {svc.MAX_LINE_TEXT}-character "
              f"texts fill the cap ({svc.MAX_QUOTE_LINES} lines): RSS growth {grown:.1f} MiB; "
              "the next quote -32003 open_quotes")
        assert grown < 100
    run(scenario)


def test_kept_commit_results_are_capped_by_lines_older_ones_come_from_the_store() -> None:
    async def scenario(h: Harness) -> None:
        session = await h.login()
        c = h.client()
        per_quote = 500
        committed = []
        for i in range(svc.MAX_QUOTE_LINES // per_quote + 5):
            lines = [{"sku": f"{i}-{n}", "qty": 1, "unit_price": 1} for n in range(per_quote)]
            q = await c.call("sale.quote", {"lines": lines})
            await c.call("sale.commit", {"quote_id": q["quote_id"], "session": session})
            committed.append(q["quote_id"])
        kept = sum(len(r["receipt"]["lines"]) for _, r in h.services._committed.values())
        assert kept <= svc.MAX_QUOTE_LINES and committed[0] not in h.services._committed
        # The oldest is still answered, from the store, and nothing new is recorded.
        again = await c.call("sale.commit", {"quote_id": committed[0], "session": session})
        assert again["receipt"]["restored"] is True and again["seq"] == 1
        assert len(h.outbox()) == len(committed)
        print(f"figure: {len(committed)} committed 500-line sales: {len(h.services._committed)} "
              f"results kept ({kept} lines)")
    run(scenario)
