"""The line of screens (function keys) at the top of every signed-in screen."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from agent.tui.i18n import current, tr


class NavBar(Static):
    """``F2 Sale  F3 Clock …``, the current screen highlighted."""

    DEFAULT_CSS = """
    NavBar { height: 1; background: $primary-background; padding: 0 1; }
    """

    def __init__(self, current_mode: str) -> None:
        super().__init__()
        self.current_mode = current_mode

    def on_mount(self) -> None:
        self.watch(self.app, "staff", self._redraw, init=True)

    def _redraw(self, _value: object = None) -> None:
        parts: list[Text] = []
        for key, mode, label in self.app.nav_items():  # type: ignore[attr-defined]
            style = "bold reverse" if mode == self.current_mode else ""
            parts.append(
                Text.assemble(
                    (key.upper(), "bold cyan" if not style else style),
                    (" " + tr(label) + " ", style),
                )
            )
        if current().rtl and current().visual_bidi:
            parts.reverse()
        self.update(Text(" ").join(parts))
