"""The key footer of signed-in screens: F10 (sign out) always in sight."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

# Actions whose keys stay on screen however narrow it is (docked at the edge).
PINNED_ACTIONS = frozenset({"sign_out", "app.sign_out"})


class StaffFooter(Footer):
    """Textual's footer with the sign-out key docked at the edge.

    Keys that do not fit are cut at the far end of a footer; the key that ends a
    session must never be one of them (#15 item 12).
    """

    DEFAULT_CSS = """
    StaffFooter FooterKey.-pinned {
        dock: right;
        border-left: vkey $foreground 20%;
    }
    """

    def compose(self) -> ComposeResult:
        for widget in super().compose():
            if isinstance(widget, FooterKey) and widget.action in PINNED_ACTIONS:
                widget.add_class("-pinned")
            yield widget
