"""Right-to-left text that wraps, isolated values, date and time runs (#15 item 11)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest
from rich.console import Console

from agent.tui.i18n import (
    current,
    display,
    fill,
    isolate,
    load_locale,
    set_locale,
    tr,
    visual_order,
    wrap_visual,
)
from agent.tui.widgets.bidi import BidiText


@pytest.fixture(autouse=True)
def _fa() -> Iterator[None]:
    saved = current()
    set_locale(load_locale("fa"))
    yield
    set_locale(saved)


SENTENCE = "یک دو سه چهار پنج شش هفت هشت نه ده"


def test_wrapped_lines_read_top_to_bottom() -> None:
    lines = wrap_visual(SENTENCE, 12)
    print(f"figure: {len(lines)} lines at 12 cells")
    # Each drawn line, read right to left, is the next words of the sentence.
    read = [visual_order(line) for line in lines]  # visual_order is its own inverse here
    assert " ".join(read) == SENTENCE
    assert read[0].startswith("یک دو")
    assert all(len(line) <= 12 for line in lines)
    # The old way (reorder the whole sentence, let the terminal wrap) puts the
    # end of the sentence on the first line.
    assert visual_order(SENTENCE)[:12] != lines[0][:12]


def test_an_overlong_word_is_cut_not_lost() -> None:
    lines = wrap_visual("x" * 25, 10)
    assert lines == ["x" * 10, "x" * 10, "x" * 5]


def test_latin_name_keeps_its_dot() -> None:
    assert tr("{name} · {tier}", name="Sara K.", tier="طلایی") == "ییالط · Sara K."
    assert visual_order("Sara K. · طلایی") == "ییالط · .Sara K"  # without isolation


def test_isolated_values_leave_no_marks_and_english_is_untouched() -> None:
    assert "\u2068" not in tr("{name} · {tier}", name="Sara K.", tier="x")
    set_locale(load_locale("en"))
    assert fill("{name}!", name="Sara K.") == "Sara K.!"
    assert isolate("12:30") == "12:30"


def test_date_and_time_stay_separate_runs() -> None:
    loc = current()
    at = datetime(2026, 11, 28, 8, 47)
    joined = display(f"{isolate(loc.date(at.date()))} {isolate(loc.time(at))}")
    assert joined == "۰۸:۴۷ ۱۴۰۵ رذآ ۷"
    assert joined.startswith("۰۸:۴۷ ")  # the time is the left-most run: read last
    assert "۱۴۰۵ ۰۸:۴۷" not in joined


def test_bidi_text_renders_each_line_right_aligned() -> None:
    console = Console(width=14, record=True, color_system=None)
    console.print(BidiText(SENTENCE))
    out = console.export_text().splitlines()
    assert [line.strip() for line in out] == wrap_visual(SENTENCE, 14)
    assert all(len(line.rstrip()) == 14 or line.startswith(" ") for line in out)


def test_who_is_signed_in_shows_at_80_columns() -> None:
    from agent.tui.state import StaffSession, status_from_result
    from agent.tui.widgets.status_bar import status_text

    now = datetime(2026, 11, 22, 9, 0).astimezone()
    result = {"online": False, "link_since": now.isoformat(), "rules_version": 42,
              "rules_problem": None, "queue": {"pending": 0, "rejected": 0},
              "readers": [{"name": "MSR", "kind": "msr", "state": "ready"}],
              "currency": "EUR", "minor_units": 2}
    staff = StaffSession("s", "1", "Mina Rahimi", "cashier")
    line = status_text(status_from_result(result, now), staff, now, width=78).plain
    print(f"figure: status line {len(line)} cells at 78")
    assert "Mina Rahimi" in line
    assert "۰" in line  # the queue (outlasts the name) is still there
