"""Clock, cash-up, corrections and the diary against the real agent (#15 items 7, 9, 10, 13).

The UI talks to a real Store/Services/ApiServer in-process
(``tests.agent.localapi.harness``), as ``test_real_agent.py`` does.
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from agent.tui.app import ClubtermApp
from tests.agent.localapi.harness import Harness

from .conftest import message_text, wait_for


@asynccontextmanager
async def till(staff: str = "c1", pin: str = "1234", size: tuple[int, int] = (80, 24),
               locale: str = "en") -> AsyncIterator[tuple[Harness, ClubtermApp, Any]]:
    """The real agent, the UI on it, signed in as ``staff``."""
    with tempfile.TemporaryDirectory(prefix="cttill") as tmp:
        async with Harness(Path(tmp)) as h:
            app = ClubtermApp(h.client(), idle_signout_s=0, clock=lambda: h.now,
                              locale=locale)
            async with app.run_test(size=size) as pilot:
                await wait_for(pilot, lambda: app.agent_status.known)
                await pilot.press(*staff, "enter", *pin, "enter")
                await wait_for(pilot, lambda: app.staff is not None
                               and app.screen.__class__.__name__ != "SignInScreen")
                yield h, app, pilot


async def _pay_dialog(app: Any, pilot: Any, amount: str) -> tuple[Any, Any]:
    """On the sale screen, type ``amount`` and open Pay: (the sale screen, the dialog)."""
    from agent.tui.screens.sale import SaleScreen
    from agent.tui.screens.sale_dialogs import PaymentDialog

    screen = app.screen
    assert isinstance(screen, SaleScreen)
    await pilot.press(*amount, "enter")
    await wait_for(pilot, lambda: screen.quote is not None)
    await pilot.press("f8")
    await wait_for(pilot, lambda: isinstance(app.screen, PaymentDialog))
    dialog = app.screen
    assert isinstance(dialog, PaymentDialog)
    return screen, dialog


def _attendance(h: Harness) -> list[tuple[str, str, Any]]:
    return [(e["staff_id"], e["action"], e.get("corrected_by"))
            for e in h.outbox() if e["type"] == "attendance"]


async def test_clocking_a_colleague_needs_their_pin() -> None:
    # Seen: a cashier typed "mg" F8 and clocked the manager in (buddy punching).
    from agent.tui.screens.clock import ClockScreen

    async with till() as (h, app, pilot):
        await pilot.press("f3")
        await wait_for(pilot, lambda: isinstance(app.screen, ClockScreen))
        assert not app.screen.query_one("#clock-reason-row").display  # not a manager
        await pilot.press(*"mg", "f8")
        await wait_for(pilot, lambda: "Enter the PIN" in message_text(app))
        assert _attendance(h) == []
        await pilot.press(*"1111", "enter")
        await wait_for(pilot, lambda: "not right" in message_text(app))
        assert _attendance(h) == []
        await pilot.press(*"9999", "enter")              # Enter: in …
        await wait_for(pilot, lambda: "Max clocked in" in message_text(app))
        await pilot.press(*"mg", "enter", *"9999", "enter")   # … and Enter again: out
        await wait_for(pilot, lambda: "Max clocked out" in message_text(app))
        assert _attendance(h) == [("mg", "in", None), ("mg", "out", None)]


async def test_a_manager_corrects_with_a_reason() -> None:
    from textual.widgets import Input

    from agent.tui.screens.clock import ClockScreen

    async with till("mg", "9999") as (h, app, pilot):
        await pilot.press("f3")
        await wait_for(pilot, lambda: isinstance(app.screen, ClockScreen))
        assert app.screen.query_one("#clock-reason-row").display
        await pilot.press(*"c1", "f8")
        await wait_for(pilot, lambda: "Enter the PIN" in message_text(app))
        app.screen.query_one("#clock-reason", Input).value = "badge left at home"
        await pilot.press("f8")
        await wait_for(pilot, lambda: "Cara clocked in" in message_text(app))
        assert _attendance(h) == [("c1", "in", "mg")]
        assert [e["reason"] for e in h.outbox() if e["type"] == "attendance"] == [
            "badge left at home"]


async def test_cash_tendered_shows_the_change_and_the_report_counts_cash_sales() -> None:
    # Seen: no change due; "Net cash" left the cash sales out; no split by tender.
    from textual.widgets import Static

    from agent.tui.screens.report import ReportScreen
    from agent.tui.screens.sale_dialogs import PaymentDialog, ReceiptDialog

    async with till("mg", "9999") as (h, app, pilot):
        screen, dialog = await _pay_dialog(app, pilot, "20")
        await pilot.press("1", "tab", *"10")
        await wait_for(pilot, lambda: "short" in str(dialog.query_one("#change", Static).content))
        await pilot.press("enter")                      # less than to pay: not recorded
        await pilot.pause(0.2)
        assert isinstance(app.screen, PaymentDialog) and not h.outbox()
        await pilot.press("backspace", "backspace", *"50")
        await wait_for(pilot, lambda: "Change due: €30.00" in str(
            dialog.query_one("#change", Static).content))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ReceiptDialog), timeout=10)
        # #17 tenders: the cash handed over reaches the agent; it records what stays.
        receipt = app.screen.receipt  # type: ignore[attr-defined]
        assert (receipt["tendered"], receipt["change_due"]) == (5000, 3000)
        assert h.outbox()[-1]["tenders"] == [{"method": "cash", "amount": 2000}]
        await pilot.press("enter")
        # The common path stays two keys: 2, Enter.
        await pilot.press(*"40", "enter")
        await wait_for(pilot, lambda: screen.quote is not None and screen.quote["gross"] == 4000)
        await pilot.press("f8")
        await wait_for(pilot, lambda: isinstance(app.screen, PaymentDialog))
        await pilot.press("2", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ReceiptDialog), timeout=10)
        await pilot.press("enter")
        await pilot.press("f7")
        await wait_for(pilot, lambda: isinstance(app.screen, ReportScreen)
                       and app.screen.summary is not None)
        from agent.tui.screens.report import figures_table

        text = _plain(figures_table(app.screen.summary, app.screen.fmt))
        assert "Net cash" in text and "Card sales (1)" in text, text
        net_line = next(line for line in text.splitlines() if "Net cash" in line)
        assert "€20.00" in net_line, text
        import os

        os.environ["CLUBTERM_EXPORT_DIR"] = str(h.tmp / "reports")
        await pilot.press("f9")                          # close the day: the Z report
        await wait_for(pilot, lambda: "Z report 1" in message_text(app), timeout=10)
        closes = [e for e in h.outbox() if e["type"] == "day_close"]
        assert closes[0]["totals"]["cash"]["net"] == 2000
        assert closes[0]["totals"]["by_tender"]["card"]["payable"] == 4000
        export = app.screen.last_export
        assert export is not None and "Z report 1" in export.read_text()
        assert export.parent == h.tmp / "reports"
        del os.environ["CLUBTERM_EXPORT_DIR"]


def _plain(renderable: Any) -> str:
    """A rich renderable as plain text (80 columns)."""
    from rich.console import Console

    console = Console(width=80, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


async def test_a_split_payment_card_then_cash_with_change() -> None:
    # #15 item 7: part by card, the rest in cash with change; keys as fast as a macro.
    from textual.widgets import Static

    from agent.tui.screens.sale_dialogs import ReceiptDialog

    async with till("mg", "9999") as (h, app, pilot):
        screen, dialog = await _pay_dialog(app, pilot, "80")
        await pilot.press("2", "tab", *"90", "plus")        # more than to pay: not a part
        await pilot.pause(0.1)
        assert dialog.parts == [] and not h.outbox()
        await pilot.press("backspace", "backspace", *"50", "plus")
        await wait_for(pilot, lambda: "€30.00" in str(dialog.query_one("#parts", Static).content))
        assert dialog.parts == [("card", 5000)] and not h.outbox()
        await pilot.press("1", "tab", *"40")
        await wait_for(pilot, lambda: "Change due: €10.00" in str(
            dialog.query_one("#change", Static).content))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ReceiptDialog), timeout=10)
        sale = h.outbox()[-1]
        assert sale["tenders"] == [{"method": "card", "amount": 5000},
                                   {"method": "cash", "amount": 3000}]
        assert sale["payable"] == 8000
        receipt = app.screen.receipt  # type: ignore[attr-defined]
        assert receipt["change_due"] == 1000
        from agent.tui.screens.sale_dialogs import receipt_table

        text = _plain(receipt_table(receipt, screen.fmt))
        paid = [" ".join(line.split()) for line in text.splitlines() if "Paid by" in line]
        assert paid == ["Paid by: Card €50.00", "Paid by: Cash €30.00"], text
        assert "Cash tendered €40.00 · change €10.00" in text, text


async def test_the_split_hint_names_the_keys_pay_offers() -> None:
    # "+" before a part is typed says how to split, naming 1 to 6 (Pay offers six
    # methods); the hint is true: 3 (other), Tab, the part, + is taken as a part.
    from textual.widgets import Static


    async with till("mg", "9999") as (h, app, pilot):
        _, dialog = await _pay_dialog(app, pilot, "30")
        await pilot.press("plus")
        hint = dialog.query_one("#pay-hint", Static)
        await wait_for(pilot, lambda: "Split" in str(hint.content))
        assert "1 to 6" in str(hint.content) and hint.has_class("error")
        assert {dialog.TENDERS[k] for k in "123456"} == {
            "cash", "card", "other", "stored_value", "gift_card", "account"}
        await pilot.press("3", "tab", *"10", "plus")
        await wait_for(pilot, lambda: dialog.parts == [("other", 1000)])
        assert not h.outbox()


async def test_escape_drops_the_parts_and_records_nothing() -> None:
    from agent.tui.screens.sale import SaleScreen

    async with till("mg", "9999") as (h, app, pilot):
        screen, _ = await _pay_dialog(app, pilot, "30")
        await pilot.press("2", "tab", *"10", "plus", "escape")
        await wait_for(pilot, lambda: isinstance(app.screen, SaleScreen))
        assert not h.outbox() and screen.lines  # the basket is still there


def test_the_cash_up_shows_voucher_takings_and_cash_refunds() -> None:
    # #15 item 7 with #17 tenders: every tender the agent counts has a row, and cash
    # given back for a refund is taken off the drawer's cash, on the screen too.
    from agent.tui.i18n import load_locale, set_locale
    from agent.tui.screens.report import tender_rows
    from tests.agent.localapi.harness import run

    async def scenario(h: Harness) -> None:
        c = h.client()
        s = await h.login("mg", "9999")
        q = await c.call("sale.quote", {"amount": 3000})
        await c.call("sale.commit", {"quote_id": q["quote_id"], "session": s,
                                     "tenders": [{"method": "voucher", "amount": 1000},
                                                 {"method": "cash", "amount": 2000}]})
        q = await c.call("sale.quote", {"amount": 1500})
        sale = await c.call("sale.commit", {"quote_id": q["quote_id"], "payment": "cash",
                                            "session": s})
        await c.call("sale.refund", {"sale_id": sale["sale_id"], "reason": "broken",
                                     "session": s})
        summary = await c.call("day.summary", {"session": s})
        set_locale(load_locale("en"))
        rows = dict(tender_rows(summary, lambda v: f"{v / 100:.2f}"))
        assert rows.get("Voucher sales (1)") == "10.00", rows
        assert rows.get("Cash refunds") == "15.00", rows
        assert rows["Net cash"] == f"{summary['cash']['net'] / 100:.2f}"

    run(scenario)
