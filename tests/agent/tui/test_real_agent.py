"""The sale path of the UI against the real agent: socket, server, services, store, rules.

Uses the daemon's test harness (``tests.agent.localapi.harness``); skipped where
that is not part of the tree yet.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from agent.tui.app import ClubtermApp
from agent.tui.screens.sale import SaleScreen
from agent.tui.screens.sale_dialogs import PaymentDialog, ReceiptDialog

from .conftest import message_text, wait_for

harness = pytest.importorskip("tests.agent.localapi.harness")


async def test_sale_with_a_card_against_the_real_agent() -> None:
    with tempfile.TemporaryDirectory(prefix="cttui") as tmp:
        async with harness.Harness(Path(tmp)) as h:
            h.online = False  # offline is shown and never blocks
            app = ClubtermApp(h.client(), idle_signout_s=0, clock=lambda: h.now)
            async with app.run_test(size=(80, 24)) as pilot:
                await wait_for(pilot, lambda: app.agent_status.known)
                assert app.agent_status.currency == "EUR"
                await pilot.press(*"c1", "enter", *"1234", "enter")
                await wait_for(pilot, lambda: isinstance(app.screen, SaleScreen))
                screen = app.screen
                await pilot.press(*"50.50", "enter")
                await wait_for(pilot, lambda: screen.quote is not None)
                h.server.broadcast({"type": "card", "source": "nfc", "reader": "sim",
                                    "token": "nfc:04A1B2", "token_kind": "nfc",
                                    "masked": None, "member": None})
                await wait_for(pilot, lambda: screen.quote is not None
                               and screen.quote.get("member") is not None, timeout=10)
                assert screen.quote["gross"] == 5050
                assert screen.quote["discounts"][0]["rule"] == "gold10"
                assert screen.query_one("#offline-banner").display
                await pilot.press("f8")
                await wait_for(pilot, lambda: isinstance(app.screen, PaymentDialog))
                await pilot.press("1")
                await wait_for(pilot, lambda: isinstance(app.screen, ReceiptDialog), timeout=10)
                receipt = app.screen.receipt
                assert receipt["payable"] == screen.quote["payable"] if screen.quote else True
                await pilot.press("enter")
                await wait_for(pilot, lambda: "Sale recorded" in message_text(app))
            sales = [e for e in h.outbox() if e["type"] == "sale"]
            assert len(sales) == 1 and sales[0]["member_id"] == "m-1"
            assert sales[0]["offline"] is True and sales[0]["staff_id"] == "c1"


async def test_badge_sign_in_and_clock_toggle_against_the_real_agent() -> None:
    """A staff badge's card event carries a tap reference, not the badge token
    (#13 item 3): the UI signs in with it, and one tap clocks in, the next out."""
    from agent.tui.screens.clock import ClockScreen

    with tempfile.TemporaryDirectory(prefix="cttui") as tmp:
        async with harness.Harness(Path(tmp)) as h:
            app = ClubtermApp(h.client(), idle_signout_s=0, clock=lambda: h.now)

            async def tap(badge: str) -> None:
                event = await h.services.badge_tapped(badge, "sim")
                assert event is not None and badge not in str(event)
                h.server.broadcast(event)

            async with app.run_test(size=(80, 24)) as pilot:
                await wait_for(pilot, lambda: app.agent_status.known and any(
                    c.subscribed for c in h.server.connections.values()))
                await tap("nfc:CA5E")
                await wait_for(pilot, lambda: app.staff is not None, timeout=10)
                assert app.staff is not None and app.staff.staff_id == "c1"
                await pilot.press("f3")
                await wait_for(pilot, lambda: isinstance(app.screen, ClockScreen))
                await tap("nfc:BEEF")
                await wait_for(pilot, lambda: "clocked in" in message_text(app), timeout=10)
                await tap("nfc:BEEF")
                await wait_for(pilot, lambda: "clocked out" in message_text(app), timeout=10)
            attendance = [e for e in h.outbox() if e["type"] == "attendance"]
            assert [(e["staff_id"], e["action"], e["identified_by"]) for e in attendance] == [
                ("mg", "in", "nfc:BEEF"), ("mg", "out", "nfc:BEEF")]
