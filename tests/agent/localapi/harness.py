"""The tests' agent: the demo agent (real socket, server, services, store and rules)
with the tests' staff, members and clock, and a store whose writes can fail."""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from agent.errors import StorageError
from agent.localapi.client import SocketClient
from agent.localapi.demo import DemoAgent, DemoStaff
from agent.localapi.server import ServerLimits

GOLD = {"member_id": "m-1", "version": 3, "name": "Sara K.", "status": "active", "tier": "gold",
        "groups": [], "identifiers": ["pan:" + "a" * 32, "tel:+989121234567", "nfc:04A1B2"],
        "balances": {"points": 1200, "credit.club": 5000}, "stats": {}, "applied": {}}
BLOCKED = {"member_id": "m-2", "version": 4, "name": "Bob", "status": "blocked", "tier": "silver",
           "identifiers": ["pan:" + "b" * 32], "balances": {"points": 5}, "applied": {}}
STAFF = (DemoStaff("c1", "Cara", "cashier", "1234", "nfc:CA5E"),
         DemoStaff("mg", "Max", "manager", "9999", "nfc:BEEF"),
         DemoStaff("tech", "Tom", "technician", "0000", "nfc:7EC4"))
# A Wednesday: no Tuesday multiplier in the spec bundle.
WEDNESDAY = datetime(2026, 11, 25, 10, 0, tzinfo=ZoneInfo("Europe/Berlin"))


class FlakyWrites:
    """The real store's fault hook (``store.db.before_write``): its writes can be made
    to fail as a full disk would, and it notes the threads that wrote."""

    def __init__(self) -> None:
        self.fail_appends = False
        self.append_threads: list[str] = []

    def __call__(self, action: str) -> None:
        import threading
        self.append_threads.append(threading.current_thread().name)
        if self.fail_appends:
            raise StorageError("no space left on the device (simulated)")


class Harness:
    """The demo agent (:class:`agent.localapi.demo.DemoAgent`) with the tests' own seed:
    staff c1/mg/tech, members GOLD and BLOCKED, a clock at ``h.now`` (the store and
    the services' wall time; their timers stay on ``time.monotonic``)."""

    def __init__(self, tmp: Path, limits: ServerLimits | None = None, quote_ttl_s: float = 120,
                 bundle: bool = True):
        self.tmp = tmp
        self.now = WEDNESDAY
        self.agent = DemoAgent(tmp, clock=lambda: self.now, monotonic=time.monotonic,
                               staff=STAFF, members=(GOLD, BLOCKED), members_version=10,
                               bundle=bundle, limits=limits,
                               quote_ttl_s=quote_ttl_s, readers=())
        self.store = self.agent.store
        self.flaky = FlakyWrites()
        self.store.db.before_write = self.flaky
        self.path = self.agent.path
        self.view = self.agent.view
        self.db = self.agent.db
        self.services = self.agent.services
        self.server = self.agent.server
        self.clients: list[SocketClient] = []

    @property
    def online(self) -> bool:
        return self.agent.online

    @online.setter
    def online(self, value: bool) -> None:
        self.agent.online = value

    @property
    def bundle(self) -> Any:
        return self.agent.bundle

    @bundle.setter
    def bundle(self, value: Any) -> None:
        self.agent.bundle = value

    async def __aenter__(self) -> Harness:
        await self.agent.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        for c in self.clients:
            await c.close()
        await self.agent.aclose()

    def outbox(self) -> list[dict[str, Any]]:
        return self.agent.recorded()

    def client(self) -> SocketClient:
        c = self.agent.client()
        self.clients.append(c)
        return c

    async def login(self, staff_id: str = "c1", pin: str = "1234") -> str:
        r = await self.client().call("staff.login", {"staff_id": staff_id, "pin": pin})
        return str(r["session"])

    async def tap(self, badge: str, reader: str = "sim-nfc") -> str:
        """A staff badge tapped on the terminal's reader: the single-use tap reference
        its card event carries (what a client signs in or clocks with)."""
        event = await self.agent.tap(badge, reader=reader)
        assert event.get("kind") == "staff_badge", f"{badge} is no staff badge"
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
