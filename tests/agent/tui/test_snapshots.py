"""Snapshots of every screen at 80×24 (the smallest till) and 120×36.

Regenerate after an intended change with
``pytest tests/agent/tui/test_snapshots.py --snapshot-update`` and look at the
SVGs (``__snapshots__/``) before committing them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from agent.localapi.demo import DemoAgent
from agent.tui.app import ClubtermApp

from .conftest import Clock, demo_agent, ready, sign_in, wait_for

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 36), id="120x36")]
# The smallest screen every staff screen must work on (#15 item 12).
NARROW = [pytest.param((60, 20), id="60x20")]


_AGENTS: list[DemoAgent] = []


@pytest.fixture(autouse=True)
def _stop_agents() -> Iterator[None]:
    yield
    while _AGENTS:
        _AGENTS.pop().shutdown()


def make(locale: str = "en") -> tuple[ClubtermApp, DemoAgent, Clock]:
    """The UI on the demo agent (the real one, in a temporary directory) at a pinned time."""
    clock = Clock()
    api = demo_agent(clock)
    _AGENTS.append(api)
    return ClubtermApp(api, locale=locale, idle_signout_s=0, clock=clock), api, clock


async def settle(pilot: Pilot[Any]) -> None:
    # A blinking cursor is drawn in whatever phase the clock left it (an Input under
    # a dialog keeps its focus and last phase): a steady cursor makes snapshots exact.
    for screen in pilot.app.screen_stack:
        for field in screen.query(Input):
            field.cursor_blink = False
    await pilot.pause(0.1)
    await pilot.wait_for_scheduled_animations()
    await pilot.pause()


@pytest.mark.parametrize("size", SIZES + NARROW)
def test_signin(snap_compare, size) -> None:
    app, _api, _clock = make()

    async def before(pilot: Pilot[Any]) -> None:
        await ready(pilot)
        await pilot.press("1")
        await settle(pilot)

    assert snap_compare(app, terminal_size=size, run_before=before)


async def _sale_in_progress(pilot: Pilot[Any], api: DemoAgent) -> None:
    await ready(pilot)
    await sign_in(pilot)
    screen = pilot.app.screen
    await pilot.press(*"3*2.50", "enter", *"45.50", "enter")
    api.tap("code:4006381333931", source="hid")
    await wait_for(pilot, lambda: screen.pending_sku is not None)
    await pilot.press(*"1.99", "enter")
    api.tap("pan:9f2c1e0b7a6d5c4b3a291807f6e5d4c3", source="pcsc", masked="411111******1111")
    await wait_for(pilot, lambda: screen.quote is not None and screen.quote.get("member")
                   and len(screen.lines) == 3)
    await settle(pilot)


@pytest.mark.parametrize("size", SIZES + NARROW)
def test_sale(snap_compare, size) -> None:
    app, api, _clock = make()

    async def before(pilot: Pilot[Any]) -> None:
        await _sale_in_progress(pilot, api)

    assert snap_compare(app, terminal_size=size, run_before=before)


@pytest.mark.parametrize("size", SIZES + NARROW)
def test_sale_offline_persian(snap_compare, size) -> None:
    app, api, _clock = make("fa")

    async def before(pilot: Pilot[Any]) -> None:
        # The link goes down once the UI follows the agent's events (a change before
        # it subscribed would show at its next status refresh, up to 30 s later).
        await ready(pilot)
        api.set_online(False)
        await wait_for(pilot, lambda: not pilot.app.agent_status.online)
        await _sale_in_progress(pilot, api)

    assert snap_compare(app, terminal_size=size, run_before=before)


@pytest.mark.parametrize("size", SIZES)
def test_points_dialog(snap_compare, size) -> None:
    app, api, _clock = make()

    async def before(pilot: Pilot[Any]) -> None:
        await _sale_in_progress(pilot, api)
        await pilot.press("ctrl+p")
        await settle(pilot)

    assert snap_compare(app, terminal_size=size, run_before=before)


@pytest.mark.parametrize("size", SIZES)
def test_receipt(snap_compare, size, monkeypatch) -> None:
    # The receipt shows the sale id's short form: the store's event ids are pinned here.
    import importlib
    import itertools
    import uuid

    counter = itertools.count(1)
    monkeypatch.setattr(importlib.import_module("agent.offline_queue.uuid7"), "uuid7",
                        lambda unix_ms=None: uuid.UUID(int=0x0193A5E2_0000_7000_8000_00000A533000
                                                       + next(counter)))
    app, api, _clock = make()

    async def before(pilot: Pilot[Any]) -> None:
        await _sale_in_progress(pilot, api)
        await pilot.press("f8")
        await wait_for(pilot, lambda: type(pilot.app.screen).__name__ == "PaymentDialog")
        await pilot.press("1", "enter")
        await wait_for(pilot, lambda: type(pilot.app.screen).__name__ == "ReceiptDialog")
        await settle(pilot)

    assert snap_compare(app, terminal_size=size, run_before=before)


@pytest.mark.parametrize("size", SIZES + NARROW)
def test_clock(snap_compare, size) -> None:
    app, api, clock = make()

    async def before(pilot: Pilot[Any]) -> None:
        await api.call("staff.clock", {"staff_id": "4", "pin": "2468", "action": "in"})
        clock.advance(3600)
        await api.call("staff.clock", {"staff_id": "2", "pin": "4321", "action": "in"})
        await ready(pilot)
        await sign_in(pilot)
        await pilot.press("f3")
        await wait_for(pilot, lambda: type(pilot.app.screen).__name__ == "ClockScreen")
        api.tap("nfc:04AA000001")
        await wait_for(pilot, lambda: "clocked in" in str(
            pilot.app.screen.query_one("#message").content))
        await wait_for(pilot, lambda: pilot.app.screen.query_one("#attendance").row_count == 3)
        await settle(pilot)

    assert snap_compare(app, terminal_size=size, run_before=before)


@pytest.mark.parametrize("size", SIZES)
def test_cash(snap_compare, size) -> None:
    app, api, _clock = make()

    async def before(pilot: Pilot[Any]) -> None:
        session = (await api.call("staff.login", {"staff_id": "2", "pin": "4321"}))["session"]
        await api.call("cash_receipt.add", {"amount": 20000, "category": "float",
                                            "note": "morning float", "session": session})
        await api.call("expense.add", {"amount": 1250, "category": "cleaning",
                                       "note": "mop", "session": session})
        await ready(pilot)
        await sign_in(pilot)
        await pilot.press("f4")
        await wait_for(pilot, lambda: type(pilot.app.screen).__name__ == "CashScreen"
                       and pilot.app.screen.query_one("#cash-table").row_count == 2)
        await pilot.press(*"4.80", "enter", *"milk")
        await settle(pilot)

    assert snap_compare(app, terminal_size=size, run_before=before)


@pytest.mark.parametrize("size", SIZES)
def test_appointments(snap_compare, size) -> None:
    app, api, _clock = make()

    async def before(pilot: Pilot[Any]) -> None:
        session = (await api.call("staff.login", {"staff_id": "1", "pin": "1234"}))["session"]
        for staff, start, customer, service in (
            ("1", "10:00", {"customer": "m-1"}, "haircut"),
            ("1", "11:30", {"phone": "0930 111 2222"}, "colour"),
            ("4", "10:30", {"customer": "m-2"}, "beard trim"),
        ):
            await api.call("appointment.create", {
                **customer, "service": service, "staff_id": staff, "minutes": 45,
                "start": f"2026-11-22T{start}:00+01:00", "session": session})
        await ready(pilot)
        await sign_in(pilot)
        await pilot.press("f5")
        await wait_for(pilot, lambda: type(pilot.app.screen).__name__ == "AppointmentsScreen"
                       and len(pilot.app.screen.appointments) == 3)
        screen = pilot.app.screen
        screen.query_one("#appt-time", Input).value = "10:15"
        screen.query_one("#appt-customer", Input).value = "0912 000 1111"
        screen.query_one("#appt-service", Input).value = "haircut"
        await pilot.press("f8")
        await wait_for(pilot, lambda: "already booked" in str(screen.query_one("#message").content))
        await settle(pilot)

    assert snap_compare(app, terminal_size=size, run_before=before)


@pytest.mark.parametrize("size", SIZES)
def test_members(snap_compare, size) -> None:
    app, api, _clock = make()

    async def before(pilot: Pilot[Any]) -> None:
        await ready(pilot)
        await sign_in(pilot)
        await pilot.press("f6")
        await wait_for(pilot, lambda: type(pilot.app.screen).__name__ == "MembersScreen")
        screen = pilot.app.screen
        await pilot.press(*"Dana P.", "enter", *"0912 777 0000", "enter", *"CLUB-1001", "enter")
        await wait_for(pilot, lambda: screen.referrer_id is not None)
        api.tap("nfc:04EEEEEEEEEEEE")
        await wait_for(pilot, lambda: screen.card_token is not None)
        await settle(pilot)

    assert snap_compare(app, terminal_size=size, run_before=before)


@pytest.mark.parametrize("size", SIZES + NARROW)
def test_report_manager(snap_compare, size) -> None:
    app, api, _clock = make()

    async def before(pilot: Pilot[Any]) -> None:
        cashier = (await api.call("staff.login", {"staff_id": "1", "pin": "1234"}))["session"]
        manager = (await api.call("staff.login", {"staff_id": "2", "pin": "4321"}))["session"]
        for session, amount, token, points in ((cashier, 5300, "code:CLUB-1001", 500),
                                               (cashier, 1200, None, None),
                                               (manager, 8000, "code:CLUB-1002", None)):
            params: dict[str, Any] = {"amount": amount}
            if token:
                params["token"] = token
            if points:
                params["redeem_points"] = points
            quote = await api.call("sale.quote", params)
            await api.call("sale.commit", {"quote_id": quote["quote_id"], "payment": "cash",
                                           "session": session})
        await api.call("expense.add", {"amount": 1250, "category": "cleaning",
                                       "session": manager})
        await api.call("staff.clock", {"staff_id": "1", "pin": "1234", "action": "in"})
        await ready(pilot)
        await sign_in(pilot, "2", "4321")
        await pilot.press("f7")
        await wait_for(pilot, lambda: type(pilot.app.screen).__name__ == "ReportScreen"
                       and pilot.app.screen.summary is not None)
        await settle(pilot)

    assert snap_compare(app, terminal_size=size, run_before=before)
