"""(1.3) Check-in in the UI against the real agent: a member taps their card, Ctrl+Y
lists the packages, Enter uses a visit (and a second Enter another), the result and
the refusal of a used-up package are shown in words — at 80x24 and 60x20, English and
Persian; keys typed faster than the answers never check in twice for one press."""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from agent.tui.app import ClubtermApp
from agent.tui.i18n import load_locale, set_locale
from agent.tui.screens.checkin_dialog import CheckInDialog
from agent.tui.screens.sale import SaleScreen
from tests.agent.localapi import harness
from tests.agent.localapi.test_packages_api import seed

from .conftest import wait_for


async def _check_in_dialog(pilot: Any, app: ClubtermApp, h: harness.Harness,
                           staff: str = "c1", pin: str = "1234") -> CheckInDialog:
    """Sign in, tap Sara's card on the sale screen, Ctrl+Y: the dialog, listed."""
    await wait_for(pilot, lambda: app.agent_status.known)
    await pilot.press(*staff, "enter", *pin, "enter")
    await wait_for(pilot, lambda: isinstance(app.screen, SaleScreen))
    screen = app.screen
    assert isinstance(screen, SaleScreen)
    h.server.broadcast({"type": "card", "source": "nfc", "reader": "sim",
                        "token": "nfc:04A1B2", "token_kind": "nfc",
                        "masked": None, "member": None})
    await wait_for(pilot, lambda: screen.member is not None, timeout=10)
    await pilot.press("ctrl+y")
    await wait_for(pilot, lambda: isinstance(app.screen, CheckInDialog))
    dialog = app.screen
    assert isinstance(dialog, CheckInDialog)
    await wait_for(pilot, lambda: bool(dialog.packages))
    return dialog


@pytest.mark.parametrize(("size", "locale"), [((80, 24), "en"), ((60, 20), "en"),
                                              ((80, 24), "fa"), ((60, 20), "fa")])
async def test_check_in_with_the_gym_pass(size: tuple[int, int], locale: str) -> None:
    with tempfile.TemporaryDirectory(prefix="cttui") as tmp:
        async with harness.Harness(Path(tmp)) as h:
            seed(h)
            app = ClubtermApp(h.client(), locale=locale, idle_signout_s=0, clock=lambda: h.now)
            try:
                async with app.run_test(size=size) as pilot:
                    dialog = await _check_in_dialog(pilot, app, h)
                    await pilot.press("enter")
                    await wait_for(pilot, lambda: len([e for e in h.outbox()
                                                       if e["type"] == "package_use"]) == 1,
                                   timeout=10)
                    await wait_for(pilot, lambda: dialog.packages[0].get("visits_left") == 6,
                                   timeout=10)
                    result = str(dialog.query_one("#checkin-result").content)
                    assert "6" in result or "۶" in result, result
                    print(f"figure: {size} {locale}: {result.strip()!r}")
                    await pilot.press("escape")
                    await wait_for(pilot, lambda: isinstance(app.screen, SaleScreen))
            finally:
                set_locale(load_locale("en"))
            uses = [e for e in h.outbox() if e["type"] == "package_use"]
            assert [(u["member_id"], u["package_id"]) for u in uses] == [("m-1", "pk-demo-gym")]


async def test_a_used_up_pass_is_refused_in_words() -> None:
    with tempfile.TemporaryDirectory(prefix="cttui") as tmp:
        async with harness.Harness(Path(tmp)) as h:
            seed(h)
            for _ in range(7):  # the other till used every visit
                await h.client().call("package.checkin", {"session": await h.login(),
                                                          "member_id": "m-1"})
            app = ClubtermApp(h.client(), locale="en", idle_signout_s=0, clock=lambda: h.now)
            async with app.run_test(size=(80, 24)) as pilot:
                dialog = await _check_in_dialog(pilot, app, h)
                await pilot.press("enter", "enter", "enter")
                await wait_for(pilot, lambda: "No visits are left" in str(
                    dialog.query_one("#checkin-result").content), timeout=10)
            uses = [e for e in h.outbox() if e["type"] == "package_use"]
            assert len(uses) == 7


@pytest.mark.parametrize("locale", ["en", "fa"])
async def test_a_manager_freezes_the_pass_from_the_check_in_dialog(locale: str) -> None:
    with tempfile.TemporaryDirectory(prefix="cttui") as tmp:
        async with harness.Harness(Path(tmp)) as h:
            seed(h)
            app = ClubtermApp(h.client(), locale=locale, idle_signout_s=0, clock=lambda: h.now)
            try:
                async with app.run_test(size=(60, 20)) as pilot:
                    dialog = await _check_in_dialog(pilot, app, h, "mg", "9999")
                    await pilot.press("ctrl+z", "3", "enter")
                    await wait_for(pilot, lambda: bool(dialog.packages)
                                   and dialog.packages[0].get("state") == "frozen", timeout=10)
                    await pilot.press("enter")  # a check-in on a frozen day: refused
                    await wait_for(pilot, lambda: dialog.query_one("#checkin-result")
                                   .has_class("error"), timeout=10)
            finally:
                set_locale(load_locale("en"))
            freezes = [e for e in h.outbox() if e["type"] == "package_freeze"]
            assert len(freezes) == 1 and not [e for e in h.outbox()
                                              if e["type"] == "package_use"]


async def test_a_refused_freeze_is_said_in_persian_with_its_figures() -> None:
    """A manager at 60x20 in Persian: a second freeze over the first is refused with
    the first one's dates (Jalali), one past the package's freezable days with the
    days allowed, used and asked (Persian digits), each wrapped to the dialog in
    reading order; never the agent's English."""
    import io

    from rich.console import Console

    from agent.tui.i18n import fill, wrap_visual

    def shown(widget: Any) -> list[str]:
        console = Console(width=widget.content_region.width, file=io.StringIO(), record=True)
        console.print(widget.content)
        return [line.strip() for line in console.export_text().splitlines()]

    with tempfile.TemporaryDirectory(prefix="cttui") as tmp:
        async with harness.Harness(Path(tmp)) as h:
            seed(h)
            app = ClubtermApp(h.client(), locale="fa", idle_signout_s=0, clock=lambda: h.now)
            try:
                async with app.run_test(size=(60, 20)) as pilot:
                    dialog = await _check_in_dialog(pilot, app, h, "mg", "9999")
                    result = dialog.query_one("#checkin-result")
                    width = result.content_region.width
                    await pilot.press("ctrl+z", "9", "9", "enter")  # 99 > 30 freezable
                    too_long = fill("This package may be frozen {freezable_days} days in all "
                                    "(used: {used}, asked: {days}).", freezable_days="۳۰",
                                    used="۰", days="۹۹")
                    await wait_for(pilot, lambda: shown(result) == [
                        x.strip() for x in wrap_visual(too_long, width)], timeout=10)
                    figure = shown(result)
                    await pilot.press("ctrl+z", "3", "enter")
                    await wait_for(pilot, lambda: dialog.packages[0].get("state") == "frozen",
                                   timeout=10)
                    await pilot.press("ctrl+z", "2", "enter")  # over the first freeze
                    await wait_for(pilot, lambda: result.has_class("error"), timeout=10)
                    today = h.now.astimezone().date()
                    fa = load_locale("fa")
                    overlap = fill("This package is already frozen from {frozen_from} to "
                                   "{frozen_until}.", frozen_from=fa.date(today),
                                   frozen_until=fa.date(today + timedelta(days=2)))
                    assert "فریز" in overlap and "۱۴۰۵" in overlap, overlap
                    assert shown(result) == [x.strip() for x in wrap_visual(overlap, width)]
                    for lines in (wrap_visual(overlap, width), wrap_visual(too_long, width)):
                        assert not any(c.isascii() and c.isalpha() for c in "".join(lines))
                    figure += shown(result)
                    print(f"figure: fa 60x20 (width {width}): {figure!r}")
            finally:
                set_locale(load_locale("en"))
            freezes = [e for e in h.outbox() if e["type"] == "package_freeze"]
            assert len(freezes) == 1
