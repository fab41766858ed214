"""A manager voids a mistyped expense from the cash screen (#15 item 10), against the
real agent: a correction event refers to the entry, which stays in the history."""

from __future__ import annotations

from textual.widgets import DataTable

from .conftest import message_text, wait_for
from .test_real_agent_till import till


async def test_a_manager_voids_an_expense_and_the_history_keeps_it() -> None:
    from agent.tui.screens.cash import CashScreen

    async with till("mg", "9999") as (h, app, pilot):
        session = await h.login("mg", "9999")
        await h.client().call("expense.add", {"amount": 70000, "category": "supplies",
                                              "note": "typo: 700.00", "session": session})
        await pilot.press("f4")
        await wait_for(pilot, lambda: isinstance(app.screen, CashScreen)
                       and app.screen.query_one("#cash-table", DataTable).row_count == 1)
        app.screen.query_one("#cash-table", DataTable).focus()
        await pilot.press("ctrl+z")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "RefundDialog")
        await pilot.press("enter")                                   # no reason: refused
        assert type(app.screen).__name__ == "RefundDialog"
        await pilot.press(*"typed 700 for 7", "enter")
        try:
            await wait_for(pilot, lambda: "Entry voided" in message_text(app), timeout=10)
        except AssertionError:
            raise AssertionError(f"{message_text(app)!r} {type(app.screen).__name__}") from None
        await wait_for(pilot, lambda: "(void)" in str(
            app.screen.query_one("#cash-table", DataTable).get_row_at(0)))
        events = h.outbox()
        expense = next(e for e in events if e["type"] == "expense")
        correction = next(e for e in events if e["type"] == "correction")
        assert expense["amount"] == 70000                            # history unchanged
        assert (correction["ref_id"], correction["action"], correction["reason"]) == (
            expense["id"], "void", "typed 700 for 7")
        await pilot.press("ctrl+z")                                  # twice: refused
        await wait_for(pilot, lambda: "void already" in message_text(app))


async def test_a_cashier_cannot_void() -> None:
    from agent.tui.screens.cash import CashScreen

    async with till() as (h, app, pilot):
        session = await h.login()
        await h.client().call("expense.add", {"amount": 500, "category": "supplies",
                                              "session": session})
        await pilot.press("f4")
        await wait_for(pilot, lambda: isinstance(app.screen, CashScreen)
                       and app.screen.query_one("#cash-table", DataTable).row_count == 1)
        await pilot.press("ctrl+z")
        await wait_for(pilot, lambda: "Only a manager" in message_text(app))
        assert not [e for e in h.outbox() if e["type"] == "correction"]
