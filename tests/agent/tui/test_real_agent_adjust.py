"""Adjust a member's points or balance by hand on the Members screen (issue #19,
``balance.adjust``), against the real agent: points from a purchase amount shown
before confirming, points deducted, units granted, a refusal over the balance shown
in the dialog, a cashier refused, the day's report; 80x24 and 60x20, English and
Persian."""

from __future__ import annotations

import pytest
from textual.widgets import Input, Select, Static

from .conftest import message_text, wait_for
from .test_real_agent_till import till
from .test_till_real_agent import _text


def _adjusts(h: object) -> list[dict[str, object]]:
    return [e for e in h.outbox() if e["type"] == "balance_adjust"]  # type: ignore[attr-defined]


async def _open_member(app: object, pilot: object, name: str = "Sara K") -> None:
    from agent.tui.screens.members import MembersScreen

    await pilot.press("f6")  # type: ignore[attr-defined]
    await wait_for(pilot, lambda: isinstance(app.screen, MembersScreen))  # type: ignore[arg-type, attr-defined]
    app.screen.query_one("#member-find", Input).focus()  # type: ignore[attr-defined]
    await pilot.press(*name, "enter")  # type: ignore[attr-defined]
    await wait_for(pilot, lambda: app.screen.profile is not None)  # type: ignore[arg-type, attr-defined]


async def _dialog(app: object, pilot: object) -> None:
    await pilot.press("ctrl+g")  # type: ignore[attr-defined]
    await wait_for(pilot, lambda: type(app.screen).__name__ == "AdjustDialog")  # type: ignore[arg-type, attr-defined]


@pytest.mark.parametrize(("size", "locale"), [((80, 24), "en"), ((60, 20), "en"),
                                              ((80, 24), "fa"), ((60, 20), "fa")])
async def test_a_manager_adds_points_from_an_amount_seeing_them_before_confirming(
        size: tuple[int, int], locale: str) -> None:
    async with till("mg", "9999", size=size, locale=locale) as (h, app, pilot):
        await _open_member(app, pilot)
        await _dialog(app, pilot)
        dialog = app.screen
        assert dialog.action == "from_amount"
        assert not dialog.query_one("#adj-kind-row").display
        dialog.query_one("#adj-amount", Input).focus()
        await pilot.press(*"123.45", "enter")                  # → reason (purchase not recorded)
        dialog.query_one("#adj-note", Input).focus()
        await pilot.press("enter")                             # no note: the club requires one
        assert "note" in _text(dialog.query_one("#adj-error", Static)).lower() or locale == "fa"
        assert _text(dialog.query_one("#adj-error", Static))
        await pilot.press(*"till was down", "enter")           # check: the preview
        await wait_for(pilot, lambda: "1,323" in _text(dialog.query_one("#adj-preview", Static))
                       or "۱٬۳۲۳" in _text(dialog.query_one("#adj-preview", Static)))
        preview = _text(dialog.query_one("#adj-preview", Static))
        assert ("123" in preview or "۱۲۳" in preview)
        assert _adjusts(h) == []                               # nothing recorded yet
        region = dialog.query_one(".dialog").region
        assert region.right <= size[0] and region.bottom <= size[1], region
        await pilot.press("enter")                             # confirm
        await wait_for(pilot, lambda: type(app.screen).__name__ == "MembersScreen")
        rows = _adjusts(h)
        assert [(r["kind"], r["amount"], r["basis_amount"], r["reason"], r["note"])
                for r in rows] == [("points", 123, 12345, "purchase_not_recorded",
                                    "till was down")]
        await wait_for(pilot, lambda: "1,323" in _text(
            app.screen.query_one("#member-profile", Static)) or "۱٬۳۲۳" in _text(
            app.screen.query_one("#member-profile", Static)))
        if locale == "en":
            assert "Recorded: +123 points" in message_text(app)


async def test_deduct_over_the_balance_is_refused_in_the_dialog_then_units_are_granted() -> None:
    async with till("mg", "9999") as (h, app, pilot):
        await _open_member(app, pilot)
        await _dialog(app, pilot)
        dialog = app.screen
        dialog.query_one("#adj-action", Select).value = "deduct_points"
        await pilot.pause()
        dialog.query_one("#adj-amount", Input).focus()
        await pilot.press(*"1500", "enter")
        dialog.query_one("#adj-reason", Select).value = "correction"
        dialog.query_one("#adj-note", Input).focus()
        await pilot.press(*"double entry", "enter")
        await wait_for(pilot, lambda: "does not have that much" in _text(
            dialog.query_one("#adj-error", Static)))
        assert "1,200" in _text(dialog.query_one("#adj-error", Static))
        assert _adjusts(h) == []
        dialog.query_one("#adj-action", Select).value = "grant"
        await pilot.pause()
        assert dialog.query_one("#adj-kind-row").display
        dialog.query_one("#adj-kind", Select).value = "units.wash"
        dialog.query_one("#adj-amount", Input).value = ""
        dialog.query_one("#adj-amount", Input).focus()
        await pilot.press(*"3", "enter")
        dialog.query_one("#adj-note", Input).focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: "→" in _text(dialog.query_one("#adj-preview", Static)))
        await pilot.press("enter")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "MembersScreen")
        assert [(r["kind"], r["amount"]) for r in _adjusts(h)] == [("units.wash", 3)]
        await wait_for(pilot, lambda: "wash" in _text(
            app.screen.query_one("#member-profile", Static)))


async def test_a_cashier_is_refused_clearly() -> None:
    async with till() as (h, app, pilot):
        await _open_member(app, pilot)
        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: "Only a manager can adjust" in message_text(app))
        assert type(app.screen).__name__ == "MembersScreen"
        assert _adjusts(h) == []


@pytest.mark.parametrize(("size", "locale"), [((80, 24), "en"), ((60, 20), "fa")])
async def test_the_report_shows_points_added_and_deducted_per_user(
        size: tuple[int, int], locale: str) -> None:
    from agent.tui.screens.report import ReportScreen

    async with till("mg", "9999", size=size, locale=locale) as (h, app, pilot):
        session = await h.login("mg", "9999")
        for amount in (50, -20):
            await h.client().call("balance.adjust", {
                "session": session, "member_id": "m-1", "kind": "points", "amount": amount,
                "reason": "goodwill", "note": "n"})
        await pilot.press("f7")
        await wait_for(pilot, lambda: isinstance(app.screen, ReportScreen)
                       and app.screen.summary is not None)
        text = _text(app.screen.query_one("#figures", Static))
        if locale == "en":
            assert "Points added by hand" in text and "Max" in text
            assert "+50 −20" in text
        else:
            assert "۵۰" in text and "۲۰" in text


async def test_a_credit_grant_over_the_limit_names_the_limit_in_money() -> None:
    """The club's limit on granting credit is minor units on the wire: the dialog says
    "at most €50.00", not "at most 5,000"."""
    async with till("mg", "9999") as (h, app, pilot):
        await _open_member(app, pilot)
        await _dialog(app, pilot)
        dialog = app.screen
        dialog.query_one("#adj-action", Select).value = "grant"
        await pilot.pause()
        dialog.query_one("#adj-kind", Select).value = "credit.club"
        dialog.query_one("#adj-amount", Input).focus()
        await pilot.press(*"60.00", "enter")
        dialog.query_one("#adj-note", Input).focus()
        await pilot.press(*"goodwill", "enter")
        await wait_for(pilot, lambda: "at most" in _text(dialog.query_one("#adj-error", Static)))
        assert "€50.00" in _text(dialog.query_one("#adj-error", Static))
        assert _adjusts(h) == []
