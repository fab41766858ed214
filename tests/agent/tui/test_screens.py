"""Pilot tests: each screen's main path and its error paths, on the demo agent (the real one)."""

from __future__ import annotations

from typing import Any

from textual.widgets import DataTable, Input, Static

from agent.localapi.demo import DemoAgent
from agent.tui.screens.appointments import AppointmentsScreen
from agent.tui.screens.cash import CashScreen
from agent.tui.screens.clock import ClockScreen
from agent.tui.screens.members import MembersScreen
from agent.tui.screens.report import ReportScreen
from agent.tui.screens.sale import SaleScreen
from agent.tui.screens.sale_dialogs import PaymentDialog, PointsDialog, ReceiptDialog
from agent.tui.screens.signin import SignInScreen

from .conftest import message_text, ready, sign_in, wait_for


def static_text(app: Any, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).content)


# ------------------------------------------------------------------- sign-in


async def test_sign_in_with_pin_shows_the_cashier_screens(make_app, api) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await sign_in(pilot)
        assert isinstance(app.screen, SaleScreen)
        assert app.staff.role == "cashier"
        assert [mode for _k, mode, _l in app.nav_items()] == [
            "sale", "clock", "cash", "appointments", "members", "report"]


async def test_wrong_pin_is_refused_and_pin_cleared(make_app) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("1", "enter", "0", "0", "0", "0", "enter")
        await wait_for(pilot, lambda: "The staff id or PIN is not right" in message_text(app))
        assert isinstance(app.screen, SignInScreen)
        assert app.screen.query_one("#pin", Input).value == ""
        assert app.staff is None


async def test_empty_sign_in_asks_for_number_and_pin(make_app) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("enter", "enter")
        assert "staff number and PIN" in message_text(app)


async def test_badge_tap_signs_in_and_technician_sees_only_clock(make_app, api) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        api.tap("nfc:04AA000003")
        await wait_for(pilot, lambda: isinstance(app.screen, ClockScreen))
        assert app.staff.role == "technician"
        await pilot.press("f2")  # the sale screen is not for technicians
        await pilot.pause()
        assert isinstance(app.screen, ClockScreen)


async def test_unknown_badge_is_refused(make_app, api) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        api.tap("nfc:DEADBEEF")
        await wait_for(pilot, lambda: "does not belong" in message_text(app))
        assert app.staff is None


async def test_idle_sign_out(api, clock) -> None:
    from agent.tui.app import ClubtermApp

    app = ClubtermApp(api, idle_signout_s=1.0, clock=clock)
    signed_in = []
    app.watch(app, "staff", lambda staff: signed_in.append(staff), init=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("1", "enter", *"1234", "enter")
        await wait_for(pilot, lambda: any(signed_in))
        await wait_for(pilot, lambda: app.staff is None and isinstance(app.screen, SignInScreen)
                       and "no activity" in message_text(app), timeout=5)


async def test_sign_out_key_drops_the_session_screens(make_app) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await sign_in(pilot)
        await pilot.press("3", "0", "enter")  # a basket in progress
        await pilot.press("f10")
        await wait_for(pilot, lambda: isinstance(app.screen, SignInScreen))
        await sign_in(pilot, "2", "4321")
        assert isinstance(app.screen, SaleScreen)
        assert app.screen.lines == ()  # the previous cashier's basket is gone


async def test_session_ended_by_the_agent_signs_out(make_app, api) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await sign_in(pilot)
        await pilot.press("f4")
        await wait_for(pilot, lambda: isinstance(app.screen, CashScreen))
        api.expire_sessions()
        await pilot.press(*"5", "enter", *"tea", "f8")
        await wait_for(pilot, lambda: isinstance(app.screen, SignInScreen))
        assert app.staff is None
        assert "sign in again" in message_text(app)


async def test_code_lookup_gives_the_quote_its_token(make_app, api) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await sign_in(pilot)
        screen = app.screen
        await pilot.press(*"10", "enter", "tab", *"CLUB-1002", "enter")
        await wait_for(pilot, lambda: screen.quote and screen.quote.get("member"))
        assert screen.member_token == "code:CLUB-1002"


# ----------------------------------------------------------------------- sale


async def test_sale_with_member_points_and_receipt(make_app, api) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await sign_in(pilot)
        screen = app.screen
        await pilot.press(*"3*2.50", "enter", *"45.50", "enter")
        api.tap("nfc:04A1B2C3D4E5F6")
        await wait_for(pilot, lambda: screen.member is not None and screen.quote is not None
                       and screen.quote.get("member"))
        assert screen.quote["gross"] == 5300
        assert screen.quote["discounts"] == [{"rule": "gold10", "amount": 530}]
        quote_text = str(screen.query_one("#quote-panel", Static).content.__class__)
        assert quote_text  # the panel is drawn from the quote
        # The limits are shown before asking.
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: isinstance(app.screen, PointsDialog))
        assert app.screen.limits["max"] == 1200
        await pilot.press(*"500", "enter")
        await wait_for(pilot, lambda: screen.quote is not None
                       and screen.quote["redeemed_points"] == 500)
        assert screen.quote["payable"] == 5300 - 530 - 500
        await pilot.press("f8")
        await wait_for(pilot, lambda: isinstance(app.screen, PaymentDialog))
        await pilot.press("2", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ReceiptDialog))
        receipt = app.screen.receipt
        assert receipt["payable"] == 4270 and receipt["payment"] == "card"
        assert receipt["member"]["name"] == "Sara K."
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, SaleScreen))
        assert screen.lines == () and screen.member is None
    [sale] = api.recorded("sale")
    assert sale["redeemed_points"] == 500 and sale["staff_id"] == "1"


async def test_sale_member_by_phone_and_scanned_products(make_app, api) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await sign_in(pilot)
        screen = app.screen
        api.tap("code:4006381333931", source="hid")  # a product: asks for its price
        await wait_for(pilot, lambda: screen.pending_sku == "4006381333931")
        await pilot.press(*"1.99", "enter")
        api.tap("code:4006381333931", source="hid")  # again: same price, qty 2
        await wait_for(pilot, lambda: screen.lines and screen.lines[0].qty == 2)
        await pilot.press("tab", *"0912 123 4567", "enter")
        await wait_for(pilot, lambda: screen.member is not None)
        assert screen.member_token == "tel:+989121234567"
        await wait_for(pilot, lambda: screen.quote and screen.quote.get("member"))
        assert screen.quote["gross"] == 398


async def test_sale_errors_unknown_and_blocked_member_and_bad_amount(make_app, api) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await sign_in(pilot)
        screen = app.screen
        await pilot.press(*"abc", "enter")
        assert "Not an amount" in message_text(app)
        api.tap("nfc:FFFFFFFF")
        await wait_for(pilot, lambda: "No member found" in message_text(app))
        api.tap("code:CLUB-1003")
        await wait_for(pilot, lambda: "blocked" in message_text(app))
        assert screen.member is None
        await pilot.press("ctrl+p")
        assert "Identify a member first" in message_text(app)
        await pilot.press("f8")
        assert "Add an amount" in message_text(app)


async def test_sale_offline_is_visible_but_does_not_block(make_app, api) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await sign_in(pilot)
        screen = app.screen
        api.set_online(False)
        await wait_for(pilot, lambda: not app.agent_status.online)
        assert screen.query_one("#offline-banner").display
        await pilot.press(*"10", "enter")
        await wait_for(pilot, lambda: screen.quote is not None)
        await pilot.press("f8")
        await wait_for(pilot, lambda: isinstance(app.screen, PaymentDialog))
        await pilot.press("1", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ReceiptDialog))
        assert app.screen.receipt["offline"] is True
    assert api.recorded("sale")[0]["offline"] is True


async def test_sale_expired_quote_is_priced_again(make_app, api, clock) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await sign_in(pilot)
        screen = app.screen
        await pilot.press(*"20", "enter")
        await wait_for(pilot, lambda: screen.quote is not None)
        first = screen.quote["quote_id"]
        clock.advance(121)
        await pilot.press("f8", "1", "enter")
        await wait_for(pilot, lambda: "checked again" in message_text(app))
        await wait_for(pilot, lambda: screen.quote is not None
                       and screen.quote["quote_id"] != first)
        assert api.recorded("sale") == []
        assert screen.lines  # the basket is kept


async def test_sale_storage_failure_keeps_the_basket(make_app, api) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await sign_in(pilot)
        screen = app.screen
        await pilot.press(*"20", "enter")
        await wait_for(pilot, lambda: screen.quote is not None)
        api.store.db.before_write.fail_appends = True  # type: ignore[union-attr]
        await pilot.press("f8", "1", "enter")
        await wait_for(pilot, lambda: "nothing was recorded" in message_text(app))
        assert screen.lines and not isinstance(app.screen, ReceiptDialog)


async def test_sale_points_over_limit_is_refused_in_the_dialog(make_app, api) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await sign_in(pilot)
        screen = app.screen
        await pilot.press(*"10", "enter")
        api.tap("code:CLUB-1001")
        await wait_for(pilot, lambda: screen.quote and screen.quote.get("member"))
        # 50 % of 9.00 net = 450 points at most.
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: isinstance(app.screen, PointsDialog))
        await pilot.press(*"900", "enter")
        assert "Between" in str(app.screen.query_one("#points-error", Static).content)
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, SaleScreen))
        assert screen.redeem_points is None


async def test_sale_limit_error_from_agent_drops_the_redemption(make_app, api) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await sign_in(pilot)
        screen = app.screen
        await pilot.press(*"10", "enter")
        api.tap("code:CLUB-1001")
        await wait_for(pilot, lambda: screen.quote and screen.quote.get("member"))
        screen.redeem_points = 50  # under min_redeem: the agent answers `limit`
        screen._changed()
        await wait_for(pilot, lambda: "At least 100 points" in message_text(app))
        await wait_for(pilot, lambda: screen.quote is not None)
        assert screen.redeem_points is None and screen.quote["redeemed_points"] == 0


async def test_sale_credit_toggle_and_remove_line(make_app, api) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await sign_in(pilot)
        screen = app.screen
        await pilot.press(*"30", "enter", *"5", "enter")
        api.tap("code:CLUB-1001")
        await wait_for(pilot, lambda: screen.quote and screen.quote.get("member"))
        await pilot.press("ctrl+o")
        await wait_for(pilot, lambda: screen.quote and screen.quote["credits_used"])
        assert screen.quote["payable"] == 0  # 35.00 − 10 % = 31.50, covered by credit
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: len(screen.lines) == 1)


# ---------------------------------------------------------------------- clock


async def test_clock_in_and_out_by_badge_and_number(make_app, api) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await sign_in(pilot)
        await pilot.press("f3")
        await wait_for(pilot, lambda: isinstance(app.screen, ClockScreen))
        screen = app.screen
        api.tap("nfc:04AA000004")  # Leila clocks in
        await wait_for(pilot, lambda: "clocked in" in message_text(app))
        await wait_for(pilot, lambda: "Leila" in static_text(app, "#present"))
        api.tap("nfc:04AA000004")  # the same badge again: out
        await wait_for(pilot, lambda: "clocked out" in message_text(app))
        await pilot.press("1", "f8")  # a staff number alone clocks nobody (#15 item 9)
        await wait_for(pilot, lambda: "Enter the PIN" in message_text(app))
        await pilot.press(*"1234", "f8")
        await wait_for(pilot, lambda: "Mina Rahimi clocked in" in message_text(app))
        await wait_for(pilot, lambda: screen.query_one("#attendance", DataTable).row_count == 2)
    assert [e["action"] for e in api.recorded("attendance")] == ["in", "out", "in"]


async def test_clock_errors(make_app, api) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await sign_in(pilot)
        await pilot.press("f3")
        await wait_for(pilot, lambda: isinstance(app.screen, ClockScreen))
        await pilot.press("f9")
        assert "Type a staff number" in message_text(app)
        await pilot.press("1", "enter", *"1234", "f9")
        await wait_for(pilot, lambda: "is not clocked in" in message_text(app))
        await pilot.press("shift+tab", "ctrl+a", "9", "9", "enter", *"1234", "f8")
        # The agent does not say which staff numbers exist.
        await wait_for(pilot, lambda: "The staff id or PIN is not right" in message_text(app))


# ----------------------------------------------------------------------- cash


async def test_cash_expense_and_receipt_totals(make_app, api) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await sign_in(pilot)
        await pilot.press("f4")
        await wait_for(pilot, lambda: isinstance(app.screen, CashScreen))
        await pilot.press(*"12.50", "enter", *"cleaning", "enter", *"mop", "f8")
        await wait_for(pilot, lambda: "Expense saved" in message_text(app))
        await pilot.press(*"100", "enter", *"float", "f9")
        await wait_for(pilot, lambda: "Cash receipt saved" in message_text(app))
        await wait_for(pilot, lambda: "Net €87.50" in static_text(app, "#cash-totals"))
        assert "Income €100.00" in static_text(app, "#cash-totals")
        assert app.screen.query_one("#cash-table", DataTable).row_count == 2


async def test_cash_errors(make_app, api) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await sign_in(pilot)
        await pilot.press("f4")
        await wait_for(pilot, lambda: isinstance(app.screen, CashScreen))
        await pilot.press("f8")
        assert "Type the amount" in message_text(app)
        await pilot.press(*"5", "f8")
        assert "Type a category" in message_text(app)
        api.store.db.before_write.fail_appends = True  # type: ignore[union-attr]
        await pilot.press(*"tea", "f8")
        await wait_for(pilot, lambda: "nothing was recorded" in message_text(app))
    assert api.recorded("expense") == []


# --------------------------------------------------------------- appointments


async def book(pilot, time: str, customer: str, service: str = "haircut",
               staff: str | None = None) -> None:
    screen = pilot.app.screen
    screen.query_one("#appt-time", Input).value = time
    screen.query_one("#appt-customer", Input).value = customer
    screen.query_one("#appt-service", Input).value = service
    if staff is not None:
        screen.query_one("#appt-staff", Input).value = staff
    await pilot.press("f8")


async def test_appointments_create_move_cancel_and_overlap(make_app, api) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await sign_in(pilot)
        await pilot.press("f5")
        await wait_for(pilot, lambda: isinstance(app.screen, AppointmentsScreen))
        screen = app.screen
        await book(pilot, "10:00", "0912 123 4567")  # Sara, a member, by phone
        await wait_for(pilot, lambda: len(screen.appointments) == 1)
        assert screen.appointments[0]["customer"] == "m-1"
        await book(pilot, "10:15", "0930 000 0000")  # overlaps Mina's 10:00–10:30
        await wait_for(pilot, lambda: "already booked 10:00–10:30" in message_text(app))
        assert len(screen.appointments) == 1
        await book(pilot, "11:00", "0930 000 0000", service="colour")
        await wait_for(pilot, lambda: len(screen.appointments) == 2)
        assert screen.appointments[1]["customer"] == "tel:+989300000000"
        # Move the 10:00 one to 11:15: overlaps the 11:00 one; then to 12:00.
        screen.query_one("#diary", DataTable).move_cursor(row=0)
        screen.query_one("#appt-time", Input).value = "11:15"
        await pilot.press("f9")
        await wait_for(pilot, lambda: "already booked" in message_text(app))
        screen.query_one("#appt-time", Input).value = "12:00"
        await pilot.press("f9")
        await wait_for(pilot, lambda: "Moved" in message_text(app))
        await wait_for(pilot, lambda: screen.appointments[-1]["start"].startswith(
            "2026-11-22T12:00"))
        screen.query_one("#diary", DataTable).move_cursor(row=0)
        await pilot.press("ctrl+o")                 # asks first (#15 item 13)
        await wait_for(pilot, lambda: type(app.screen).__name__ == "ConfirmDialog")
        await pilot.press("enter")
        await wait_for(pilot, lambda: len(screen.appointments) == 1)
    actions = [e["action"] for e in api.recorded("appointment")]
    assert actions == ["create", "create", "update", "cancel"]


async def test_appointments_customer_by_card_and_errors(make_app, api) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await sign_in(pilot)
        await pilot.press("f5")
        await wait_for(pilot, lambda: isinstance(app.screen, AppointmentsScreen))
        screen = app.screen
        await pilot.press("f8")
        assert "Type the time" in message_text(app)
        await pilot.press("f9")
        assert "Pick an appointment" in message_text(app)
        api.tap("nfc:04B0B0B0B0B0B0")  # Ali
        await wait_for(pilot, lambda: screen.customer_member == "m-2")
        screen.query_one("#appt-time", Input).value = "9:30"
        screen.query_one("#appt-service", Input).value = "beard"
        await pilot.press("f8")                     # 9:30 has passed: asks (#15 item 13)
        await wait_for(pilot, lambda: type(app.screen).__name__ == "ConfirmDialog")
        await pilot.press("enter")
        await wait_for(pilot, lambda: len(screen.appointments) == 1)
        assert screen.appointments[0]["customer_name"] == "Ali R."
        await pilot.press("pagedown")
        await wait_for(pilot, lambda: screen.appointments == [])


# -------------------------------------------------------------------- members


async def test_enrol_member_with_card_and_referrer(make_app, api) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await sign_in(pilot)
        await pilot.press("f6")
        await wait_for(pilot, lambda: isinstance(app.screen, MembersScreen))
        screen = app.screen
        await pilot.press(*"Dana P.", "enter", *"09127770000", "enter", *"CLUB-1002", "enter")
        await wait_for(pilot, lambda: screen.referrer_id == "m-2")
        api.tap("nfc:04EEEEEEEEEEEE")
        await wait_for(pilot, lambda: screen.card_token == "nfc:04EEEEEEEEEEEE")
        await pilot.press("f8")
        await wait_for(pilot, lambda: "is enrolled" in message_text(app))
    [enrol] = api.recorded("member_enrol")
    assert enrol["identifiers"] == ["tel:+989127770000", "nfc:04EEEEEEEEEEEE"]
    assert enrol["referred_by"] == "m-2" and enrol["member_id"].startswith("local:")


async def test_enrol_errors(make_app, api) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await sign_in(pilot)
        await pilot.press("f6")
        await wait_for(pilot, lambda: isinstance(app.screen, MembersScreen))
        await pilot.press("f8")
        assert "name" in message_text(app)
        await pilot.press(*"Sara again", "enter", "f8")
        assert "phone" in message_text(app)
        await pilot.press(*"0912 123 4567", "f8")
        await wait_for(pilot, lambda: "already belongs to Sara K." in message_text(app))
        api.tap("nfc:04A1B2C3D4E5F6")  # Sara's card
        await wait_for(pilot, lambda: "already belongs" in message_text(app))
        await pilot.press("tab", *"CLUB-9999", "enter")
        await wait_for(pilot, lambda: "No member is registered with this card or number"
                       in message_text(app))
    assert api.recorded("member_enrol") == []


# --------------------------------------------------------------------- report


async def _sell(api: DemoAgent, session: str, amount: int, token: str | None = None) -> None:
    params: dict[str, Any] = {"amount": amount}
    if token:
        params["token"] = token
    quote = await api.call("sale.quote", params)
    await api.call("sale.commit", {"quote_id": quote["quote_id"], "payment": "cash",
                                   "session": session})


async def test_report_manager_sees_per_staff(make_app, api) -> None:
    cashier = (await api.call("staff.login", {"staff_id": "1", "pin": "1234"}))["session"]
    manager = (await api.call("staff.login", {"staff_id": "2", "pin": "4321"}))["session"]
    await _sell(api, cashier, 1000, "code:CLUB-1001")
    await _sell(api, manager, 2000)
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        await ready(pilot)
        await sign_in(pilot, "2", "4321")
        await pilot.press("f7")
        await wait_for(pilot, lambda: isinstance(app.screen, ReportScreen)
                       and app.screen.summary is not None)
        table = app.screen.query_one("#per-staff", DataTable)
        assert table.display and table.row_count == 2
        assert app.screen.summary["sales"]["payable"] == 900 + 2000


async def test_report_cashier_does_not_see_per_staff(make_app, api) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await sign_in(pilot)
        await pilot.press("f7")
        await wait_for(pilot, lambda: isinstance(app.screen, ReportScreen)
                       and app.screen.summary is not None)
        assert not app.screen.query_one("#per-staff", DataTable).display
        assert app.screen.summary["per_staff"] is None


# ----------------------------------------------------------------- status bar


async def test_status_bar_follows_agent_events(make_app, api) -> None:
    # The agent's events are the truth it reports in agent.status too (a link event
    # makes the UI ask for the whole status again), so each event here is one the
    # real agent would send for a real change.
    import dataclasses

    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await sign_in(pilot)
        bar = app.screen.query_one("StatusBar", Static)
        assert "Online since 10:00" in str(bar.content)
        api.set_reader("MSR", "error")
        await wait_for(pilot, lambda: "MSR: error" in str(bar.content))
        api.bundle = dataclasses.replace(api.bundle, version=43)   # the club sent v43
        api.push_event({"type": "rules", "version": 43, "problem": None})
        # "Rules v43", or "v43" when the line is short (the name stays: #15, 60x20).
        await wait_for(pilot, lambda: "v43" in str(bar.content))
        api.set_online(False)
        await wait_for(pilot, lambda: "OFFLINE since 10:00" in str(bar.content))
        # The link event made the UI ask for the whole status; let that answer land
        # first (an answer read before the sales below would say 0 waiting).
        await wait_for(pilot, lambda: not any(w.group == "status" and w.is_running
                                              for w in app.workers))
        for n in range(7):                                          # recorded offline
            api.store.outbox.append("expense", {"amount": 100 + n, "category": "misc",
                                                "note": None},
                                    at=api.clock(), staff_id="1", offline=True)
        api.push_event({"type": "queue", "pending": 7, "oldest_at": None, "rejected": 0})
        await wait_for(pilot, lambda: "Queue 7" in str(bar.content))
        await pilot.pause(0.3)     # a status refresh still on its way agrees with it
        assert "Queue 7" in str(bar.content) and "v43" in str(bar.content)


async def test_persian_ui_uses_persian_digits_and_jalali_dates(make_app, api) -> None:
    app = make_app(locale="fa")
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await sign_in(pilot)
        screen = app.screen
        screen.query_one("#entry", Input).value = "۱۲٫۵۰"  # typed on a Persian keyboard
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.quote is not None)
        assert screen.lines[0].unit_price == 1250
        await pilot.press("f7")
        await wait_for(pilot, lambda: isinstance(app.screen, ReportScreen)
                       and app.screen.summary is not None)
        title = static_text(app, "#report-title")
        # Drawn in visual order for terminals without bidi: آذر reads رذآ.
        assert "۱۴۰۵" in title and "رذآ" in title
