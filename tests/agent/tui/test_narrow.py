"""The nav line at narrow widths (#15 item 12): every key stays, labels shrink."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from agent.tui.app import NAV
from agent.tui.i18n import current, load_locale, set_locale
from agent.tui.widgets.nav_bar import nav_text


@pytest.fixture(autouse=True)
def _restore_locale() -> Iterator[None]:
    saved = current()
    yield
    set_locale(saved)


@pytest.mark.parametrize("locale", ["en", "fa"])
@pytest.mark.parametrize("width", [120, 78, 58, 40, 30])
def test_every_key_fits_and_stays(locale: str, width: int) -> None:
    set_locale(load_locale(locale))
    text = nav_text(NAV, "report", width)
    print(f"figure: {locale} width {width}: {text.cell_len} cells")
    for key, _mode, _label in NAV:
        assert key.upper() in text.plain
    if width >= 40:  # below that the current label alone does not fit
        assert text.cell_len <= width


def test_wide_bar_is_unchanged_and_current_label_stays_whole() -> None:
    set_locale(load_locale("en"))
    assert nav_text(NAV, "sale", 200).plain == (
        "F2 Sale  F3 Clock  F4 Cash  F5 Diary  F6 Members  F7 Report ")
    narrow = nav_text(NAV, "report", 40).plain
    assert "F7 Report" in narrow
    assert "F6 Members" not in narrow
