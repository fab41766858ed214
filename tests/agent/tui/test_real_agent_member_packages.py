"""(1.3) The Members page shows the member's packages, against the real agent: the
demo gym pass with its visits left, one fewer after a check-in at another till; in
Persian at 60x20; a member holding 50 packages keeps the page bounded (the first few,
then "and K more"), the cards below still on screen — at 80x24 and 60x20."""

from __future__ import annotations

import io
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from textual.widgets import Input, Static

from agent.tui.app import ClubtermApp
from agent.tui.i18n import load_locale, set_locale
from agent.tui.screens.members import MembersScreen
from tests.agent.localapi import harness
from tests.agent.localapi.test_packages_api import seed
from tests.agent.localapi.test_profile_packages import GOOD, hold

from .conftest import wait_for
from .test_real_agent_snapshots import _stable_ids, settle_and_compare  # noqa: F401


def page_lines(widget: Static) -> list[str]:
    """The profile as drawn at the widget's own width (display order)."""
    console = Console(width=widget.size.width, file=io.StringIO(), record=True)
    console.print(widget.content)
    return [line.rstrip() for line in console.export_text().splitlines()]


@asynccontextmanager
async def members_page(size: tuple[int, int], locale: str = "en", packages: Any = None
                       ) -> AsyncIterator[tuple[harness.Harness, MembersScreen, Any]]:
    """The real agent (Sara, m-1, with the demo's gym pass, or ``packages``), the UI
    on it signed in as the manager, the Members page showing her."""
    with tempfile.TemporaryDirectory(prefix="ctmp") as tmp:
        async with harness.Harness(Path(tmp)) as h:
            seed(h)
            if packages is not None:
                hold(h, "m-1", packages)
            app = ClubtermApp(h.client(), locale=locale, idle_signout_s=0, clock=lambda: h.now)
            try:
                async with app.run_test(size=size) as pilot:
                    await wait_for(pilot, lambda: app.agent_status.known)
                    await pilot.press(*"mg", "enter", *"9999", "enter")
                    await wait_for(pilot, lambda: app.staff is not None
                                   and type(app.screen).__name__ != "SignInScreen")
                    await pilot.press("f6")
                    await wait_for(pilot, lambda: isinstance(app.screen, MembersScreen))
                    screen = app.screen
                    assert isinstance(screen, MembersScreen)
                    screen.query_one("#member-find", Input).focus()
                    await pilot.press(*"Member m-1", "enter")
                    await wait_for(pilot, lambda: screen.profile is not None, timeout=10)
                    await pilot.pause(0.1)
                    yield h, screen, pilot
            finally:
                set_locale(load_locale("en"))


def fits(screen: MembersScreen) -> list[str]:
    """The profile's lines; asserts they all fit the widget (nothing cut below)."""
    widget = screen.query_one("#member-profile", Static)
    lines = page_lines(widget)
    while lines and not lines[-1]:
        lines.pop()
    assert len(lines) <= widget.size.height, (widget.size, lines)
    return lines


@pytest.mark.parametrize("size", [(80, 24), (60, 20)])
async def test_the_gym_pass_and_a_check_in_elsewhere(size: tuple[int, int]) -> None:
    async with members_page(size) as (h, screen, pilot):
        text = "\n".join(fits(screen))
        print(f"figure: {size}:\n{text}")
        flat = " ".join(text.split())
        assert "Packages:" in flat and "10-visit gym pass · active" in flat, text
        assert "7/10 left" in flat, text
        assert "Card NFC" in flat  # the cards below still on screen
        # Another till checks her in; the page, asked again, shows one fewer.
        await h.client().call("package.checkin", {"session": await h.login(),
                                                  "member_id": "m-1"})
        screen.profile = None
        screen.query_one("#member-find", Input).focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.profile is not None, timeout=10)
        await pilot.pause(0.1)
        flat = " ".join(" ".join(fits(screen)).split())
        assert "6/10 left" in flat, flat


async def test_persian_at_60x20() -> None:
    async with members_page((60, 20), "fa") as (_h, screen, _pilot):
        lines = fits(screen)
        text = "\n".join(lines)
        print(f"figure: fa 60x20:\n{text}")
        # Drawn in visual order (the UI orders RTL itself): Persian words read reversed.
        assert ":اه‌هتسب" in text or "اه‌هتسب" in text, text  # "بسته‌ها:"
        assert "۷/۱۰" in text, text  # visits left in Persian digits
        assert "7/10" not in text and "2027" not in text  # Jalali year, Persian digits
        assert "\u2068" not in text and "\\u20" not in text, text  # no isolate as text
        assert "NFC" in text  # the card line still on screen


@pytest.mark.parametrize(("size", "shown"), [((120, 36), 3), ((80, 24), 2), ((60, 20), 1)])
async def test_fifty_packages_stay_bounded(size: tuple[int, int], shown: int) -> None:
    many = [{**GOOD, "package_id": f"pk-{i}", "name": f"Pass {i}",
             "frozen": [{"from": "2026-11-20", "until": "2026-12-05"}] * 3}
            for i in range(50)]
    async with members_page(size, packages=many) as (_h, screen, _pilot):
        assert len((screen.profile or {}).get("packages") or []) == 50
        lines = fits(screen)
        flat = " ".join(" ".join(lines).split())
        print(f"figure: {size}: 50 packages in {len(lines)} lines")
        assert f"and {50 - shown} more packages" in flat, flat
        assert [f"Pass {i} ·" in flat for i in range(5)] == \
            [True] * shown + [False] * (5 - shown)
        # The current freeze, the others counted (narrow: the state says "frozen").
        assert ("and 2 more times" in flat) == (shown > 1), flat
        assert "Pass 0 · frozen" in flat
        assert "Card NFC" in flat


@pytest.mark.parametrize("locale", ["en", "fa"])
async def test_snapshot_at_60x20(snapshot: Any, locale: str) -> None:
    # Regenerate after an intended change with --snapshot-update; look at the SVGs.
    async with members_page((60, 20), locale) as (_h, _screen, pilot):
        assert await settle_and_compare(snapshot, pilot)
