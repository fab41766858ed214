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

    def compose_body(self) -> ComposeResult:
        yield Static(
            tr(
                "Tap your badge to clock in or out, or type your staff number "
                "and press F8 (in) or F9 (out)."
            ),
            classes="hint",
            id="clock-hint",
        )
        with Horizontal(classes="field"):
            yield Label(tr("Staff number"), classes="field-label")
            yield Input(id="clock-staff", compact=True, max_length=32)
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
        self.query_one("#clock-staff", Input).focus()
        self.action_reload()

    def action_reload(self) -> None:
        """Fetch today's attendance."""
        self.call_api("summary", "day.summary", {"date": self.club_app.now().date().isoformat()})

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
            table.add_row(
                tr("{name}", name=row["name"]), " ".join(times), hours(int(row.get("minutes", 0)))
            )

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.action_clock("in")

    def action_clock(self, action: str) -> None:
        """Clock the typed staff number in or out."""
        staff_id = ascii_digits(self.query_one("#clock-staff", Input).value.strip())
        if not staff_id:
            self.say(tr("Type a staff number, or tap a badge."), "error")
            return
        self.call_api(f"clock_{action}", "staff.clock", {"staff_id": staff_id, "action": action})

    def handle_card(self, message: CardRead) -> None:
        # A tap toggles: try "in"; the agent answers conflict if the badge's
        # owner is already in, and then the tap means "out". (local-api.md
        # has no toggle action; see docs/tui.md.) The token of a staff badge is
        # a single-use tap reference; a refused "in" records nothing and leaves
        # it usable once more, for the "out".
        self.call_api("tap_in", "staff.clock", {"token": message.token, "action": "in"})
        self._last_badge = message.token

    def done_tap_in(self, result: dict[str, Any]) -> None:
        self._clocked(result, "in")

    def failed_tap_in(self, error: ApiError) -> bool:
        if error.code == CONFLICT and self._last_badge:
            self.call_api("tap_out", "staff.clock", {"token": self._last_badge, "action": "out"})
            return True
        return False

    def done_tap_out(self, result: dict[str, Any]) -> None:
        self._clocked(result, "out")

    def done_clock_in(self, result: dict[str, Any]) -> None:
        self._clocked(result, "in")

    def done_clock_out(self, result: dict[str, Any]) -> None:
        self._clocked(result, "out")

    def _clocked(self, result: dict[str, Any], action: str) -> None:
        self.query_one("#clock-staff", Input).value = ""
        self._last_badge = None
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
