"""Sign-in: tap a staff badge, or type staff number and PIN."""

from __future__ import annotations

from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Center, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Input, Label, Static

from agent.errors import ApiError
from agent.tui.i18n import N_, current, tr
from agent.tui.messages import CardRead
from agent.tui.screens.base import ApiCaller, MessageLine, translate_bindings
from agent.tui.state import StaffSession
from agent.tui.widgets.status_bar import StatusBar


class SignInScreen(ApiCaller, Screen[None]):
    """The first screen: who is at the till decides what is shown next."""

    CSS_PATH = "signin.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "sign_in", N_("Sign in"), show=True),
    ]

    def __init__(self) -> None:
        super().__init__()
        translate_bindings(self)
        if current().rtl:
            self.add_class("-rtl")

    def compose(self) -> ComposeResult:
        with Center(), Vertical(id="signin-box"):
            yield Static(tr("clubterm — staff sign-in"), classes="title", id="signin-title")
            yield Static(tr("Tap your staff badge on the reader,"), classes="hint")
            yield Static(tr("or type your staff number and PIN and press Enter."), classes="hint")
            yield Label(tr("Staff number"))
            # Staff ids are any text the club gives (protocol.md); digits are
            # only what the demo uses.
            yield Input(id="staff-id", max_length=32)
            yield Label(tr("PIN"))
            yield Input(id="pin", password=True, restrict=r"[0-9۰-۹]*", max_length=12)
            yield MessageLine(id="message")
        yield StatusBar()
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#staff-id", Input).focus()

    def on_screen_resume(self) -> None:
        # Back after a sign-out: empty form, ready for the next person.
        self.query_one("#staff-id", Input).value = ""
        self.query_one("#pin", Input).value = ""
        self.query_one("#staff-id", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "staff-id":
            self.query_one("#pin", Input).focus()
        else:
            self.action_sign_in()

    def action_sign_in(self) -> None:
        """Sign in with the typed staff number and PIN."""
        from agent.tui.i18n import ascii_digits

        staff_id = ascii_digits(self.query_one("#staff-id", Input).value.strip())
        pin = ascii_digits(self.query_one("#pin", Input).value)
        if not staff_id or not pin:
            self.say(tr("Type your staff number and PIN, or tap your badge."), "error")
            return
        self.say(tr("Signing in…"))
        self.call_api("staff.login", {"staff_id": staff_id, "pin": pin},
                      on_done=self.done_login, on_failed=self.failed_login)

    def on_card_read(self, message: CardRead) -> None:
        # A staff badge's event carries a tap reference (single use, 15 s), not
        # the badge token; any other card gets the agent's "not a staff badge".
        self.say(tr("Badge read, signing in…"))
        self.call_api("staff.login", {"token": message.token},
                      on_done=self.done_login, on_failed=self.failed_login)

    def done_login(self, result: dict[str, Any]) -> None:
        self.query_one("#pin", Input).value = ""
        self.query_one("#staff-id", Input).value = ""
        session = StaffSession(
            str(result["session"]),
            str(result["staff_id"]),
            str(result["name"]),
            str(result["role"]),
        )
        self.run_worker(self.club_app.sign_in(session), group="session")

    def failed_login(self, error: ApiError) -> bool:
        self.query_one("#pin", Input).value = ""
        return False  # the message line shows the agent's reason
