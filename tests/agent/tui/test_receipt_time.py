"""The receipt shows the sale's time in the club's time zone, as the status bar does."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from rich.console import Console

from agent.tui.screens.sale_dialogs import receipt_table


def render(table: object) -> str:
    console = Console(width=60, record=True, color_system=None)
    console.print(table)
    return console.export_text()


def test_receipt_time_is_club_local() -> None:
    receipt = {"at": "2026-11-22T13:04:00+00:00", "seq": 7, "lines": []}
    text = render(receipt_table(receipt, str, ZoneInfo("Europe/Berlin")))
    assert "14:04" in text
    assert "13:04" not in text
