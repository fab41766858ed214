"""Text that wraps right-to-left correctly: wrapped in reading order, each line reordered."""

from __future__ import annotations

from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.style import StyleType
from rich.text import Text

from agent.tui.i18n import current, fill, wrap_visual


class BidiText:
    """A Rich renderable of logical-order text, wrapped to the width it is given.

    In a visual RTL locale each wrapped line is put in display order on its own
    and right-aligned (a terminal wrapping a reordered string would show the
    last line's words first); elsewhere it is ordinary wrapped text.
    """

    def __init__(self, logical: str, style: StyleType = "") -> None:
        self.logical = logical
        self.style = style

    @property
    def rtl(self) -> bool:
        """True when this text is drawn right to left by the UI."""
        return current().rtl and current().visual_bidi

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        if not self.rtl:
            yield Text(self.logical, style=self.style)
            return
        width = options.max_width
        for line in wrap_visual(self.logical, width):
            yield Text(line, style=self.style, justify="right", no_wrap=True)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement.get(console, options, Text(self.logical))

    def __str__(self) -> str:
        return "\n".join(wrap_visual(self.logical, 10**6))


def tr_block(message: str, /, style: StyleType = "", **values: object) -> BidiText:
    """:func:`agent.tui.i18n.tr` for text that may wrap (hints, notes, errors)."""
    return BidiText(fill(message, **values), style)
