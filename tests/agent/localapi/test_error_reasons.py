"""Every error of the local API carries a machine-readable `data.reason` (protocol
1.1, docs/protocol/local-api.md "Reason codes"), and every explanation row of a quote
a `why` code: a walk over every method with bad, hostile, unauthorised, unknown,
conflicting and over-limit params, against the real agent."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from agent.errors import ApiError
from agent.localapi.framing import DEFAULT_REASONS
from tests.agent.localapi.harness import Harness, read_json, run

PARAMS = ("sale_id", "quote_id", "amount", "lines", "token", "phone", "code", "staff_id",
          "pin", "action", "date", "start", "minutes", "service", "customer", "limit",
          "before", "query", "member_id", "name", "reason", "tenders", "payment",
          "event_id", "appointment_id", "category", "note", "redeem_points", "use_credit",
          "void", "badges", "role", "identifier", "replaces", "referred_by", "session")
BAD_VALUES: tuple[Any, ...] = (True, -1, 2**60, "", "x" * 5000, [{}], "4111 1111 1111 1111",
                               {"a": [1, {"b": None}]})


def test_every_error_of_every_method_carries_a_reason() -> None:
    async def scenario(h: Harness) -> None:
        c = h.client()
        cashier = await h.login()
        manager = await h.login("mg", "9999")
        tech = await h.login("tech", "0000")
        methods = sorted(h.services._methods)
        seen: dict[tuple[int, str], int] = {}
        missing: list[tuple[str, dict[str, Any], Any]] = []
        defaulted = 0
        calls = 0

        async def call(method: str, params: dict[str, Any]) -> None:
            nonlocal calls, defaulted
            calls += 1
            try:
                await asyncio.wait_for(c.call(method, params), 5)
            except ApiError as exc:
                data = exc.data
                if not isinstance(data, dict) or not isinstance(data.get("reason"), str):
                    missing.append((method, params, data))
                    return
                key = (exc.code, data["reason"])
                seen[key] = seen.get(key, 0) + 1
                if data["reason"] in DEFAULT_REASONS.values() or data["reason"] == "bad_param":
                    defaulted += 1

        # Not found and conflicts: a real sale, refunded twice; clock in twice.
        q = await c.call("sale.quote", {"amount": 1000})
        sale = await c.call("sale.commit", {"quote_id": q["quote_id"], "session": cashier})
        sale_id = sale["sale_id"]
        await c.call("sale.refund", {"sale_id": sale_id, "reason": "x", "session": manager})
        await call("sale.refund", {"sale_id": sale_id, "reason": "x", "session": manager})
        await call("sale.void", {"sale_id": sale_id, "session": manager})
        await call("sale.commit", {"quote_id": "nope", "session": cashier})
        await call("sale.quote", {"amount": 1000, "token": "nfc:04A1B2",
                                  "redeem_points": 10**6})
        await call("sale.list", {"session": cashier, "limit": 51})
        await call("staff.login", {"staff_id": "c1", "pin": "0000"})
        await call("staff.clock", {"staff_id": "c1", "pin": "1234", "action": "out"})
        for method, session in itertools.product(methods, (None, "bogus", cashier, tech,
                                                          manager)):
            await call(method, {} if session is None else {"session": session})
        # Each parameter spoilt in turn, as a manager (the deepest checks) would send it.
        for method, name, value in itertools.product(methods, PARAMS, BAD_VALUES):
            await call(method, {"session": manager, name: value})
        await call("no.such.method", {})
        assert not missing, missing[:5]
        print(f"figure: {calls} calls over {len(methods)} methods, {sum(seen.values())} "
              f"errors, {len(seen)} distinct (code, reason), {defaulted} with a generic "
              f"reason; none without a reason")
    run(scenario)


def test_transport_errors_carry_a_reason_too() -> None:
    async def scenario(h: Harness) -> None:
        reader, writer = await h.raw()
        for line in (b"{not json\n", b"[]\n", b"42\n", b'{"jsonrpc": "2.0", "id": 1}\n',
                     b'{"jsonrpc": "1.0", "id": 1, "method": "agent.status"}\n',
                     b'{"jsonrpc": "2.0", "id": 1, "method": "x", "params": [1]}\n',
                     b'{"jsonrpc": "2.0", "id": 2, "method": "agent.status", "params": {"a": '
                     + b"[" * 40 + b"1" + b"]" * 40 + b"}}\n"):
            writer.write(line)
            await writer.drain()
            reply = await read_json(reader)
            replies = reply if isinstance(reply, list) else [reply]
            for r in replies:
                assert isinstance(r["error"]["data"]["reason"], str), (line, r)
        writer.close()
    run(scenario)


def test_every_explanation_row_carries_a_code() -> None:
    async def scenario(h: Harness) -> None:
        c = h.client()
        quotes = [await c.call("sale.quote", p) for p in (
            {"amount": 1000}, {"amount": 6000, "token": "nfc:04A1B2"},
            {"amount": 6000, "token": "nfc:04A1B2", "redeem_points": "max",
             "use_credit": ["credit.club"]},
            {"lines": [{"sku": "espresso", "category": "coffee", "qty": 2,
                        "unit_price": 250}], "token": "nfc:04A1B2", "redeem_points": 100})]
        h.online = False
        quotes.append(await c.call("sale.quote", {"amount": 6000, "token": "nfc:04A1B2",
                                                  "redeem_points": "max"}))
        rows = [row for q in quotes for row in q["explain"]]
        assert rows and all(isinstance(r.get("why"), str) and r["why"] for r in rows), \
            [r for r in rows if not r.get("why")]
        print(f"figure: {len(rows)} explanation rows, codes "
              f"{sorted({r['why'] for r in rows})}")
    run(scenario)
