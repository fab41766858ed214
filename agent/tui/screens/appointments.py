"""Appointments: the day per staff member; create, move, cancel; overlaps refused."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widgets import DataTable, Input, Label, Static

from agent.errors import ApiError
from agent.tui.basket import is_product_code
from agent.tui.i18n import N_, ascii_digits, current, number, ordered, tr
from agent.tui.messages import CardRead
from agent.tui.screens.base import ClubScreen

PHONE_CHARS = set("+0123456789 -")


def parse_hhmm(text: str) -> tuple[int, int] | None:
    """``(hour, minute)`` from ``9:30``, ``0930`` or ``۹:۳۰``; None if not a time."""
    cleaned = ascii_digits(text.strip()).replace(".", ":")
    if ":" in cleaned:
        hh, _, mm = cleaned.partition(":")
    elif cleaned.isdigit() and len(cleaned) in (3, 4):
        hh, mm = cleaned[:-2], cleaned[-2:]
    elif cleaned.isdigit() and len(cleaned) <= 2:
        hh, mm = cleaned, "0"
    else:
        return None
    if not (hh.isdigit() and mm.isdigit()):
        return None
    hour, minute = int(hh), int(mm)
    return (hour, minute) if 0 <= hour < 24 and 0 <= minute < 60 else None


def customer_params(text: str) -> dict[str, str]:
    """How a typed customer goes to the API: a phone, or a member id."""
    cleaned = ascii_digits(text.strip())
    if set(cleaned) <= PHONE_CHARS and len(cleaned) >= 6 and not is_product_code(cleaned):
        return {"phone": cleaned}
    return {"customer": cleaned}


class AppointmentsScreen(ClubScreen):
    """The diary of one day."""

    CSS_PATH = "appointments.tcss"
    MODE = "appointments"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f8", "create", N_("Book"), priority=True),
        Binding("f9", "move", N_("Move"), priority=True),
        Binding("ctrl+o", "cancel", N_("Cancel")),
        Binding("ctrl+s", "next_staff", N_("Staff")),
        Binding("pageup", "day(-1)", N_("Day −"), priority=True),
        Binding("pagedown", "day(1)", N_("Day +"), priority=True),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.day: date | None = None
        self.appointments: list[dict[str, Any]] = []
        self.staff_filter: str | None = None
        self.customer_member: str | None = None

    def compose_body(self) -> ComposeResult:
        yield Static(id="diary-title", classes="title")
        yield DataTable(id="diary", cursor_type="row", zebra_stripes=True)
        with Horizontal(classes="field"):
            yield Label(tr("Time"), classes="field-label")
            yield Input(id="appt-time", compact=True, placeholder=tr("HH:MM"), max_length=5)
            yield Label(tr("Minutes"), classes="field-label")
            yield Input(
                id="appt-minutes", compact=True, value="30", max_length=3, restrict=r"[0-9۰-۹]*"
            )
            yield Label(tr("Staff no."), classes="field-label")
            yield Input(id="appt-staff", compact=True, max_length=32)
        with Horizontal(classes="field"):
            yield Label(tr("Customer"), classes="field-label")
            yield Input(
                id="appt-customer", compact=True, placeholder=tr("phone, member id, or tap a card")
            )
        with Horizontal(classes="field"):
            yield Label(tr("Service"), classes="field-label")
            yield Input(id="appt-service", compact=True, placeholder=tr("e.g. haircut"))
            yield Label(tr("Note"), classes="field-label")
            yield Input(id="appt-note", compact=True)

    def on_mount(self) -> None:
        table = self.query_one("#diary", DataTable)
        table.add_columns(
            *ordered([tr("Time"), tr("Staff"), tr("Customer"), tr("Service"), tr("Min.")])
        )
        self.day = self.club_app.now().date()
        if self.club_app.staff is not None:
            self.query_one("#appt-staff", Input).value = self.club_app.staff.staff_id
        self.query_one("#appt-time", Input).focus()
        self.action_reload()

    def action_reload(self) -> None:
        """Fetch the day's appointments."""
        assert self.day is not None
        self.call_api("list", "appointment.list", {"date": self.day.isoformat()})

    def action_day(self, delta: int) -> None:
        """Show another day."""
        assert self.day is not None
        self.day += timedelta(days=delta)
        self.action_reload()

    def action_next_staff(self) -> None:
        """Show everyone, then one staff member after another."""
        names = sorted({a["staff_name"] for a in self.appointments})
        if not names:
            self.staff_filter = None
        elif self.staff_filter not in names:
            self.staff_filter = names[0]
        else:
            i = names.index(self.staff_filter) + 1
            self.staff_filter = names[i] if i < len(names) else None
        self._redraw()

    def done_list(self, result: list[dict[str, Any]]) -> None:
        self.appointments = result
        self._redraw()

    def _shown(self) -> list[dict[str, Any]]:
        rows = [
            a
            for a in self.appointments
            if self.staff_filter is None or a["staff_name"] == self.staff_filter
        ]
        return sorted(rows, key=lambda a: (a["staff_name"], a["start"]))

    def _redraw(self) -> None:
        assert self.day is not None
        loc = current()
        who = self.staff_filter or current().gettext("everyone")
        self.query_one("#diary-title", Static).update(
            tr(
                "{day} — {who} — {n} booked",
                day=loc.date(self.day),
                who=who,
                n=number(len(self._shown())),
            )
        )
        table = self.query_one("#diary", DataTable)
        table.clear()
        tz = self.club_app.now().tzinfo
        for appt in self._shown():
            start = datetime.fromisoformat(appt["start"]).astimezone(tz)
            end = start + timedelta(minutes=int(appt["minutes"]))
            table.add_row(
                *ordered(
                    [
                        f"{loc.time(start)}–{loc.time(end)}",
                        appt["staff_name"],
                        appt.get("customer_name") or appt["customer"],
                        appt["service"],
                        number(int(appt["minutes"])),
                    ]
                ),
                key=appt["appointment_id"],
            )

    def _selected(self) -> dict[str, Any] | None:
        shown = self._shown()
        row = self.query_one("#diary", DataTable).cursor_row
        return shown[row] if shown and 0 <= row < len(shown) else None

    def _form_start(self) -> datetime | None:
        hhmm = parse_hhmm(self.query_one("#appt-time", Input).value)
        if hhmm is None or self.day is None:
            return None
        tz = self.club_app.now().tzinfo
        return datetime(self.day.year, self.day.month, self.day.day, *hhmm, tzinfo=tz)

    def action_create(self) -> None:
        """Book the form's appointment."""
        start = self._form_start()
        minutes = ascii_digits(self.query_one("#appt-minutes", Input).value) or "0"
        staff_id = ascii_digits(self.query_one("#appt-staff", Input).value.strip())
        service = self.query_one("#appt-service", Input).value.strip()
        customer = self.query_one("#appt-customer", Input).value.strip()
        if start is None:
            self.say(tr("Type the time, e.g. 14:30."), "error")
            self.query_one("#appt-time", Input).focus()
            return
        if not customer and not self.customer_member:
            self.say(tr("Give the customer: a phone, a member id, or tap their card."), "error")
            self.query_one("#appt-customer", Input).focus()
            return
        if not service or not staff_id or int(minutes) < 5:
            self.say(tr("Fill in the service, staff number and minutes (5 or more)."), "error")
            return
        params: dict[str, Any] = {
            "start": start.isoformat(),
            "minutes": int(minutes),
            "staff_id": staff_id,
            "service": service,
            "note": self.query_one("#appt-note", Input).value.strip(),
        }
        if self.customer_member:
            params["customer"] = self.customer_member
        else:
            params.update(customer_params(customer))
        self.call_api("create", "appointment.create", params, session=True)

    def done_create(self, result: dict[str, Any]) -> None:
        for name in ("appt-time", "appt-customer", "appt-service", "appt-note"):
            self.query_one(f"#{name}", Input).value = ""
        self.customer_member = None
        self.say(tr("Booked."), "ok")
        self.action_reload()

    def action_move(self) -> None:
        """Move the highlighted appointment to the form's time (and staff)."""
        appt = self._selected()
        if appt is None:
            self.say(tr("Pick an appointment in the list first."), "error")
            return
        start = self._form_start()
        if start is None:
            self.say(tr("Type the new time, e.g. 14:30, then press F9."), "error")
            self.query_one("#appt-time", Input).focus()
            return
        params: dict[str, Any] = {
            "appointment_id": appt["appointment_id"],
            "start": start.isoformat(),
        }
        staff_id = ascii_digits(self.query_one("#appt-staff", Input).value.strip())
        if staff_id and staff_id != appt["staff_id"]:
            params["staff_id"] = staff_id
        self.call_api("move", "appointment.update", params, session=True)

    def done_move(self, result: dict[str, Any]) -> None:
        self.say(tr("Moved."), "ok")
        self.action_reload()

    def action_cancel(self) -> None:
        """Cancel the highlighted appointment."""
        appt = self._selected()
        if appt is None:
            self.say(tr("Pick an appointment in the list first."), "error")
            return
        self.call_api(
            "cancel", "appointment.cancel", {"appointment_id": appt["appointment_id"]}, session=True
        )

    def done_cancel(self, result: dict[str, Any]) -> None:
        self.say(tr("Cancelled."), "ok")
        self.action_reload()

    def handle_card(self, message: CardRead) -> None:
        self.call_api("customer", "member.identify", {"token": message.token})

    def done_customer(self, result: dict[str, Any]) -> None:
        self.customer_member = str(result["member_id"])
        self.query_one("#appt-customer", Input).value = str(result.get("name", ""))
        self.say(tr("Customer: {name}.", name=result.get("name", "")), "ok")

    def failed_customer(self, error: ApiError) -> bool:
        self.customer_member = None
        return False

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "appt-customer" and self.customer_member and not event.input.has_focus:
            return
        if event.input.id == "appt-customer" and event.input.has_focus:
            self.customer_member = None
