"""The till at 60 columns (#15 item 12 follow-up): who is signed in stays on the
status bar, something less urgent is shortened or dropped instead."""

from __future__ import annotations

from datetime import UTC, datetime

from agent.tui.i18n import load_locale, set_locale
from agent.tui.state import AgentStatus, ReaderView, StaffSession
from agent.tui.widgets.status_bar import StatusBar, status_text

from .conftest import wait_for
from .test_real_agent_till import till

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def test_the_signed_in_name_outlasts_the_rules_version_and_the_role() -> None:
    set_locale(load_locale("en"))
    status = AgentStatus(connected=True, known=True, online=True, since=NOW, pending=0,
                         rules_version=42, readers=(ReaderView("MSR", "msr", "ready"),))
    staff = StaffSession("s", "1", "Mina Rahimi", "cashier")
    assert status_text(status, staff, NOW, width=58).plain == (
        "● Online since 10:00 │ Queue 0 │ Rules v42 │ Mina Rahimi")
    long = StaffSession("s", "1", "Alexandra Papadopoulou-Smith", "manager")
    line = status_text(status, long, NOW, width=58).plain
    assert line == "● Online since 10:00 │ Queue 0 │ Alexandra Papadopoulou-S…"
    for width in range(30, 120):
        line = status_text(status, staff, NOW, width=width).plain
        assert len(line) <= width or line == "● Online since 10:00", (width, line)
        if width >= 45:
            assert "Mina Rahimi" in line, (width, line)
        elif width >= 39:
            assert "Mina" in line, (width, line)


async def test_at_60_columns_the_status_bar_names_who_is_signed_in() -> None:
    for locale in ("en", "fa"):
        async with till(size=(60, 20), locale=locale) as (_h, app, pilot):
            bar = app.screen.query_one(StatusBar)
            await wait_for(pilot, lambda bar=bar: "Cara" in str(bar.render()))
            text = str(bar.render())
            assert "●" in text, text
    set_locale(load_locale("en"))


def test_a_persian_profile_hint_wraps_in_reading_order() -> None:
    # Seen at 60x20 in Persian: "Find a member: …" showed its last words first.
    from rich.console import Console

    from agent.tui.i18n import current, visual_order
    from agent.tui.screens.members import profile_text

    try:
        set_locale(load_locale("fa"))
        sentence = current().gettext(
            "Find a member: phone, club code or name, Enter; or tap their card.")
        console = Console(width=20, record=True, color_system=None)
        console.print(profile_text(None, str))
        lines = [line.strip() for line in console.export_text().splitlines() if line.strip()]
        first_word = sentence.split(" ")[0]
        assert len(lines) > 1 and visual_order(first_word) in lines[0], lines
    finally:
        set_locale(load_locale("en"))
