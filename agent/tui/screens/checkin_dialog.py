"""(1.3) Check-in at the counter: the member's visit packages and memberships, and one
key that uses a visit (``package.list``, ``package.checkin``; docs/tui.md)."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import Footer, Input, OptionList, Static
from textual.widgets.option_list import Option

from agent.errors import ApiError
from agent.tui.errors import error_logical
from agent.tui.i18n import N_, agent_date, ascii_digits, current, display, tr
from agent.tui.screens.base import ClubModal
from agent.tui.widgets.bidi import BidiText

STATES = {"active": N_("active"), "in_grace": N_("in grace"), "frozen": N_("frozen"),
          "not_started": N_("not started"), "expired": N_("expired")}


def package_line(pkg: dict[str, Any]) -> str:
    """One package, short enough for 60 columns: name, visits left, state and date."""
    name = display(str(pkg.get("name") or pkg.get("sku") or pkg.get("package_id")))[:24]
    left = tr("unlimited") if pkg.get("visits_total") is None else \
        tr("{left}/{total} left", left=pkg.get("visits_left"), total=pkg.get("visits_total"))
    state = str(pkg.get("state"))
    when = tr("until {date}", date=agent_date(pkg.get("expires")))
    if state == "in_grace":
        when = tr("grace: {days} days", days=pkg.get("grace_left"))
    return current().digits(f"{name} · {left} · {tr(STATES.get(state, state))} · {when}")


class CheckInDialog(ClubModal):
    """The identified member's packages; Enter checks in with the highlighted one (a
    retry of the same press is answered, never recorded twice); Esc goes back."""

    CSS_PATH = "checkin_dialog.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+z", "freeze", N_("Freeze"), priority=True),
        Binding("escape", "dismiss(None)", N_("Back")),
    ]

    def __init__(self, token: str | None, member_id: str | None) -> None:
        super().__init__()
        self.token = token
        self.member_id = member_id
        self.packages: list[dict[str, Any]] = []
        self.request_id = uuid.uuid4().hex

    def _who(self) -> dict[str, Any]:
        return {"token": self.token} if self.token else {"member_id": self.member_id}

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(tr("Check in"), classes="dialog-title")
            yield OptionList(id="packages", compact=True)
            yield Static("", id="checkin-result")
            days = Input(id="freeze-days", compact=True, max_length=3,
                         restrict=r"[0-9۰-۹٠-٩]*", placeholder=tr("freeze for how many days?"))
            days.display = False
            yield days
            yield Static(tr("Enter: check in · Ctrl+Z: freeze · Esc: back"), classes="hint")
        yield Footer()

    def on_mount(self) -> None:
        self.call_api("package.list", self._who(), on_done=self._listed,
                      on_failed=self._failed, session=True)

    def _listed(self, result: dict[str, Any]) -> None:
        self.packages = list(result.get("packages") or [])
        options = self.query_one("#packages", OptionList)
        options.clear_options()
        if not self.packages:
            self.query_one("#checkin-result", Static).update(
                tr("{name} holds no package or membership.",
                   name=display(str(result.get("name") or ""))))
            return
        options.add_options([Option(package_line(p), id=str(p["package_id"]))
                             for p in self.packages])
        first = next((i for i, p in enumerate(self.packages) if p.get("usable")), 0)
        options.highlighted = first
        options.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        package_id = event.option.id
        if package_id is None:
            return
        self.call_api("package.checkin", {**self._who(), "package_id": package_id,
                                          "request_id": self.request_id},
                      on_done=self._checked_in, on_failed=self._failed, session=True)

    def _checked_in(self, result: dict[str, Any]) -> None:
        self.request_id = uuid.uuid4().hex  # the next Enter is a new visit
        left = result.get("visits_left")
        name = display(str(result.get("package_name") or result.get("package_id")))
        text = tr("Checked in: {name}, {left} visits left.", name=name, left=left) \
            if left is not None else tr("Checked in: {name}.", name=name)
        if result.get("state") == "in_grace":
            text += " " + tr("In grace: {days} days left to renew.",
                             days=result.get("grace_left"))
        widget = self.query_one("#checkin-result", Static)
        widget.update(current().digits(text))
        widget.set_class(False, "error")
        self.call_api("package.list", self._who(), on_done=self._listed,
                      on_failed=self._failed, session=True)

    def _failed(self, error: ApiError) -> bool:
        widget = self.query_one("#checkin-result", Static)
        # Wrapped in reading order: a refusal with its figures may take two lines at 60x20.
        widget.update(BidiText(error_logical(error)))
        widget.set_class(True, "error")
        return True

    def action_freeze(self) -> None:
        """(1.3, manager) Freeze the highlighted package from today for a number of
        days; the agent checks the permission and the package's freezable days."""
        options = self.query_one("#packages", OptionList)
        if options.highlighted is None or not self.packages:
            return
        days = self.query_one("#freeze-days", Input)
        days.display = True
        days.value = ""
        days.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "freeze-days":
            return
        text = ascii_digits(event.value.strip())
        options = self.query_one("#packages", OptionList)
        if not text.isdigit() or not 1 <= int(text) <= 366 or options.highlighted is None:
            self._show(tr("Type a number of days, 1 to 366."), error=True)
            return
        package = self.packages[options.highlighted]
        start = self.app_today()
        until = start + timedelta(days=int(text) - 1)
        event.input.display = False
        options.focus()
        self.call_api("package.freeze", {**self._who(), "package_id": package["package_id"],
                                         "from": start.isoformat(),
                                         "until": until.isoformat()},
                      on_done=self._frozen, on_failed=self._failed, session=True)

    def app_today(self) -> date:
        clock = getattr(self.app, "_clock", None)
        now = clock() if callable(clock) else datetime.now()
        # The agent's local day is the club's; the till's own clock is close enough
        # for "from today" (the agent refuses a start in the past in its own time).
        return now.astimezone().date() if isinstance(now, datetime) else date.today()

    def _frozen(self, result: dict[str, Any]) -> None:
        pkg = result.get("package") or {}
        self._show(tr("Frozen; the package now runs until {date}.",
                      date=agent_date(pkg.get("expires"))))
        self.call_api("package.list", self._who(), on_done=self._listed,
                      on_failed=self._failed, session=True)

    def _show(self, text: str, *, error: bool = False) -> None:
        widget = self.query_one("#checkin-result", Static)
        widget.update(current().digits(text))
        widget.set_class(error, "error")
