"""What every signed-in screen has: the nav bar, a message line, the status bar,
the footer, API calls in workers, and card taps."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import BindingsMap
from textual.css.query import NoMatches
from textual.dom import DOMNode
from textual.screen import ModalScreen, Screen
from textual.widget import Widget
from textual.widgets import Static

from agent.errors import ApiError, ClubtermError
from agent.localapi import NOT_ALLOWED
from agent.tui.errors import DISCONNECTED, error_logical, error_text
from agent.tui.i18n import current, tr
from agent.tui.messages import ApiDone, ApiFailed, CardRead, OnDone, OnFailed
from agent.tui.widgets.bidi import BidiText
from agent.tui.widgets.footer import StaffFooter
from agent.tui.widgets.nav_bar import NavBar
from agent.tui.widgets.status_bar import StatusBar

# data.reason of a not_allowed answer when the agent ended the session.
SESSION_ENDED = frozenset({"session_expired", "no_session"})

if TYPE_CHECKING:
    from agent.tui.app import ClubtermApp


def translate_bindings(node: DOMNode) -> None:
    """Translate the footer descriptions of ``node``'s bindings in place.

    ``BINDINGS`` are class data made at import, before a language is chosen;
    Textual copies them per instance, so the copy is translated here.
    """
    bindings = [
        dataclasses.replace(
            b, description=tr(b.description) if b.description else "", tooltip=b.tooltip
        )
        for _key, items in node._bindings.key_to_bindings.items()
        for b in items
    ]
    node._bindings = BindingsMap(bindings)


class MessageLine(Static):
    """One line that answers the cashier's last action (ok, error, info)."""

    DEFAULT_CSS = """
    MessageLine { height: auto; min-height: 1; padding: 0 1; }
    MessageLine.-error { background: $error 30%; color: $text; text-style: bold; }
    MessageLine.-ok { color: $success; text-style: bold; }
    MessageLine.-info { color: $text-muted; }
    """

    def say(self, text: str | BidiText, kind: str = "info") -> None:
        """Show ``text`` styled as ``kind`` (``ok``, ``error`` or ``info``).

        A :class:`BidiText` (logical order) wraps line by line in an RTL locale.
        """
        self.set_classes(f"-{kind}")
        self.update(text)


class ApiCaller:
    """Mixin: call the local API in a worker and get :class:`ApiDone`/:class:`ApiFailed`."""

    @property
    def club_app(self) -> ClubtermApp:
        """The app, typed."""
        return self.app  # type: ignore[attr-defined,no-any-return]

    def call_api(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        on_done: OnDone,
        on_failed: OnFailed | None = None,
        session: bool = False,
    ) -> None:
        """Call ``method`` in a worker; the answer comes back to this screen.

        The worker posts :class:`ApiDone`/:class:`ApiFailed` carrying the
        handlers, so they run on the screen's message loop, in order. Handlers
        are bound methods, checked by mypy: a mistyped one fails at type check
        (and as an AttributeError at the call), never as an answer dropped
        later (#14 item 6).
        """
        params = dict(params or {})
        if session and self.club_app.staff is not None:
            params["session"] = self.club_app.staff.session
        self._call_worker(method, params, on_done, on_failed)

    @work(group="api")
    async def _call_worker(
        self, method: str, params: dict[str, Any], on_done: OnDone, on_failed: OnFailed | None
    ) -> None:
        target: Widget = self  # type: ignore[assignment]
        try:
            result = await self.club_app.api.call(method, params)
        except ApiError as error:
            target.post_message(ApiFailed(method, error, on_failed))
        except (ClubtermError, OSError, ConnectionError, EOFError) as error:
            # The client could not reach the agent (e.g. ApiUnavailable).
            target.post_message(
                ApiFailed(method, ApiError(DISCONNECTED, str(error)), on_failed)
            )
        else:
            target.post_message(ApiDone(method, result, on_done))

    def on_api_done(self, message: ApiDone) -> None:
        message.on_done(message.result)

    def on_api_failed(self, message: ApiFailed) -> None:
        """Session ended: sign out; else the call's own handler, then (unless
        it handled the error) the error on the message line."""
        data = message.error.data if isinstance(message.error.data, dict) else {}
        if message.error.code == NOT_ALLOWED and data.get("reason") in SESSION_ENDED:
            self.club_app.sign_out(reason=error_text(message.error))
            return
        if message.on_failed is not None and message.on_failed(message.error) is not False:
            return
        self.show_error(message.error)

    def show_error(self, error: ApiError) -> None:
        """Show an API error on the message line (or as a notification).

        Right to left, the error (often two lines at 80 columns: headline and
        the agent's sentence) is wrapped in reading order (#15 item 11).
        """
        if current().rtl and current().visual_bidi:
            self.say(BidiText(error_logical(error)), "error")
        else:
            self.say(error_text(error), "error")

    def say(self, text: str | BidiText, kind: str = "info") -> None:
        """Answer the cashier on the screen's message line."""
        node: Widget = self  # type: ignore[assignment]
        try:
            node.query_one("#message", MessageLine).say(text, kind)
        except NoMatches:  # a dialog has no message line
            node.notify(str(text), severity="error" if kind == "error" else "information")


class ClubScreen(ApiCaller, Screen[None]):
    """A signed-in screen: nav bar, body, message line, status bar, footer."""

    MODE: ClassVar[str] = ""
    # A staff badge's card event carries a tap reference, no member identifier:
    # only screens that sign in or clock staff take it.
    TAKES_STAFF_BADGES: ClassVar[bool] = False

    def __init__(self) -> None:
        super().__init__()
        translate_bindings(self)
        if current().rtl:
            self.add_class("-rtl")

    def compose(self) -> ComposeResult:
        yield NavBar(self.MODE)
        yield from self.compose_body()
        yield MessageLine(id="message")
        yield StatusBar()
        yield StaffFooter()

    def compose_body(self) -> Iterable[Widget]:
        """The screen's own widgets."""
        return ()

    def on_card_read(self, message: CardRead) -> None:
        if message.staff_badge and not self.TAKES_STAFF_BADGES:
            self.say(tr("Card read — it is not used on this screen."), "info")
            return
        self.handle_card(message)

    def handle_card(self, message: CardRead) -> None:
        """A card was tapped or a code scanned; screens that use cards override this."""
        self.say(tr("Card read — it is not used on this screen."), "info")


class ClubModal(ApiCaller, ModalScreen[Any]):
    """A dialog over a screen, bindings translated."""

    def __init__(self) -> None:
        super().__init__()
        translate_bindings(self)
        if current().rtl:
            self.add_class("-rtl")
