"""Members: enrol a new member at the terminal (name, phone, card, referrer)."""

from __future__ import annotations

from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widgets import Input, Label, Static

from agent.errors import ApiError
from agent.tui.basket import scanned_product
from agent.tui.i18n import N_, ascii_digits, tr
from agent.tui.messages import CardRead
from agent.tui.screens.base import ClubScreen

PHONE_CHARS = set("+0123456789 -")


class MembersScreen(ClubScreen):
    """Enrolment: the member gets ``local:<uuid>`` until the club answers."""

    CSS_PATH = "members.tcss"
    MODE = "members"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f8", "enrol", N_("Enrol"), priority=True),
        Binding("ctrl+b", "unlink", N_("Remove card")),
        Binding("ctrl+n", "clear", N_("Clear")),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.card_token: str | None = None
        self.card_label: str | None = None
        self.referrer_id: str | None = None

    def compose_body(self) -> ComposeResult:
        yield Static(tr("Enrol a new member"), classes="title")
        with Horizontal(classes="field"):
            yield Label(tr("Name"), classes="field-label")
            yield Input(id="enrol-name", compact=True, max_length=80)
        with Horizontal(classes="field"):
            yield Label(tr("Phone"), classes="field-label")
            yield Input(
                id="enrol-phone", compact=True, placeholder=tr("e.g. 0912 123 4567"), max_length=20
            )
        with Horizontal(classes="field"):
            yield Label(tr("Card"), classes="field-label")
            yield Static(id="enrol-card", classes="value")
        with Horizontal(classes="field"):
            yield Label(tr("Referred by"), classes="field-label")
            yield Input(
                id="enrol-referrer",
                compact=True,
                placeholder=tr("optional: their phone or club code, Enter"),
            )
        yield Static(id="enrol-referrer-name", classes="hint")
        yield Static(
            tr("Tap the new card on the reader to link it (optional). F8 enrols."), classes="hint"
        )
        yield Static(id="enrol-done")

    def on_mount(self) -> None:
        self._show_card()
        self.query_one("#enrol-name", Input).focus()

    def _show_card(self) -> None:
        text = self.card_label or tr("none — tap a card to link it")
        self.query_one("#enrol-card", Static).update(text)

    def handle_card(self, message: CardRead) -> None:
        if scanned_product(message.token) is not None:
            self.say(tr("That is a product barcode, not a card."), "error")
            return
        if message.event.get("member"):
            name = message.event["member"].get("name", "")
            self.say(tr("This card already belongs to {name}.", name=name), "error")
            return
        self.card_token = message.token
        kind = message.token.split(":", 1)[0]
        self.card_label = message.event.get("masked") or tr(
            "{kind} card {tail}", kind=kind.upper(), tail=message.token[-6:]
        )
        self._show_card()
        self.say(tr("Card read; it will be linked on enrolment."), "ok")

    def action_unlink(self) -> None:
        """Enrol without a card."""
        self.card_token = None
        self.card_label = None
        self._show_card()

    def action_clear(self) -> None:
        """Empty the form."""
        for name in ("enrol-name", "enrol-phone", "enrol-referrer"):
            self.query_one(f"#{name}", Input).value = ""
        self.referrer_id = None
        self.query_one("#enrol-referrer-name", Static).update("")
        self.action_unlink()
        self.query_one("#enrol-name", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "enrol-referrer":
            text = ascii_digits(event.value.strip())
            if not text:
                self.referrer_id = None
                return
            key = "phone" if set(text) <= PHONE_CHARS else "code"
            self.call_api("referrer", "member.identify", {key: text})
        elif event.input.id == "enrol-name":
            self.query_one("#enrol-phone", Input).focus()
        elif event.input.id == "enrol-phone":
            self.query_one("#enrol-referrer", Input).focus()

    def done_referrer(self, result: dict[str, Any]) -> None:
        self.referrer_id = str(result["member_id"])
        self.query_one("#enrol-referrer-name", Static).update(
            tr("Referred by {name}", name=result.get("name", ""))
        )

    def failed_referrer(self, error: ApiError) -> bool:
        self.referrer_id = None
        self.query_one("#enrol-referrer-name", Static).update("")
        return False

    def action_enrol(self) -> None:
        """Enrol the member of the form."""
        name = self.query_one("#enrol-name", Input).value.strip()
        phone = ascii_digits(self.query_one("#enrol-phone", Input).value.strip())
        if not name:
            self.say(tr("Type the member's name."), "error")
            self.query_one("#enrol-name", Input).focus()
            return
        if not phone:
            self.say(tr("Type the member's phone number."), "error")
            self.query_one("#enrol-phone", Input).focus()
            return
        if self.query_one("#enrol-referrer", Input).value.strip() and not self.referrer_id:
            self.say(tr("Press Enter in 'Referred by' to find the referrer, or clear it."), "error")
            return
        params: dict[str, Any] = {"name": name, "phone": phone}
        if self.card_token:
            params["token"] = self.card_token
        if self.referrer_id:
            params["referred_by"] = self.referrer_id
        self._enrolled_name = name
        self.call_api("enrol", "member.enrol", params, session=True)

    def done_enrol(self, result: dict[str, Any]) -> None:
        name = self._enrolled_name
        self.action_clear()
        self.say(
            tr("{name} is enrolled (member {id}).", name=name, id=str(result["member_id"])[:14]),
            "ok",
        )
