"""Clock in / out with the badge; who is in now; today's attendance."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Input, Label, Static

from agent.errors import ApiError
from agent.localapi import CONFLICT
from agent.tui.i18n import N_, ascii_digits, current, number, ordered, tr
from agent.tui.messages import CardRead
from agent.tui.screens.base import ClubScreen
from agent.tui.widgets.bidi import tr_block


def hours(minutes: int) -> str:
    """``7:05`` for 425 minutes, in local digits."""
    return current().digits(f"{minutes // 60}:{minutes % 60:02d}")


class ClockScreen(ClubScreen):
    """A badge tap clocks its owner in, or out if they are in; attendance comes
    from ``day.summary``."""

    CSS_PATH = "clock.tcss"
    MODE = "clock"
    TAKES_STAFF_BADGES = True
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f8", "clock('in')", N_("Clock in"), priority=True),
        Binding("f9", "clock('out')", N_("Clock out"), priority=True),
        Binding("ctrl+r", "reload", N_("Refresh")),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.attendance: list[dict[str, Any]] = []
        self._last_badge: str | None = None
        # The params of a typed clock-in sent by Enter (toggle: out on conflict).
        self._typed: dict[str, Any] | None = None

    def compose_body(self) -> ComposeResult:
        yield Static(
            tr_block(
                "Tap your badge to clock in or out, or type your staff number and "
                "PIN, then Enter (in or out), F8 (in) or F9 (out)."
            ),
            classes="hint",
            id="clock-hint",
        )
        with Horizontal(classes="field"):
            yield Label(tr("Staff number"), classes="field-label")
            yield Input(id="clock-staff", compact=True, max_length=32)
        with Horizontal(classes="field"):
            yield Label(tr("PIN"), classes="field-label")
            yield Input(id="clock-pin", compact=True, max_length=64, password=True)
        # A manager may clock someone without their PIN: a correction, with a reason.
        with Horizontal(classes="field", id="clock-reason-row"):
            yield Label(tr("Correction reason"), classes="field-label")
            yield Input(id="clock-reason", compact=True, max_length=200)
        with Horizontal(id="clock-body"):
            with Vertical(id="in-now"):
                yield Static(tr("In now"), classes="title")
                yield Static(id="present")
            with Vertical(id="today"):
                yield Static(tr("Today"), classes="title")
                yield DataTable(id="attendance", cursor_type="row")

    def on_mount(self) -> None:
        table = self.query_one("#attendance", DataTable)
        table.add_columns(*ordered([tr("Name"), tr("In / out"), tr("Hours")]))
        staff = self.club_app.staff
        self.query_one("#clock-reason-row").display = (
            staff is not None and staff.role == "manager")
        self.query_one("#clock-staff", Input).focus()
        self.action_reload()

    def action_reload(self) -> None:
        """Fetch today's attendance."""
        self.call_api("day.summary", {"date": self.club_app.now().date().isoformat()},
                      on_done=self.done_summary)

    def done_summary(self, result: dict[str, Any]) -> None:
        self.attendance = list(result.get("attendance") or [])
        loc = current()
        present = [row["name"] for row in self.attendance if row.get("present")]
        self.query_one("#present", Static).update(
            "\n".join(tr("● {name}", name=name) for name in present) or tr("Nobody")
        )
        table = self.query_one("#attendance", DataTable)
        table.clear()
        for row in self.attendance:
            times = []
            for entry in row.get("entries", []):
                at = datetime.fromisoformat(entry["at"]).astimezone(self.club_app.now().tzinfo)
                arrow = "→" if entry["action"] == "in" else "←"
                times.append(f"{arrow}{loc.time(at)}")
            # Rows mirrored as the header is (#15 item 11).
            table.add_row(*ordered(
                [tr("{name}", name=row["name"]), " ".join(times), hours(int(row.get("minutes", 0)))]
            ))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "clock-staff" and event.value.strip():
            self.query_one("#clock-pin", Input).focus()
            return
        # Enter with a PIN (or a manager's reason) toggles, as a badge tap does.
        self._send("in", toggle=True)

    def action_clock(self, action: str) -> None:
        """Clock the typed staff number in or out (with their PIN, or a manager's reason)."""
        self._send(action, toggle=False)

    def _send(self, action: str, *, toggle: bool) -> None:
        staff_id = ascii_digits(self.query_one("#clock-staff", Input).value.strip())
        pin = ascii_digits(self.query_one("#clock-pin", Input).value)
        reason = self.query_one("#clock-reason", Input).value.strip()
        if not staff_id:
            self.say(tr("Type a staff number, or tap a badge."), "error")
            self.query_one("#clock-staff", Input).focus()
            return
        params: dict[str, Any] = {"staff_id": staff_id, "action": action}
        staff = self.club_app.staff
        if pin:
            params["pin"] = pin
        elif reason and staff is not None and staff.role == "manager":
            params.update(reason=reason, session=staff.session)
        else:
            self.say(tr("Enter the PIN of the person clocking, or tap their badge."), "error")
            self.query_one("#clock-pin", Input).focus()
            return
        self._typed = params if toggle else None
        if action == "in":
            self.call_api("staff.clock", params,
                          on_done=self.done_clock_in, on_failed=self.failed_clock_in)
        else:
            self.call_api("staff.clock", params,
                          on_done=self.done_clock_out, on_failed=self.failed_clock_out)

    def failed_clock_in(self, error: ApiError) -> bool:
        # Enter toggles: someone already in is clocked out with the same PIN.
        if error.code == CONFLICT and self._typed is not None:
            params, self._typed = {**self._typed, "action": "out"}, None
            self.call_api("staff.clock", params,
                          on_done=self.done_clock_out, on_failed=self.failed_clock_out)
            return True
        self.query_one("#clock-pin", Input).value = ""
        return False

    def failed_clock_out(self, error: ApiError) -> bool:
        self.query_one("#clock-pin", Input).value = ""
        return False

    def handle_card(self, message: CardRead) -> None:
        # A tap toggles: try "in"; the agent answers conflict if the badge's
        # owner is already in, and then the tap means "out". (local-api.md
        # has no toggle action; see docs/tui.md.) The token of a staff badge is
        # a single-use tap reference; a refused "in" records nothing and leaves
        # it usable once more, for the "out".
        self.call_api("staff.clock", {"token": message.token, "action": "in"},
                      on_done=self.done_tap_in, on_failed=self.failed_tap_in)
        self._last_badge = message.token

    def done_tap_in(self, result: dict[str, Any]) -> None:
        self._clocked(result, "in")

    def failed_tap_in(self, error: ApiError) -> bool:
        if error.code == CONFLICT and self._last_badge:
            self.call_api("staff.clock", {"token": self._last_badge, "action": "out"},
                          on_done=self.done_tap_out)
            return True
        return False

    def done_tap_out(self, result: dict[str, Any]) -> None:
        self._clocked(result, "out")

    def done_clock_in(self, result: dict[str, Any]) -> None:
        self._clocked(result, "in")

    def done_clock_out(self, result: dict[str, Any]) -> None:
        self._clocked(result, "out")

    def _clocked(self, result: dict[str, Any], action: str) -> None:
        for field in ("#clock-staff", "#clock-pin", "#clock-reason"):
            self.query_one(field, Input).value = ""
        self.query_one("#clock-staff", Input).focus()
        self._last_badge = None
        self._typed = None
        at = current().time(
            datetime.fromisoformat(result["at"]).astimezone(self.club_app.now().tzinfo)
        )
        name = result.get("name") or current().gettext("Staff {id}").format(
            id=result.get("staff_id", "?")
        )
        if action == "in":
            self.say(tr("{name} clocked in at {time}.", name=name, time=at), "ok")
        else:
            self.say(tr("{name} clocked out at {time}.", name=name, time=at), "ok")
        self.action_reload()

    def number_present(self) -> str:
        """How many are in (for tests and the title)."""
        return number(sum(1 for r in self.attendance if r.get("present")))
