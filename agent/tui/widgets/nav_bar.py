"""The line of screens (function keys) at the top of every signed-in screen."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widgets import Static

from agent.tui.i18n import current, tr


def nav_text(items: Sequence[tuple[str, str, str]], current_mode: str,
             width: int | None = None) -> Text:
    """``F2 Sale  F3 Clock …`` (labels translated), the current screen highlighted.

    Every key stays visible however narrow the bar (#15 item 12): when the
    labels do not fit ``width`` cells the spacing goes first, then the other
    screens' labels are shortened (to one letter at worst); the current
    screen's label stays whole.
    """
    rtl = current().rtl and current().visual_bidi
    labels = [tr(label) for _key, _mode, label in items]

    def build(pad: str, cut: int | None) -> Text:
        parts: list[Text] = []
        for (key, mode, _label), label in zip(items, labels, strict=True):
            here = mode == current_mode
            style = "bold reverse" if here else ""
            if cut is not None and not here and len(label) > cut:
                # Visual order in RTL: the start of the word is on the right.
                label = label[-cut:] if rtl else label[:cut]
            parts.append(Text.assemble((key.upper(), "bold cyan" if not style else style),
                                       (" " + label + (" " if here else pad), style)))
        if rtl:
            parts.reverse()
        return Text(" ").join(parts)

    text = build(" ", None)
    if width is None or text.cell_len <= width:
        return text
    text = build("", None)
    longest = max((len(label) for label in labels), default=0)
    for cut in range(longest - 1, 0, -1):
        if text.cell_len <= width:
            break
        text = build("", cut)
    return text


class NavBar(Static):
    """The nav line of the signed-in role's screens; redrawn on resize."""

    DEFAULT_CSS = """
    NavBar { height: 1; background: $primary-background; padding: 0 1; }
    """

    def __init__(self, current_mode: str) -> None:
        super().__init__()
        self.current_mode = current_mode

    def on_mount(self) -> None:
        self.watch(self.app, "staff", self._redraw, init=True)

    def on_resize(self) -> None:
        self._redraw()

    def _redraw(self, _value: object = None) -> None:
        items = self.app.nav_items()  # type: ignore[attr-defined]
        width = self.content_size.width or None
        self.update(nav_text(items, self.current_mode, width))
