"""Every staff screen at 60×20 against the real agent (#15 item 12).

The UI runs on a real Store/Services/ApiServer in-process
(``tests.agent.localapi.harness``) on the harness's pinned clock; event ids are
made deterministic so receipt numbers are stable. Regenerate after an intended
change with ``--snapshot-update`` and look at the SVGs before committing them.
"""

from __future__ import annotations

import itertools
import sys
import uuid
from typing import Any

import pytest
from pytest_textual_snapshot import SVGImageExtension
from textual.widgets import Input

from agent.tui.i18n import load_locale, set_locale
from tests.agent.localapi.harness import Harness

from .conftest import wait_for
from .test_real_agent_till import till

NARROW = (60, 20)


@pytest.fixture(autouse=True)
def _stable_ids(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Event and appointment ids from a counter (receipt numbers are their tail)."""
    import agent.offline_queue  # noqa: F401  (loads its modules)

    counter = itertools.count(1)

    def next_id() -> str:
        return str(uuid.UUID(int=(0x019AB3C4_0000_7000_8000_000000000000
                                  + 0x1111 * next(counter))))

    for name, module in list(sys.modules.items()):
        if name.startswith("agent.offline_queue") and hasattr(module, "uuid7_str"):
            monkeypatch.setattr(module, "uuid7_str", next_id)
    yield
    set_locale(load_locale("en"))


async def settle_and_compare(snapshot: Any, pilot: Any) -> bool:
    """As pytest-textual-snapshot's snap_compare, on an app already running."""
    app = pilot.app
    for screen in app.screen_stack:
        for field in screen.query(Input):
            field.cursor_blink = False
    await pilot.pause(0.1)
    await pilot.wait_for_scheduled_animations()
    await pilot.pause()
    svg = app.export_screenshot(title=app.title)
    return bool(snapshot.use_extension(SVGImageExtension) == svg)


async def _member_sale(h: Harness, app: Any, pilot: Any) -> Any:
    """50.50 and a 3.00 item, Sara K. (gold) by phone: a discount and TO PAY."""
    screen = app.screen
    await pilot.press(*"50.50", "enter", *"3", "enter")
    await pilot.press("tab", *"0912 123 4567", "enter")
    await wait_for(pilot, lambda: screen.quote is not None
                   and (screen.quote.get("member") or {}).get("name") == "Sara K."
                   and screen.quote["gross"] == 5350, timeout=10)
    return screen


async def _record_sale(h: Harness, app: Any, pilot: Any) -> None:
    await _member_sale(h, app, pilot)
    await pilot.press("f8")
    await wait_for(pilot, lambda: type(app.screen).__name__ == "PaymentDialog")
    await pilot.press("1", "enter")
    await wait_for(pilot, lambda: type(app.screen).__name__ == "ReceiptDialog", timeout=10)
    await pilot.press("enter")
    await wait_for(pilot, lambda: type(app.screen).__name__ == "SaleScreen")


@pytest.mark.parametrize("locale", ["en", "fa"])
async def test_sale_member_discounts_to_pay(snapshot, locale) -> None:
    async with till(size=NARROW, locale=locale) as (h, app, pilot):
        await _member_sale(h, app, pilot)
        assert await settle_and_compare(snapshot, pilot)


async def test_recent_sales(snapshot) -> None:
    async with till(size=NARROW) as (h, app, pilot):
        await _record_sale(h, app, pilot)
        await pilot.press("f9")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "RecentSalesDialog"
                       and app.screen.sales, timeout=10)
        assert await settle_and_compare(snapshot, pilot)


async def test_clock(snapshot) -> None:
    async with till(size=NARROW) as (h, app, pilot):
        await h.client().call("staff.clock", {"staff_id": "mg", "pin": "9999",
                                              "action": "in"})
        await pilot.press("f3")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "ClockScreen")
        await pilot.press(*"c1", "f8", *"1234", "enter")
        await wait_for(pilot, lambda: "clocked in" in str(
            app.screen.query_one("#message").content), timeout=10)
        await wait_for(pilot, lambda: app.screen.query_one("#attendance").row_count >= 2)
        assert await settle_and_compare(snapshot, pilot)


async def test_cash(snapshot) -> None:
    async with till("mg", "9999", size=NARROW) as (h, app, pilot):
        session = await h.login("mg", "9999")
        await h.client().call("cash_receipt.add", {"amount": 20000, "category": "float",
                                                   "note": "morning float",
                                                   "session": session})
        await h.client().call("expense.add", {"amount": 1250, "category": "cleaning",
                                              "note": "mop", "session": session})
        await pilot.press("f4")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "CashScreen"
                       and app.screen.query_one("#cash-table").row_count == 2, timeout=10)
        await pilot.press(*"4.80", "enter", *"milk")
        assert await settle_and_compare(snapshot, pilot)


async def test_diary(snapshot) -> None:
    async with till(size=NARROW) as (h, app, pilot):
        session = await h.login("mg", "9999")
        client = h.client()
        for staff, start, customer in (("c1", "11:00", {"phone": "0912 123 4567"}),
                                       ("mg", "10:30", {"phone": "0930 111 2222",
                                                        "customer_name": "Ali R."}),
                                       ("c1", "12:00", {"customer": "m-1"})):
            await client.call("appointment.create", {
                **customer, "service": "haircut", "staff_id": staff, "minutes": 45,
                "start": f"2026-11-25T{start}:00+01:00", "session": session})
        await pilot.press("f5")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "AppointmentsScreen"
                       and len(app.screen.appointments) == 3, timeout=10)
        await pilot.press(*"14:00", "tab", "tab", "tab", *"club-1002")
        assert await settle_and_compare(snapshot, pilot)


async def test_members(snapshot) -> None:
    async with till(size=NARROW) as (_h, app, pilot):
        await pilot.press("f6")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "MembersScreen")
        await pilot.press(*"Dana P.", "enter", *"0912 777 0000", "enter")
        assert await settle_and_compare(snapshot, pilot)


async def test_report(snapshot) -> None:
    async with till("mg", "9999", size=NARROW) as (h, app, pilot):
        await _record_sale(h, app, pilot)
        await h.client().call("staff.clock", {"staff_id": "c1", "pin": "1234",
                                              "action": "in"})
        await pilot.press("f7")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "ReportScreen"
                       and app.screen.summary is not None, timeout=10)
        assert await settle_and_compare(snapshot, pilot)
