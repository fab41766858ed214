"""Start a real local-API server (real socket, real server and services) in a test."""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from agent.localapi.client import SocketClient
from agent.localapi.ports import DbThread
from agent.localapi.server import ApiServer, ServerLimits
from agent.localapi.services import AgentView, Services
from tests.agent.localapi.memstore import MemStore, simple_quote

GOLD = {"member_id": "m-1", "version": 3, "name": "Sara K.", "status": "active", "tier": "gold",
        "groups": [], "identifiers": ["pan:" + "a" * 32, "tel:+989121234567", "nfc:04A1B2"],
        "balances": {"points": 1200, "credit.club": 5000}, "stats": {}, "applied": {}}
BLOCKED = {"member_id": "m-2", "version": 4, "name": "Bob", "status": "blocked", "tier": "silver",
           "identifiers": ["pan:" + "b" * 32], "balances": {"points": 5}, "applied": {}}


class Harness:
    def __init__(self, tmp: Path, limits: ServerLimits | None = None, quote_ttl_s: float = 120):
        self.tmp = tmp
        self.path = tmp / "agent.sock"
        self.store = MemStore()
        self.store.add_member(dict(GOLD))
        self.store.add_member(dict(BLOCKED))
        self.store.add_staff("c1", "Cara", "cashier", "1234", "nfc:CA5E")
        self.store.add_staff("mg", "Max", "manager", "9999", "nfc:BEEF")
        self.store.add_staff("tech", "Tom", "technician", "0000", "nfc:7EC4")
        self.online = True
        self.view = AgentView("T-0001", "M-7", "98", online=lambda: self.online)
        self.db = DbThread()
        self.services = Services(self.view, self.store, self.db, quote_fn=simple_quote,
                                 quote_ttl_s=quote_ttl_s)
        self.server = ApiServer(self.path, self.services, limits=limits)
        self.view.broadcast = self.server.broadcast
        self.clients: list[SocketClient] = []

    async def __aenter__(self) -> Harness:
        await self.server.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        for c in self.clients:
            await c.close()
        await self.server.close()
        self.db.close()

    def client(self) -> SocketClient:
        c = SocketClient(self.path, timeout_s=10)
        self.clients.append(c)
        return c

    async def login(self, staff_id: str = "c1", pin: str = "1234") -> str:
        r = await self.client().call("staff.login", {"staff_id": staff_id, "pin": pin})
        return str(r["session"])

    async def raw(self, limit: int = 4 * 1024 * 1024
                  ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_unix_connection(str(self.path), limit=limit)


async def read_json(reader: asyncio.StreamReader, timeout: float = 5) -> Any:
    line = await asyncio.wait_for(reader.readline(), timeout)
    return json.loads(line) if line else None


def run(scenario: Callable[[Harness], Awaitable[None]], **kw: Any) -> None:
    async def main() -> None:
        with tempfile.TemporaryDirectory(prefix="ctapi") as d:
            async with Harness(Path(d), **kw) as h:
                await asyncio.wait_for(scenario(h), 60)
    asyncio.run(main())
