"""The demo agent (real store, services, socket) with a real ReceiptPrinter on a
simulated network printer (hw_sim.printer.SimPrinter)."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from agent.localapi.demo import DemoAgent
from agent.printer.service import ReceiptPrinter
from agent.terminal_profile import PrinterSpec
from hw_sim.printer import SimPrinter
from tests.agent.localapi.harness import GOLD, STAFF, WEDNESDAY

SPEC = PrinterSpec(kind="network", address="", columns=42, timeout_s=1.0, status_poll_s=0,
                   shop_name="Café Rose", shop_lines=("12 Main St",))


@contextlib.asynccontextmanager
async def printing_agent(sim: SimPrinter, *, members: Sequence[Mapping[str, Any]] = (GOLD,),
                         **spec: Any) -> AsyncIterator[tuple[DemoAgent, ReceiptPrinter]]:
    """A started demo agent whose view has a printer printing on ``sim``."""
    with tempfile.TemporaryDirectory(prefix="ctprn") as d:
        agent = DemoAgent(Path(d), clock=lambda: WEDNESDAY, staff=STAFF, members=members,
                          readers=())
        printer = ReceiptPrinter(replace(SPEC, address=sim.address, **spec), agent.view.bundle)
        agent.view.printer = printer
        printer.start()
        await agent.start()
        try:
            yield agent, printer
        finally:
            printer.stop()
            await agent.aclose()


async def login(agent: DemoAgent) -> str:
    r = await agent.call("staff.login", {"staff_id": "c1", "pin": "1234"})
    return str(r["session"])


async def sell(agent: DemoAgent, session: str, *, payment: str = "cash",
               token: str | None = "nfc:04A1B2",
               lines: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Quote and commit a sale; the commit's answer."""
    params: dict[str, Any] = {"lines": lines or [
        {"sku": "espresso-beans", "category": "coffee", "qty": 2, "unit_price": 6000}]}
    if token:
        params["token"] = token
    q = await agent.call("sale.quote", params)
    return dict(await agent.call("sale.commit", {"quote_id": q["quote_id"], "payment": payment,
                                                 "session": session}))


async def wait_state(printer: ReceiptPrinter, predicate: Any, timeout_s: float = 10) -> dict[
        str, Any]:
    """Poll the printer's status until ``predicate(status)`` holds (bounded)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        status = printer.status()
        if predicate(status) or loop.time() > deadline:
            return status
        await asyncio.sleep(0.05)
