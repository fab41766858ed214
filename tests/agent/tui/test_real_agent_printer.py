"""The UI and the receipt printer against the real agent (#16): Ctrl+P on the receipt
prints it on the simulated printer; a printer that needs the cashier shows in the
status bar (agent.status at start, ``printer`` events after)."""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import replace
from pathlib import Path

from agent.assembly import printer_event
from agent.printer.service import ReceiptPrinter
from agent.tui.app import ClubtermApp
from agent.tui.i18n import load_locale, set_locale
from agent.tui.screens.sale import SaleScreen
from agent.tui.screens.sale_dialogs import PaymentDialog, ReceiptDialog
from agent.tui.state import AgentStatus
from agent.tui.widgets.status_bar import status_text
from hw_sim.printer import SimPrinter
from tests.agent.localapi import harness
from tests.agent.printer.support import SPEC

from .conftest import wait_for


def test_status_bar_names_a_printer_that_needs_the_cashier() -> None:
    set_locale(load_locale("en"))
    base = AgentStatus(known=True, online=True, rules_version=1)
    assert "Printer" not in status_text(replace(base, printer="ready"), None).plain
    assert "Printer: paper out" in status_text(replace(base, printer="paper_out"), None).plain
    assert "Printer: cover open" in status_text(replace(base, printer="cover_open"),
                                                None, width=60).plain


async def test_ctrl_p_on_the_receipt_prints_it_and_the_bar_shows_paper_out() -> None:
    with tempfile.TemporaryDirectory(prefix="cttui") as tmp, SimPrinter() as sim:
        async with harness.Harness(Path(tmp)) as h:
            loop = asyncio.get_running_loop()
            printer = ReceiptPrinter(
                replace(SPEC, address=sim.address, auto_print=False), h.view.bundle,
                on_state=lambda s: loop.call_soon_threadsafe(h.server.broadcast,
                                                             printer_event(s)))
            h.view.printer = printer
            printer.start()
            try:
                app = ClubtermApp(h.client(), idle_signout_s=0, clock=lambda: h.now)
                async with app.run_test(size=(80, 24)) as pilot:
                    await wait_for(pilot, lambda: app.agent_status.known)
                    assert app.agent_status.printer == "unknown"
                    await pilot.press(*"c1", "enter", *"1234", "enter")
                    await wait_for(pilot, lambda: isinstance(app.screen, SaleScreen))
                    await pilot.press(*"12", "enter")
                    screen = app.screen
                    assert isinstance(screen, SaleScreen)
                    await wait_for(pilot, lambda: screen.quote is not None)
                    await pilot.press("f8")
                    await wait_for(pilot, lambda: isinstance(app.screen, PaymentDialog))
                    await pilot.press("1", "enter")
                    await wait_for(pilot, lambda: isinstance(app.screen, ReceiptDialog),
                                   timeout=10)
                    sale_id = app.screen.receipt["sale_id"]
                    await pilot.press("ctrl+p")
                    got = await asyncio.to_thread(sim.wait_receipts, 1)
                    assert got and got[0].qr == [sale_id] and "REPRINT" in got[0].text
                    sim.state = "paper_out"
                    await pilot.press("ctrl+p")
                    await wait_for(pilot, lambda: app.agent_status.printer == "paper_out",
                                   timeout=10)
            finally:
                printer.stop()
