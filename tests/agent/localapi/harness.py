"""Start a real local-API server in a test: real socket, server, services, store and rules."""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from agent.errors import StorageError
from agent.localapi.client import SocketClient
from agent.localapi.ports import DbThread
from agent.localapi.server import ApiServer, ServerLimits
from agent.localapi.services import AgentView, Services
from agent.offline_queue import Store
from agent.rules import parse_bundle
from tests.agent.rules.conftest import SPEC_BUNDLE

GOLD = {"member_id": "m-1", "version": 3, "name": "Sara K.", "status": "active", "tier": "gold",
        "groups": [], "identifiers": ["pan:" + "a" * 32, "tel:+989121234567", "nfc:04A1B2"],
        "balances": {"points": 1200, "credit.club": 5000}, "stats": {}, "applied": {}}
BLOCKED = {"member_id": "m-2", "version": 4, "name": "Bob", "status": "blocked", "tier": "silver",
           "identifiers": ["pan:" + "b" * 32], "balances": {"points": 5}, "applied": {}}
# A Wednesday: no Tuesday multiplier in the spec bundle.
WEDNESDAY = datetime(2026, 11, 25, 10, 0, tzinfo=ZoneInfo("Europe/Berlin"))


class FlakyStore(Store):
    """The real store, whose appends can be made to fail as a full disk would."""

    fail_appends = False
    append_threads: list[str]

    def _writable(self, action: str) -> None:
        import threading
        self.append_threads = [*getattr(self, "append_threads", []),
                               threading.current_thread().name]
        if self.fail_appends:
            raise StorageError("no space left on the device (simulated)")
        super()._writable(action)


class Harness:
    def __init__(self, tmp: Path, limits: ServerLimits | None = None, quote_ttl_s: float = 120,
                 bundle: bool = True):
        self.tmp = tmp
        self.path = tmp / "agent.sock"
        self.now = WEDNESDAY
        store = FlakyStore.open(tmp / "clubterm.db", "T-0001", "M-7", clock=lambda: self.now)
        assert isinstance(store, FlakyStore)
        self.store = store
        self.store.import_snapshot([json.dumps(GOLD), json.dumps(BLOCKED)], 10, True)
        self.store.put_staff("c1", "Cara", "cashier", by=None, badges=["nfc:CA5E"], pin="1234")
        self.store.put_staff("mg", "Max", "manager", by=None, badges=["nfc:BEEF"], pin="9999")
        self.store.put_staff("tech", "Tom", "technician", by=None, badges=["nfc:7EC4"],
                             pin="0000")
        self.store.append_threads = []
        self.online = True
        self.bundle = parse_bundle(json.dumps(SPEC_BUNDLE).encode()) if bundle else None
        self.view = AgentView("T-0001", "M-7", "98", online=lambda: self.online,
                              bundle=lambda: self.bundle)
        self.db = DbThread()
        self.services = Services(self.view, self.db, outbox=self.store, members=self.store,
                                 records=self.store, clock=lambda: self.now,
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
        self.store.close()

    def outbox(self) -> list[dict[str, Any]]:
        return [e.event for e in self.store.events()]

    def client(self) -> SocketClient:
        c = SocketClient(self.path, timeout_s=10)
        self.clients.append(c)
        return c

    async def login(self, staff_id: str = "c1", pin: str = "1234") -> str:
        r = await self.client().call("staff.login", {"staff_id": staff_id, "pin": pin})
        return str(r["session"])

    async def tap(self, badge: str, reader: str = "sim-nfc") -> str:
        """A staff badge tapped on the terminal's reader: the single-use tap reference
        its card event carries (what a client signs in or clocks with)."""
        event = await self.services.badge_tapped(badge, reader)
        assert event is not None, f"{badge} is no staff badge"
        return str(event["token"])

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
