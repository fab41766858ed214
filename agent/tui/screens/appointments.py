"""Appointments: the day per staff member; create, move, cancel; overlaps refused."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widgets import DataTable, Input, Label, Static

from agent.errors import ApiError
from agent.localapi import UNKNOWN_MEMBER
from agent.tui.basket import is_product_code
from agent.tui.i18n import N_, ascii_digits, current, number, ordered, tr
from agent.tui.messages import CardRead
from agent.tui.screens.base import ClubScreen
from agent.tui.screens.recent_sales import ConfirmDialog

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


def is_phone(text: str) -> bool:
    """``0912 111 2222`` or ``+49 …`` (not a product or club code)."""
    cleaned = ascii_digits(text.strip())
    return set(cleaned) <= PHONE_CHARS and len(cleaned) >= 6 and not is_product_code(cleaned)


def split_name_phone(text: str) -> tuple[str, str] | None:
    """``Ali R. 0912 111 2222`` → (``Ali R.``, ``0912 111 2222``); a bare phone
    has an empty name; None when the text does not end with a phone."""
    words = text.strip().split()
    for i in range(len(words)):
        tail = " ".join(words[i:])
        if is_phone(tail):
            return " ".join(words[:i]), ascii_digits(tail)
    return None


def customer_params(text: str) -> dict[str, str]:
    """How a typed customer goes to the API: a phone, or a member id."""
    cleaned = ascii_digits(text.strip())
    if is_phone(cleaned):
        return {"phone": cleaned}
    return {"customer": cleaned}


def customer_cell(appt: dict[str, Any]) -> str:
    """Who the appointment is for: a member's name, or a non-member's name and phone
    (the agent keeps a non-member's ``customer_name`` with the booking)."""
    customer = str(appt.get("customer") or "")
    name = str(appt.get("customer_name") or customer)
    if not customer.startswith("tel:"):
        return name
    phone = customer[4:]
    if name and name not in (phone, customer):
        return f"{name} · {phone}"
    return tr("{phone} (not a member)", phone=phone)


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
        self._customer_label = ""
        # A past start the cashier confirmed (the form's start, as sent).
        self._past_ok: str | None = None

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
                id="appt-customer", compact=True,
                placeholder=tr("club code, tap a card, or name and phone"),
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
        self.call_api("appointment.list", {"date": self.day.isoformat()}, on_done=self.done_list)

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
        # In time order, the staff column beside each row: grouped by staff
        # without a separator the rows looked out of order (#15 item 13).
        return sorted(rows, key=lambda a: (datetime.fromisoformat(a["start"]),
                                           str(a["staff_name"])))

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
                        customer_cell(appt),
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
        note = self.query_one("#appt-note", Input).value.strip()
        params: dict[str, Any] = {
            "start": start.isoformat(),
            "minutes": int(minutes),
            "staff_id": staff_id,
            "service": service,
            "note": note,
        }
        named = split_name_phone(customer)
        if self.customer_member:
            params["customer"] = self.customer_member
        elif named is not None:
            params["phone"] = named[1]
            if named[0]:
                params["customer_name"] = named[0]
        else:
            # A club code (any case) or a member id: the agent finds the member
            # by code first, then books them (#15 item 13).
            self.call_api("member.identify", {"code": customer},
                          on_done=self.done_customer_code, on_failed=self.failed_customer_code)
            return
        if not self._start_confirmed(start, lambda: self.action_create()):
            return
        self.call_api("appointment.create", params, on_done=self.done_create, session=True)

    def _start_confirmed(self, start: datetime, again: Any) -> bool:
        """True if ``start`` is not past or the cashier said it may be; else ask."""
        if start >= self.club_app.now() or self._past_ok == start.isoformat():
            self._past_ok = None
            return True
        loc = current()
        question = tr("{time} on {day} has already passed. Book it anyway?",
                      time=loc.time(start), day=loc.date(start.date()))

        def answered(yes: bool | None) -> None:
            if yes:
                self._past_ok = start.isoformat()
                again()
            else:
                self.say(tr("Not booked: change the time."), "info")
                self.query_one("#appt-time", Input).focus()

        self.app.push_screen(ConfirmDialog(question), answered)
        return False

    def _choose_customer(self, member_id: str | None, label: str) -> None:
        """Book ``member_id``; the field shows ``label`` (its own change event
        then keeps the choice: only the cashier's typing clears it)."""
        self.customer_member = member_id
        self._customer_label = label
        self.query_one("#appt-customer", Input).value = label

    def done_customer_code(self, result: dict[str, Any]) -> None:
        self._choose_customer(str(result["member_id"]), str(result.get("name") or ""))
        self.action_create()

    def failed_customer_code(self, error: ApiError) -> bool:
        if error.code != UNKNOWN_MEMBER:
            return False
        # Not a club code: perhaps a member id (the agent says if not).
        customer = self.query_one("#appt-customer", Input).value.strip()
        self._choose_customer(ascii_digits(customer), customer)
        self.action_create()
        return True

    def done_create(self, result: dict[str, Any]) -> None:
        for name in ("appt-time", "appt-service", "appt-note"):
            self.query_one(f"#{name}", Input).value = ""
        self._choose_customer(None, "")
        self.say(tr("Booked."), "ok")
        # Ready for the next booking: the time, not the note typed last.
        self.query_one("#appt-time", Input).focus()
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
        if not self._start_confirmed(start, lambda: self.action_move()):
            return
        self.call_api("appointment.update", params, on_done=self.done_move, session=True)

    def done_move(self, result: dict[str, Any]) -> None:
        self.say(tr("Moved."), "ok")
        self.action_reload()

    def action_cancel(self) -> None:
        """Cancel the highlighted appointment."""
        appt = self._selected()
        if appt is None:
            self.say(tr("Pick an appointment in the list first."), "error")
            return
        tz = self.club_app.now().tzinfo
        start = datetime.fromisoformat(appt["start"]).astimezone(tz)
        question = tr("Cancel {customer}, {service} at {time}?", customer=customer_cell(appt),
                      service=appt["service"], time=current().time(start))

        def answered(yes: bool | None) -> None:
            if yes:
                self.call_api("appointment.cancel",
                              {"appointment_id": appt["appointment_id"]},
                              on_done=self.done_cancel, session=True)
            else:
                self.say(tr("Not cancelled."), "info")

        self.app.push_screen(ConfirmDialog(question), answered)

    def done_cancel(self, result: dict[str, Any]) -> None:
        self.say(tr("Cancelled."), "ok")
        self.action_reload()

    def handle_card(self, message: CardRead) -> None:
        self.call_api("member.identify", {"token": message.token},
                      on_done=self.done_customer, on_failed=self.failed_customer)

    def done_customer(self, result: dict[str, Any]) -> None:
        self._choose_customer(str(result["member_id"]), str(result.get("name", "")))
        self.say(tr("Customer: {name}.", name=result.get("name", "")), "ok")

    def failed_customer(self, error: ApiError) -> bool:
        self.customer_member = None
        return False

    def on_input_changed(self, event: Input.Changed) -> None:
        # Typing another customer drops the chosen member; the name put in the
        # field when the member was chosen does not.
        if event.input.id == "appt-customer" and event.value != self._customer_label:
            self.customer_member = None
            self._customer_label = ""
