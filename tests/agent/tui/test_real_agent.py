"""The sale path of the UI against the real agent: socket, server, services, store, rules.

Uses the daemon's test harness (``tests.agent.localapi.harness``).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from agent.tui.app import ClubtermApp
from agent.tui.screens.sale import SaleScreen
from agent.tui.screens.sale_dialogs import PaymentDialog, ReceiptDialog
from tests.agent.localapi import harness

from .conftest import message_text, wait_for


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
                await pilot.press("1", "enter")
                await wait_for(pilot, lambda: isinstance(app.screen, ReceiptDialog), timeout=10)
                receipt = app.screen.receipt
                assert receipt["payable"] == screen.quote["payable"] if screen.quote else True
                await pilot.press("enter")
                await wait_for(pilot, lambda: "Sale recorded" in message_text(app))
            sales = [e for e in h.outbox() if e["type"] == "sale"]
            assert len(sales) == 1 and sales[0]["member_id"] == "m-1"
            assert sales[0]["offline"] is True and sales[0]["staff_id"] == "c1"


async def test_remove_takes_the_last_line_and_star_sets_its_quantity() -> None:
    # Seen: Ctrl+R removed the first line, not the last; a quantity could not change.
    with tempfile.TemporaryDirectory(prefix="cttui") as tmp:
        async with harness.Harness(Path(tmp)) as h:
            app = ClubtermApp(h.client(), idle_signout_s=0, clock=lambda: h.now)
            async with app.run_test(size=(80, 24)) as pilot:
                await wait_for(pilot, lambda: app.agent_status.known)
                await pilot.press(*"c1", "enter", *"1234", "enter")
                await wait_for(pilot, lambda: isinstance(app.screen, SaleScreen))
                screen = app.screen
                for amount in ("30", "5", "7"):
                    await pilot.press(*amount, "enter")
                    await pilot.pause(0.05)
                await wait_for(pilot, lambda: len(screen.lines) == 3)
                await pilot.press("ctrl+r")
                await wait_for(pilot, lambda: len(screen.lines) == 2)
                assert [line.unit_price for line in screen.lines] == [3000, 500]
                await pilot.press(*"*3", "enter")
                await wait_for(pilot, lambda: screen.lines[-1].qty == 3)
                await wait_for(pilot, lambda: screen.quote is not None
                               and screen.quote["gross"] == 3000 + 3 * 500)
                assert [line.qty for line in screen.lines] == [1, 3]
                assert "Quantity set to 3" in message_text(app)


async def test_pay_needs_a_choice_and_enter_and_stray_typing_records_nothing() -> None:
    # Seen: Enter on an empty amount opened Pay and one digit recorded the sale;
    # typing "1,000.50" with the Pay dialog open recorded a sale.
    with tempfile.TemporaryDirectory(prefix="cttui") as tmp:
        async with harness.Harness(Path(tmp)) as h:
            app = ClubtermApp(h.client(), idle_signout_s=0, clock=lambda: h.now,
                              confirm_above=100_000)
            async with app.run_test(size=(80, 24)) as pilot:
                await wait_for(pilot, lambda: app.agent_status.known)
                await pilot.press(*"c1", "enter", *"1234", "enter")
                await wait_for(pilot, lambda: isinstance(app.screen, SaleScreen))
                screen = app.screen
                await pilot.press(*"20", "enter")
                await wait_for(pilot, lambda: screen.quote is not None)
                await pilot.press("enter")      # Enter on the empty field opens Pay
                await wait_for(pilot, lambda: isinstance(app.screen, PaymentDialog))
                await pilot.press(*"1,000.50", "enter")
                await pilot.pause(0.3)
                assert isinstance(app.screen, PaymentDialog)
                await pilot.press("1")
                await pilot.pause(0.3)
                assert isinstance(app.screen, PaymentDialog)   # a choice alone records nothing
                assert [e for e in h.outbox() if e["type"] == "sale"] == []
                await pilot.press("escape")
                await wait_for(pilot, lambda: isinstance(app.screen, SaleScreen))
                # A large sale asks for Enter twice.
                await pilot.press(*"2000", "enter")
                await wait_for(pilot, lambda: screen.quote is not None
                               and screen.quote["payable"] >= 100_000)
                await pilot.press("f8")
                await wait_for(pilot, lambda: isinstance(app.screen, PaymentDialog))
                await pilot.press("2", "enter")
                await pilot.pause(0.3)
                assert isinstance(app.screen, PaymentDialog)
                assert [e for e in h.outbox() if e["type"] == "sale"] == []
                await pilot.press("enter")
                await wait_for(pilot, lambda: isinstance(app.screen, ReceiptDialog), timeout=10)
            sales = [e for e in h.outbox() if e["type"] == "sale"]
            assert len(sales) == 1 and sales[0]["payment"] == "card"


def _burst(app: ClubtermApp, text: str) -> None:
    """Post keys all at once, as a POS keyboard macro or a laggy SSH session does.

    ``⏎`` is Enter and ``⇥`` Tab; every other character is typed as itself.
    """
    from textual import events

    names = {"⏎": ("enter", "\r"), "⇥": ("tab", "\t"), "*": ("asterisk", "*"),
             ".": ("full_stop", "."), "-": ("minus", "-"), " ": ("space", " ")}
    for char in text:
        key, character = names.get(char, (char, char))
        app.post_message(events.Key(key, character))


async def test_keys_arriving_in_one_burst_are_handled_in_order() -> None:
    # Seen: "20⏎5⏎7⏎" sent at once gave three lines of 2,057; "20⏎Tab CLUB-1002⏎"
    # left "20CLUB-1002" in Amount.
    with tempfile.TemporaryDirectory(prefix="cttui") as tmp:
        async with harness.Harness(Path(tmp)) as h:
            app = ClubtermApp(h.client(), idle_signout_s=0, clock=lambda: h.now)
            async with app.run_test(size=(80, 24)) as pilot:
                await wait_for(pilot, lambda: app.agent_status.known)
                _burst(app, "c1⏎1234⏎")
                await wait_for(pilot, lambda: isinstance(app.screen, SaleScreen))
                screen = app.screen
                _burst(app, "20⏎5⏎7⏎")
                await wait_for(pilot, lambda: len(screen.lines) >= 3)
                await pilot.pause(0.2)
                assert [line.unit_price for line in screen.lines] == [2000, 500, 700]
                _burst(app, "3*2.50⏎⇥0912 123 4567⏎")
                try:
                    await wait_for(pilot, lambda: screen.member is not None, timeout=10)
                except AssertionError:
                    from textual.widgets import Input
                    raise AssertionError(
                        f"lines {screen.lines}; entry {screen.query_one('#entry', Input).value!r}"
                        f"; member field {screen.query_one('#member-input', Input).value!r}; "
                        f"message {message_text(app)!r}") from None
                assert screen.member["member_id"] == "m-1"
                assert [(line.qty, line.unit_price) for line in screen.lines][-1] == (3, 250)
                from textual.widgets import Input
                assert screen.query_one("#entry", Input).value == ""


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
