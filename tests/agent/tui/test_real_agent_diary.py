"""The diary against the real agent (#15 item 13): club codes in any case, non-members
with name and phone, past times and cancellations confirmed, focus after booking,
rows in time order.

Each test fails on the diary before #15 item 13 (main at c8a10cb).
"""

from __future__ import annotations

import json
from typing import Any

from textual.widgets import DataTable

from agent.tui.app import ClubtermApp
from tests.agent.localapi.harness import Harness

from .conftest import message_text, wait_for
from .test_real_agent_till import till

DANA = {"member_id": "m-3", "version": 5, "name": "Dana P.", "status": "active",
        "tier": "silver", "groups": [], "identifiers": ["code:CLUB-1002", "tel:+989127770000"],
        "balances": {"points": 40}, "stats": {}, "applied": {}}


async def open_diary(h: Harness, app: ClubtermApp, pilot: Any) -> Any:
    from agent.tui.screens.appointments import AppointmentsScreen

    h.store.members.import_snapshot([json.dumps(DANA)], 11, False)
    await pilot.press("f5")
    await wait_for(pilot, lambda: isinstance(app.screen, AppointmentsScreen))
    await pilot.pause()
    return app.screen


async def fill_form(pilot: Any, time: str, customer: str, service: str,
                    note: str = "") -> None:
    """Type the form as a cashier: Time, Tab Minutes, Tab Staff, Tab Customer, …"""
    await pilot.press(*time, "tab", "tab", "tab", *customer, "tab", *service, "tab", *note)


def booked(h: Harness) -> list[dict[str, Any]]:
    return [e for e in h.outbox() if e["type"] == "appointment" and e["action"] == "create"]


def rows(screen: Any) -> list[list[str]]:
    table = screen.query_one("#diary", DataTable)
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


async def test_a_club_code_in_any_case_books_the_member_by_name() -> None:
    async with till() as (h, app, pilot):
        screen = await open_diary(h, app, pilot)
        await fill_form(pilot, "11:00", "club-1002", "haircut")
        await pilot.press("f8")
        await wait_for(pilot, lambda: "Booked" in message_text(app), timeout=10)
        assert [e["customer"] for e in booked(h)] == ["m-3"]
        await wait_for(pilot, lambda: len(screen.appointments) == 1)
        assert "Dana P." in rows(screen)[0]
        print(f"figure: diary row {rows(screen)[0]}")


async def test_a_non_member_is_listed_with_name_and_phone() -> None:
    async with till() as (h, app, pilot):
        screen = await open_diary(h, app, pilot)
        await fill_form(pilot, "11:00", "Ali R. 0912 111 2222", "colour", "bring photos")
        await pilot.press("f8")
        await wait_for(pilot, lambda: "Booked" in message_text(app), timeout=10)
        await wait_for(pilot, lambda: len(screen.appointments) == 1)
        [row] = rows(screen)
        assert "Ali R. · +989121112222" in row, row
        assert booked(h)[0]["customer"] == "tel:+989121112222"
        # The name is its own key; the note is only the note (the club reads both).
        assert booked(h)[0]["customer_name"] == "Ali R."
        assert booked(h)[0]["note"] == "bring photos"


async def test_focus_returns_to_time_after_booking_not_note() -> None:
    async with till() as (h, app, pilot):
        await open_diary(h, app, pilot)
        await fill_form(pilot, "11:00", "club-1002", "haircut", "first visit")
        assert app.focused is not None and app.focused.id == "appt-note"
        await pilot.press("f8")
        await wait_for(pilot, lambda: "Booked" in message_text(app), timeout=10)
        await pilot.pause()
        assert app.focused is not None and app.focused.id == "appt-time"


async def test_a_past_time_asks_before_booking() -> None:
    from agent.tui.screens.recent_sales import ConfirmDialog

    async with till() as (h, app, pilot):
        await open_diary(h, app, pilot)           # the till's clock: 10:00
        await fill_form(pilot, "09:00", "club-1002", "haircut")
        await pilot.press("f8")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), timeout=10)
        assert "already passed" in str(app.screen.question)
        await pilot.press("escape")                # no: nothing booked
        await wait_for(pilot, lambda: "Not booked" in message_text(app))
        assert booked(h) == []
        await pilot.press("f8")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), timeout=10)
        await pilot.press("enter")                 # yes: booked, once
        await wait_for(pilot, lambda: "Booked" in message_text(app), timeout=10)
        assert len(booked(h)) == 1


async def test_cancel_asks_first() -> None:
    from agent.tui.screens.recent_sales import ConfirmDialog

    async with till() as (h, app, pilot):
        screen = await open_diary(h, app, pilot)
        await fill_form(pilot, "11:00", "club-1002", "haircut")
        await pilot.press("f8")
        await wait_for(pilot, lambda: len(screen.appointments) == 1, timeout=10)
        await pilot.press("ctrl+o")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        assert "Dana P." in str(app.screen.question)
        await pilot.press("escape")
        await wait_for(pilot, lambda: "Not cancelled" in message_text(app))
        cancels = [e for e in h.outbox() if e["type"] == "appointment"
                   and e["action"] == "cancel"]
        assert cancels == []
        await pilot.press("ctrl+o")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("enter")
        await wait_for(pilot, lambda: "Cancelled" in message_text(app), timeout=10)
        await wait_for(pilot, lambda: screen.appointments == [])


async def test_rows_of_several_staff_are_in_time_order() -> None:
    async with till() as (h, app, pilot):
        session = await h.login("mg", "9999")
        client = h.client()
        for staff, start in (("c1", "12:00"), ("mg", "11:00"), ("c1", "10:30")):
            await client.call("appointment.create", {
                "phone": "0912 555 0000", "service": "trim", "staff_id": staff,
                "minutes": 30, "start": f"2026-11-25T{start}:00+01:00", "session": session})
        screen = await open_diary(h, app, pilot)
        await wait_for(pilot, lambda: len(screen.appointments) == 3)
        await pilot.pause()
        starts = [r[0][:5] for r in rows(screen)]
        staff = [r[1] for r in rows(screen)]
        assert starts == ["10:30", "11:00", "12:00"], starts
        assert staff == ["Cara", "Max", "Cara"]
