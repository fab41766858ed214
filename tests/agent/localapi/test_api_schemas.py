"""Local API requests and responses of a real in-process agent (the demo agent behind
its Unix socket) validate against the COMMITTED schemas
(docs/protocol/schemas/localapi.<method>.schema.json, jsonschema, not the Structs):
a quote and a commit with tenders, a refund by line, a clock-in, an appointment,
agent.status, member.identify, and more."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import jsonschema

from agent.localapi.client import SocketClient
from agent.protocol import schemas
from agent.protocol.localapi import METHODS

from .harness import Harness, run


@cache
def _validator(method: str) -> jsonschema.Draft202012Validator:
    path = schemas.SCHEMA_DIR / f"localapi.{method}.schema.json"
    return jsonschema.Draft202012Validator(json.loads(path.read_text()))


class Recording:
    """A real client whose every call (params and result) is kept."""

    def __init__(self, client: SocketClient) -> None:
        self.client = client
        self.calls: list[tuple[str, dict[str, Any], Any]] = []

    async def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        result = await self.client.call(method, params or {})
        self.calls.append((method, params or {}, result))
        return result


def errors(calls: list[tuple[str, dict[str, Any], Any]]) -> list[str]:
    out = []
    for method, params, result in calls:
        for err in _validator(method).iter_errors({"params": params, "result": result}):
            out.append(f"{method}: {err.message} at {err.json_path}")
    return out


def test_captured_local_api_traffic_matches_the_committed_schemas() -> None:
    async def scenario(h: Harness) -> None:
        c = Recording(h.client())
        s = (await c.call("staff.login", {"staff_id": "c1", "pin": "1234"}))["session"]
        mg = (await c.call("staff.login", {"staff_id": "mg", "pin": "9999"}))["session"]
        await c.call("agent.status")
        await c.call("member.identify", {"phone": "0912 123 4567"})
        quote = await c.call("sale.quote", {
            "lines": [{"sku": "espresso", "category": "coffee", "qty": 2, "unit_price": 250},
                      {"sku": "cake", "category": "bakery", "qty": 1, "unit_price": 4550}],
            "token": "tel:+989121234567", "redeem_points": 100})
        sale = await c.call("sale.commit", {
            "quote_id": quote["quote_id"], "session": s,
            "tenders": [{"method": "card", "amount": 1000}, {"method": "cash", "amount": 5000}]})
        await c.call("sale.refund", {"sale_id": sale["sale_id"], "reason": "broken",
                                     "lines": [{"line": 0, "qty": 1}], "session": mg})
        q2 = await c.call("sale.quote", {"amount": 1200})
        await c.call("sale.commit", {"quote_id": q2["quote_id"], "payment": "cash",
                                     "session": s})
        await c.call("staff.clock", {"staff_id": "c1", "pin": "1234", "action": "in"})
        await c.call("appointment.create", {
            "service": "haircut", "staff_id": "mg", "start": "2026-11-26T10:00:00+01:00",
            "minutes": 30, "session": s, "phone": "0912 111 2222", "customer_name": "Ali"})
        await c.call("expense.add", {"amount": 500, "category": "milk", "note": "", "session": s})
        await c.call("staff.logout", {"session": s})
        assert errors(c.calls) == []
        methods = {m for m, *_ in c.calls}
        print(f"figure: {len(c.calls)} local API calls of {len(methods)} methods validated "
              f"against the committed schemas ({len(METHODS)} methods published)")
        # The check bites: a wrong tender method and a result missing its id are refused.
        bad = [("sale.commit", {"quote_id": "q", "session": s,
                                "tenders": [{"method": "cheque", "amount": 1}]}, sale),
               ("sale.refund", {"sale_id": "x", "session": mg}, {"whole": True})]
        assert len(errors(bad)) == 2

    run(scenario)
