"""A manager voids a mistyped expense from the cash screen (#15 item 10), against the
real agent: a correction event refers to the entry, which stays in the history."""

from __future__ import annotations

from textual.widgets import DataTable, Input, Static

from .conftest import message_text, wait_for
from .test_real_agent_till import till
from .test_till_real_agent import _text


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


async def test_a_manager_amends_an_expense_amount_and_the_history_keeps_it() -> None:
    # Seen: a mistyped amount could only be voided and typed again.
    from agent.tui.screens.cash import CashScreen

    async with till("mg", "9999") as (h, app, pilot):
        session = await h.login("mg", "9999")
        await h.client().call("expense.add", {"amount": 70000, "category": "milk",
                                              "note": "two crates", "session": session})
        await pilot.press("f4")
        await wait_for(pilot, lambda: isinstance(app.screen, CashScreen)
                       and app.screen.query_one("#cash-table", DataTable).row_count == 1)
        await pilot.press("ctrl+t")                     # with the amount field focused
        await wait_for(pilot, lambda: type(app.screen).__name__ == "CorrectionDialog")
        assert app.screen.query_one("#fix-amount", Input).value == "700.00"
        await pilot.press("enter", "enter", "enter", "enter")          # nothing changed
        assert "Nothing changed" in str(app.screen.query_one("#fix-error", Static).render())
        await pilot.press(*["backspace"] * 6, *"7", "enter", "enter", "enter")
        await pilot.press("enter")                                      # no reason: refused
        assert type(app.screen).__name__ == "CorrectionDialog"
        assert "reason" in str(app.screen.query_one("#fix-error", Static).render())
        await pilot.press(*"typed 700 for 7", "enter")
        await wait_for(pilot, lambda: "Entry corrected" in message_text(app), timeout=10)
        await wait_for(pilot, lambda: "7.00" in str(
            app.screen.query_one("#cash-table", DataTable).get_row_at(0)))
        events = h.outbox()
        expense = next(e for e in events if e["type"] == "expense")
        fix = next(e for e in events if e["type"] == "correction")
        assert expense["amount"] == 70000                            # history unchanged
        assert (fix["ref_id"], fix["action"], fix["changes"], fix["reason"]) == (
            expense["id"], "amend", {"amount": 700}, "typed 700 for 7")


async def test_a_cashier_cannot_amend() -> None:
    from agent.tui.screens.cash import CashScreen

    async with till() as (h, app, pilot):
        session = await h.login()
        await h.client().call("expense.add", {"amount": 500, "category": "milk",
                                              "session": session})
        await pilot.press("f4")
        await wait_for(pilot, lambda: isinstance(app.screen, CashScreen)
                       and app.screen.query_one("#cash-table", DataTable).row_count == 1)
        await pilot.press("ctrl+t")
        await wait_for(pilot, lambda: "Only a manager" in message_text(app))
        assert type(app.screen).__name__ == "CashScreen"


async def test_a_manager_corrects_a_mistyped_enrolment_on_the_members_screen() -> None:
    # Seen: a mis-tab enrolled a member named "CLUB-9999" and nothing could fix it.
    from agent.tui.screens.members import MembersScreen

    async with till("mg", "9999") as (h, app, pilot):
        session = await h.login()
        await h.client().call("member.enrol", {"name": "CLUB-9999", "phone": "0935 111 2222",
                                               "session": session})
        await pilot.press("f6")
        await wait_for(pilot, lambda: isinstance(app.screen, MembersScreen))
        app.screen.query_one("#member-find", Input).focus()
        await pilot.press(*"CLUB-9999", "enter")
        await wait_for(pilot, lambda: app.screen.profile is not None)
        await pilot.press("ctrl+t")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "CorrectionDialog")
        assert app.screen.query_one("#fix-name", Input).value == "CLUB-9999"
        await pilot.press(*["backspace"] * 9, *"Sara Jafari", "enter")
        await pilot.press(*"0935 111 2299", "enter")       # focus selects the old phone
        await pilot.press(*"scanned the code into the name", "enter")
        try:
            await wait_for(pilot, lambda: "Enrolment corrected" in message_text(app), timeout=10)
        except AssertionError:
            raise AssertionError(f"{message_text(app)!r} {type(app.screen).__name__} "
                                 ) \
                from None
        await wait_for(pilot, lambda: "Sara Jafari" in _text(
            app.screen.query_one("#member-profile", Static)))
        fix = next(e for e in h.outbox() if e["type"] == "correction")
        assert fix["ref_type"] == "member_enrol" and fix["changes"]["name"] == "Sara Jafari"
        assert fix["changes"]["phone"].endswith("9351112299")
        found = await h.client().call("member.identify", {"phone": "0935 111 2299"})
        assert found["name"] == "Sara Jafari"


async def test_a_member_enrolled_elsewhere_cannot_be_corrected_here() -> None:
    from agent.tui.screens.members import MembersScreen

    async with till("mg", "9999") as (_h, app, pilot):
        await pilot.press("f6")
        await wait_for(pilot, lambda: isinstance(app.screen, MembersScreen))
        await pilot.press("ctrl+t")
        await wait_for(pilot, lambda: "Find the member first" in message_text(app))
        app.screen.query_one("#member-find", Input).focus()
        await pilot.press(*"Sara K", "enter")                 # the club's member m-1
        await wait_for(pilot, lambda: app.screen.profile is not None)
        await pilot.press("ctrl+t")
        await wait_for(pilot, lambda: "not enrolled at this terminal" in message_text(app))
        assert type(app.screen).__name__ == "MembersScreen"
