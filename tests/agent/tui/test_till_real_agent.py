"""#15 items 3, 5, 14, 15, 16: the till against the real agent (socket, server,
services, SQLite store, rules engine) through ``tests.agent.localapi.harness``."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from textual.widgets import Input, Static

from agent.localapi import receipt_number
from agent.tui.app import ClubtermApp
from agent.tui.screens.members import MembersScreen
from agent.tui.screens.recent_sales import ConfirmDialog, RecentSalesDialog, RefundDialog
from agent.tui.screens.report import ReportScreen
from agent.tui.screens.sale import SaleScreen
from agent.tui.screens.sale_dialogs import PaymentDialog, ReceiptDialog
from tests.agent.localapi.harness import Harness

from .conftest import at_the_till, message_text, wait_for

CARD = {"type": "card", "kind": "card", "source": "nfc", "reader": "sim",
        "token_kind": "nfc", "masked": None, "member": None}


def _text(widget: Any) -> str:
    """What a Static shows, as plain text."""
    import io

    from rich.console import Console

    console = Console(width=200, file=io.StringIO(), record=True)
    console.print(widget.content)
    return console.export_text()


async def _sell(pilot: Any, app: ClubtermApp, screen: SaleScreen, amount: str) -> dict[str, Any]:
    await pilot.press(*amount, "enter")
    await wait_for(pilot, lambda: screen.quote is not None)
    await pilot.press("f8")
    await wait_for(pilot, lambda: isinstance(app.screen, PaymentDialog))
    await pilot.press("1", "enter")
    await wait_for(pilot, lambda: isinstance(app.screen, ReceiptDialog), timeout=10)
    receipt: dict[str, Any] = app.screen.receipt  # type: ignore[attr-defined]
    return receipt


async def test_void_the_last_sale_reprint_and_keys_typed_over_the_receipt() -> None:
    # Seen: no list of sales, no void or reprint; keys typed while the receipt was
    # open were lost; the receipt's number was the outbox seq.
    with tempfile.TemporaryDirectory(prefix="cttui") as tmp:
        async with Harness(Path(tmp)) as h:
            app = ClubtermApp(h.client(), idle_signout_s=0, clock=lambda: h.now)
            async with app.run_test(size=(80, 24)) as pilot:
                screen = await at_the_till(pilot)
                await _sell(pilot, app, screen, "12")
                receipt = await _sell(pilot, app, screen, "20")
                shown = _text(app.screen.query_one("#receipt", Static))
                assert receipt_number(receipt["sale_id"]) in shown
                # The next customer's amount typed over the receipt is kept.
                await pilot.press(*"7.5")
                await wait_for(pilot, lambda: app.screen is screen)
                await wait_for(pilot, lambda: screen.query_one("#entry", Input).value == "7.5")
                await pilot.press("ctrl+n")
                assert message_text(app) == ""
                await pilot.press("f9")
                await wait_for(pilot, lambda: isinstance(app.screen, RecentSalesDialog)
                               and len(app.screen.sales) == 2)
                dialog = app.screen
                assert dialog.sales[0]["sale_id"] == receipt["sale_id"]
                await pilot.press("ctrl+z")
                await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog))
                await pilot.press("enter")
                await wait_for(pilot, lambda: any(e["type"] == "refund" for e in h.outbox()))
                await wait_for(pilot, lambda: app.screen is dialog
                               and "voided" in message_text(app))
                refund = [e for e in h.outbox() if e["type"] == "refund"]
                assert [(r["sale_id"], r["reason"]) for r in refund] == [
                    (receipt["sale_id"], "void")]
                # A void twice is refused, and the older sale cannot be voided.
                await wait_for(pilot, lambda: dialog.sales[0].get("refund") is not None)
                await pilot.press("ctrl+z")
                assert "already refunded" in message_text(app)
                await pilot.press("down", "ctrl+z")
                await wait_for(pilot, lambda: "Only the last sale" in message_text(app))
                # Reprint of the voided sale says so.
                await pilot.press("up", "ctrl+p")
                await wait_for(pilot, lambda: isinstance(app.screen, ReceiptDialog))
                copy = _text(app.screen.query_one("#receipt", Static))
                assert "COPY" in copy and "VOIDED" in copy
            assert len([e for e in h.outbox() if e["type"] == "refund"]) == 1


async def test_manager_refunds_a_sale_and_the_report_counts_it() -> None:
    with tempfile.TemporaryDirectory(prefix="cttui") as tmp:
        async with Harness(Path(tmp)) as h:
            app = ClubtermApp(h.client(), idle_signout_s=0, clock=lambda: h.now)
            async with app.run_test(size=(120, 36)) as pilot:
                screen = await at_the_till(pilot, "mg", "9999")
                receipt = await _sell(pilot, app, screen, "30")
                await pilot.press("enter")
                await pilot.press("f9")
                await wait_for(pilot, lambda: isinstance(app.screen, RecentSalesDialog)
                               and len(app.screen.sales) == 1)
                # Search by the receipt number as printed.
                await pilot.press(*receipt_number(receipt["sale_id"]), "enter")
                await wait_for(pilot, lambda: app.screen.query_text != "")  # type: ignore[attr-defined]
                await pilot.press("ctrl+f")
                await wait_for(pilot, lambda: isinstance(app.screen, RefundDialog))
                await pilot.press("enter")  # no reason: refused
                assert not any(e["type"] == "refund" for e in h.outbox())
                await pilot.press(*"broken", "enter")
                await wait_for(pilot, lambda: any(e["type"] == "refund" for e in h.outbox()))
                await wait_for(pilot, lambda: "refunded" in message_text(app))
                await pilot.press("escape", "f7")
                try:
                    await wait_for(pilot, lambda: isinstance(app.screen, ReportScreen)
                                   and app.screen.summary is not None)
                except AssertionError:
                    raise AssertionError(f"{app.screen} {message_text(app)}") from None
                figures = _text(app.screen.query_one("#figures", Static))
                assert "Refunded" in figures and "-€30.00" in figures
                assert "Net taken" in figures and "€0.00" in figures
            refund = [e for e in h.outbox() if e["type"] == "refund"]
            assert refund[0]["reason"] == "broken" and refund[0]["staff_id"] == "mg"


async def test_a_cashier_cannot_refund_from_the_list() -> None:
    with tempfile.TemporaryDirectory(prefix="cttui") as tmp:
        async with Harness(Path(tmp)) as h:
            app = ClubtermApp(h.client(), idle_signout_s=0, clock=lambda: h.now)
            async with app.run_test(size=(80, 24)) as pilot:
                screen = await at_the_till(pilot)
                await _sell(pilot, app, screen, "9")
                await pilot.press("enter", "f9")
                await wait_for(pilot, lambda: isinstance(app.screen, RecentSalesDialog)
                               and len(app.screen.sales) == 1)
                await pilot.press("ctrl+f")
                assert "Only a manager" in message_text(app)
            assert not any(e["type"] == "refund" for e in h.outbox())


async def test_offline_limits_are_shown_with_their_reason_and_credit_says_what_it_used() -> None:
    # Seen offline: "Usable club credit: €50.00" while €20.00 could be used; Ctrl+O
    # said "Credit will be used." and nothing was; the reason was never shown.
    with tempfile.TemporaryDirectory(prefix="cttui") as tmp:
        async with Harness(Path(tmp)) as h:
            h.online = False
            app = ClubtermApp(h.client(), idle_signout_s=0, clock=lambda: h.now)
            async with app.run_test(size=(120, 36)) as pilot:
                screen = await at_the_till(pilot)
                await wait_for(pilot, lambda: any(
                    c.subscribed for c in h.server.connections.values()))
                await pilot.press(*"100", "enter")
                await wait_for(pilot, lambda: screen.quote is not None)
                h.server.broadcast({**CARD, "token": "nfc:04A1B2"})
                await wait_for(pilot, lambda: screen.quote is not None
                               and screen.quote.get("member") is not None, timeout=10)
                panel = _text(screen.query_one("#quote-panel", Static))
                credit = screen.quote["redeem_limits"]["credits"][0]
                assert credit["max"] < credit["available"]
                assert credit["held_by"] == "max_redeem_value_per_member_day"
                assert "offline limit per member and day" in panel
                assert f"of {screen.fmt(5000)}" in panel
                member = _text(screen.query_one("#member-panel", Static))
                assert "worth" in member  # points with their money value
                await pilot.press("ctrl+o")
                await wait_for(pilot, lambda: "Credit used" in message_text(app), timeout=10)
                assert screen.fmt(credit["max"]) in message_text(app)
                assert "offline limit" in message_text(app)
                used = screen.quote["credits_used"]
                assert used == [{"kind": "credit.club", "amount": credit["max"]}]
                panel = _text(screen.query_one("#quote-panel", Static))
                assert "Earns" in panel and "worth" in panel
                print(f"figure: offline credit usable {credit['max']} of {credit['available']}")


async def test_an_unknown_card_is_offered_for_enrolment() -> None:
    with tempfile.TemporaryDirectory(prefix="cttui") as tmp:
        async with Harness(Path(tmp)) as h:
            app = ClubtermApp(h.client(), idle_signout_s=0, clock=lambda: h.now)
            async with app.run_test(size=(80, 24)) as pilot:
                await at_the_till(pilot)
                await wait_for(pilot, lambda: any(
                    c.subscribed for c in h.server.connections.values()))
                h.server.broadcast({**CARD, "token": "nfc:0A0B0C0D"})
                await wait_for(pilot, lambda: "Ctrl+E" in message_text(app), timeout=10)
                await pilot.press("ctrl+e")
                await wait_for(pilot, lambda: isinstance(app.screen, MembersScreen))
                members = app.screen
                assert isinstance(members, MembersScreen)
                assert members.card_token == "nfc:0A0B0C0D"
                await pilot.press(*"Olga N", "enter", *"0935 222 3333", "f8")
                await wait_for(pilot, lambda: any(e["type"] == "member_enrol"
                                                  for e in h.outbox()), timeout=10)
            enrol = next(e for e in h.outbox() if e["type"] == "member_enrol")
            assert "nfc:0A0B0C0D" in enrol["identifiers"] and enrol["name"] == "Olga N"


async def test_manager_finds_a_member_and_replaces_the_lost_card() -> None:
    with tempfile.TemporaryDirectory(prefix="cttui") as tmp:
        async with Harness(Path(tmp)) as h:
            app = ClubtermApp(h.client(), idle_signout_s=0, clock=lambda: h.now)
            async with app.run_test(size=(80, 24)) as pilot:
                await at_the_till(pilot, "mg", "9999")
                await wait_for(pilot, lambda: any(
                    c.subscribed for c in h.server.connections.values()))
                await pilot.press("f6")
                await wait_for(pilot, lambda: isinstance(app.screen, MembersScreen))
                members = app.screen
                assert isinstance(members, MembersScreen)
                members.query_one("#member-find", Input).focus()
                await pilot.press(*"sara", "enter")
                await wait_for(pilot, lambda: members.profile is not None)
                profile = _text(members.query_one("#member-profile", Static))
                assert "Sara K." in profile and "1,200" in profile
                # The lost card was tapped before: the manager replaces exactly that one.
                h.server.broadcast({**CARD, "token": "nfc:04A1B2", "member": {
                    "member_id": "m-1", "name": "Sara K."}})
                await wait_for(pilot, lambda: members.found_by == "nfc:04A1B2")
                await pilot.press("ctrl+l")
                assert "Tap the new card" in message_text(app)
                h.server.broadcast({**CARD, "token": "nfc:0E0E0E0E"})
                try:
                    await wait_for(pilot, lambda: "New card linked" in message_text(app),
                                   timeout=10)
                except AssertionError:
                    raise AssertionError(message_text(app)) from None
            link = next(e for e in h.outbox() if e["type"] == "card_link")
            assert (link["member_id"], link["identifier"], link["replaces"]) == (
                "m-1", "nfc:0E0E0E0E", "nfc:04A1B2")
            assert h.store.members.lookup("nfc:04A1B2") is None
            assert (h.store.members.lookup("nfc:0E0E0E0E") or {}).get("member_id") == "m-1"
