"""Local operations data for the staff UI: staff, attendance, appointments, cash.

Part of :class:`agent.offline_queue.store.Store` (a mixin so the outbox file stays
readable). Whatever is also a protocol event (attendance, appointment, expense,
cash receipt) is recorded together with its event in one transaction: the UI's
list and the outbox never disagree. Every row carries who created it and when,
and who changed it last and when.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from agent.errors import ClubtermError
from agent.offline_queue import events as ev
from agent.offline_queue.pinhash import hash_pin, verify_absent, verify_pin
from agent.offline_queue.uuid7 import uuid7_str

if TYPE_CHECKING:
    from agent.offline_queue.models import BoundModels
    from agent.offline_queue.store import StoredEvent

ROLES = ("cashier", "manager", "technician")


class RecordNotFound(ClubtermError, LookupError):
    """No such staff member, appointment or event."""


class AppointmentConflict(ClubtermError):
    """An appointment overlaps another active one of the same staff member."""

    def __init__(self, message: str, other_id: str):
        self.other_id = other_id
        super().__init__(message)


class LocalDataMixin:
    """Staff, attendance, appointments, expenses and cash receipts."""

    if TYPE_CHECKING:
        db: Any
        m: BoundModels
        clock: Callable[[], datetime]

        def _guard(self, action: str) -> AbstractContextManager[None]: ...
        def _writable(self, action: str) -> None: ...
        def _now_text(self) -> str: ...
        def _append_in_tx(self, type_: str, body: dict[str, Any], at: datetime,
                          at_text: str, staff_id: str | None,
                          offline: bool) -> StoredEvent: ...

    # ------------------------------------------------------------------ staff

    def put_staff(self, staff_id: str, name: str, role: str, *, by: str | None,
                  badges: Sequence[str] | None = None, pin: str | None = None) -> dict[str, Any]:
        """Create or change a staff member; ``badges`` (tokens) replace the old ones
        when given, ``pin`` sets a new PIN (stored as a scrypt hash only)."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        pin_hash = hash_pin(pin) if pin is not None else None
        self._writable("saving staff")
        now = self._now_text()
        staff = self.m.Staff
        with self._guard("saving staff"), self.db.atomic():
            row = staff.get_or_none(staff.staff_id == staff_id)
            if row is None:
                staff.insert(staff_id=staff_id, name=name, role=role, pin_hash=pin_hash,
                             active=1, created_by=by, created_at=now, updated_by=by,
                             updated_at=now).execute()
            else:
                changes: dict[Any, Any] = {staff.name: name, staff.role: role, staff.active: 1,
                                           staff.updated_by: by, staff.updated_at: now}
                if pin_hash is not None:
                    changes[staff.pin_hash] = pin_hash
                staff.update(changes).where(staff.staff_id == staff_id).execute()
            if badges is not None:
                badge = self.m.StaffBadge
                badge.delete().where(badge.staff_id == staff_id).execute()
                for token in badges:
                    badge.replace(token=token, staff_id=staff_id).execute()
        found = self.staff(staff_id)
        assert found is not None
        return found

    def _staff_dict(self, row: Any) -> dict[str, Any]:
        badge = self.m.StaffBadge
        tokens = [b.token for b in badge.select().where(badge.staff_id == row.staff_id)
                  .order_by(badge.token)]
        return {"staff_id": row.staff_id, "name": row.name, "role": row.role,
                "active": bool(row.active), "has_pin": row.pin_hash is not None,
                "badges": tokens, "created_by": row.created_by, "created_at": row.created_at,
                "updated_by": row.updated_by, "updated_at": row.updated_at}

    def staff(self, staff_id: str) -> dict[str, Any] | None:
        """A staff member (without the PIN hash), or None."""
        with self._guard("reading staff"):
            row = self.m.Staff.get_or_none(self.m.Staff.staff_id == staff_id)
            return None if row is None else self._staff_dict(row)

    def staff_by_badge(self, token: str) -> dict[str, Any] | None:
        """The active staff member whose badge is ``token``, or None."""
        with self._guard("reading staff"):
            badge = self.m.StaffBadge.get_or_none(self.m.StaffBadge.token == token)
            if badge is None:
                return None
            row = self.m.Staff.get_or_none((self.m.Staff.staff_id == badge.staff_id)
                                           & (self.m.Staff.active == 1))
            return None if row is None else self._staff_dict(row)

    def list_staff(self, *, include_inactive: bool = False) -> list[dict[str, Any]]:
        """Staff members by name."""
        staff = self.m.Staff
        with self._guard("reading staff"):
            query = staff.select().order_by(staff.name)
            if not include_inactive:
                query = query.where(staff.active == 1)
            return [self._staff_dict(r) for r in query]

    def set_staff_active(self, staff_id: str, active: bool, *, by: str | None) -> None:
        """Deactivate (or reactivate) a staff member; history stays."""
        self._writable("saving staff")
        staff = self.m.Staff
        with self._guard("saving staff"), self.db.atomic():
            n = staff.update({staff.active: int(active), staff.updated_by: by,
                              staff.updated_at: self._now_text()}).where(
                staff.staff_id == staff_id).execute()
        if n == 0:
            raise RecordNotFound(f"no staff member {staff_id}")

    def verify_staff_pin(self, staff_id: str, pin: str) -> bool:
        """True if ``staff_id`` is active, has a PIN and ``pin`` is it.

        An unknown, inactive or PIN-less id costs one scrypt check too (against a
        dummy hash), so the time taken does not tell which ids exist.
        """
        with self._guard("reading staff"):
            row = self.m.Staff.get_or_none((self.m.Staff.staff_id == staff_id)
                                           & (self.m.Staff.active == 1))
        if row is None or row.pin_hash is None:
            return verify_absent(pin)
        return verify_pin(pin, row.pin_hash)

    # ------------------------------------------------------------------ attendance

    def clock_staff(self, staff_id: str, action: str, *, at: datetime, by: str | None,
                    identified_by: str | None, offline: bool,
                    corrected_by: str | None = None, reason: str | None = None
                    ) -> StoredEvent:
        """Clock a staff member in or out: the attendance event and the local row.

        A manager's correction (no badge, no PIN) carries ``corrected_by`` and
        ``reason`` in the event (extra keys; the club keeps them)."""
        body: dict[str, Any] = {"staff_id": staff_id, "action": action,
                                "identified_by": identified_by}
        if corrected_by is not None:
            body.update(corrected_by=corrected_by, reason=reason)
        ev.validate_body("attendance", body)
        at_text = ev.format_at(at)
        self._writable("recording attendance")
        with self._guard("recording attendance"), self.db.atomic():
            stored = self._append_in_tx("attendance", body, at, at_text, by, offline)
            now = self._now_text()
            self.m.Attendance.insert(event_id=stored.id, staff_id=staff_id, action=action,
                                     at=at_text, at_us=ev.epoch_us(at),
                                     identified_by=identified_by, created_by=by,
                                     created_at=now, updated_by=by, updated_at=now).execute()
        return stored

    def attendance_between(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """Clock-ins and -outs in [start, end), oldest first."""
        att = self.m.Attendance
        with self._guard("reading attendance"):
            rows = att.select().where((att.at_us >= ev.epoch_us(start))
                                      & (att.at_us < ev.epoch_us(end))).order_by(att.at_us)
            return [_audited(r, ("event_id", "staff_id", "action", "at", "identified_by"))
                    for r in rows]

    # ------------------------------------------------------------------ appointments

    def _appointment_dict(self, row: Any) -> dict[str, Any]:
        return _audited(row, ("appointment_id", "customer", "service", "staff_id", "start",
                              "minutes", "note", "status"))

    def appointment(self, appointment_id: str) -> dict[str, Any] | None:
        """One appointment (cancelled ones too), or None."""
        appt = self.m.Appointment
        with self._guard("reading appointments"):
            row = appt.get_or_none(appt.appointment_id == appointment_id)
            return None if row is None else self._appointment_dict(row)

    def appointments_between(self, start: datetime, end: datetime, *,
                             include_cancelled: bool = False) -> list[dict[str, Any]]:
        """Appointments that begin in [start, end), by start time."""
        appt = self.m.Appointment
        with self._guard("reading appointments"):
            query = appt.select().where((appt.start_us >= ev.epoch_us(start))
                                        & (appt.start_us < ev.epoch_us(end)))
            if not include_cancelled:
                query = query.where(appt.status == "active")
            return [self._appointment_dict(r) for r in query.order_by(appt.start_us)]

    def overlapping_appointments(self, staff_id: str, start: datetime, minutes: int, *,
                                 exclude: str | None = None) -> list[dict[str, Any]]:
        """Active appointments of ``staff_id`` that overlap [start, start+minutes)."""
        appt = self.m.Appointment
        begin = ev.epoch_us(start)
        end = ev.epoch_us(start + timedelta(minutes=minutes))
        with self._guard("reading appointments"):
            query = appt.select().where((appt.staff_id == staff_id) & (appt.status == "active")
                                        & (appt.start_us < end) & (appt.end_us > begin))
            if exclude is not None:
                query = query.where(appt.appointment_id != exclude)
            return [self._appointment_dict(r) for r in query.order_by(appt.start_us)]

    def _check_free(self, staff_id: str | None, start: datetime, minutes: int,
                    exclude: str | None) -> None:
        if staff_id is None:
            return
        clash = self.overlapping_appointments(staff_id, start, minutes, exclude=exclude)
        if clash:
            other = clash[0]
            raise AppointmentConflict(
                f"{staff_id} already has an appointment at {other['start']} "
                f"({other['minutes']} min)", other["appointment_id"])

    def create_appointment(self, *, customer: str | None, service: str | None,
                           staff_id: str | None, start: datetime, minutes: int,
                           note: str | None, by: str | None, at: datetime, offline: bool,
                           appointment_id: str | None = None,
                           ) -> tuple[dict[str, Any], StoredEvent]:
        """Book an appointment (event ``appointment``/``create``); raises
        AppointmentConflict when it overlaps one of the same staff member."""
        if minutes <= 0:
            raise ValueError("an appointment lasts at least one minute")
        appointment_id = appointment_id or uuid7_str()
        body = {"appointment_id": appointment_id, "action": "create", "customer": customer,
                "service": service, "staff_id": staff_id, "start": ev.format_at(start),
                "minutes": minutes, "note": note}
        ev.validate_body("appointment", body)
        self._writable("booking an appointment")
        with self._guard("booking an appointment"), self.db.atomic():
            self._check_free(staff_id, start, minutes, None)
            stored = self._append_in_tx("appointment", body, at, ev.format_at(at), by, offline)
            now = self._now_text()
            self.m.Appointment.insert(
                appointment_id=appointment_id, customer=customer, service=service,
                staff_id=staff_id, start=body["start"], start_us=ev.epoch_us(start),
                end_us=ev.epoch_us(start + timedelta(minutes=minutes)), minutes=minutes,
                note=note, status="active", created_by=by, created_at=now, updated_by=by,
                updated_at=now).execute()
            found = self.appointment(appointment_id)
        assert found is not None
        return found, stored

    def update_appointment(self, appointment_id: str, *, by: str | None, at: datetime,
                           offline: bool, customer: str | None = None,
                           service: str | None = None, staff_id: str | None = None,
                           start: datetime | None = None, minutes: int | None = None,
                           note: str | None = None) -> tuple[dict[str, Any], StoredEvent]:
        """Change an active appointment (only the arguments given change)."""
        self._writable("changing an appointment")
        appt = self.m.Appointment
        with self._guard("changing an appointment"), self.db.atomic():
            row = appt.get_or_none((appt.appointment_id == appointment_id)
                                   & (appt.status == "active"))
            if row is None:
                raise RecordNotFound(f"no active appointment {appointment_id}")
            new_start = start if start is not None else ev.parse_at(row.start)
            new_minutes = minutes if minutes is not None else int(row.minutes)
            new_staff = staff_id if staff_id is not None else row.staff_id
            body = {"appointment_id": appointment_id, "action": "update",
                    "customer": customer if customer is not None else row.customer,
                    "service": service if service is not None else row.service,
                    "staff_id": new_staff, "start": ev.format_at(new_start),
                    "minutes": new_minutes, "note": note if note is not None else row.note}
            ev.validate_body("appointment", body)
            self._check_free(new_staff, new_start, new_minutes, appointment_id)
            stored = self._append_in_tx("appointment", body, at, ev.format_at(at), by, offline)
            appt.update({appt.customer: body["customer"], appt.service: body["service"],
                         appt.staff_id: new_staff, appt.start: body["start"],
                         appt.start_us: ev.epoch_us(new_start),
                         appt.end_us: ev.epoch_us(new_start + timedelta(minutes=new_minutes)),
                         appt.minutes: new_minutes, appt.note: body["note"],
                         appt.updated_by: by, appt.updated_at: self._now_text()}).where(
                appt.appointment_id == appointment_id).execute()
            found = self.appointment(appointment_id)
        assert found is not None
        return found, stored

    def cancel_appointment(self, appointment_id: str, *, by: str | None, at: datetime,
                           offline: bool) -> StoredEvent:
        """Cancel an active appointment (the row stays, marked cancelled)."""
        self._writable("cancelling an appointment")
        appt = self.m.Appointment
        with self._guard("cancelling an appointment"), self.db.atomic():
            row = appt.get_or_none((appt.appointment_id == appointment_id)
                                   & (appt.status == "active"))
            if row is None:
                raise RecordNotFound(f"no active appointment {appointment_id}")
            body = {"appointment_id": appointment_id, "action": "cancel",
                    "customer": row.customer, "service": row.service, "staff_id": row.staff_id,
                    "start": row.start, "minutes": row.minutes, "note": row.note}
            stored = self._append_in_tx("appointment", body, at, ev.format_at(at), by, offline)
            appt.update({appt.status: "cancelled", appt.updated_by: by,
                         appt.updated_at: self._now_text()}).where(
                appt.appointment_id == appointment_id).execute()
        return stored

    # ------------------------------------------------------------------ cash

    def add_cash_entry(self, kind: str, amount: int, category: str | None, note: str | None,
                       *, by: str | None, at: datetime, offline: bool) -> StoredEvent:
        """Record an expense or a cash receipt (``kind``): the event and the row."""
        if kind not in ("expense", "cash_receipt"):
            raise ValueError("kind must be 'expense' or 'cash_receipt'")
        body = {"amount": amount, "category": category, "note": note}
        ev.validate_body(kind, body)
        at_text = ev.format_at(at)
        self._writable(f"recording an {kind}")
        with self._guard(f"recording an {kind}"), self.db.atomic():
            stored = self._append_in_tx(kind, body, at, at_text, by, offline)
            now = self._now_text()
            self.m.CashEntry.insert(event_id=stored.id, kind=kind, amount=amount,
                                    category=category, note=note, at=at_text,
                                    at_us=ev.epoch_us(at), created_by=by, created_at=now,
                                    updated_by=by, updated_at=now).execute()
        return stored

    def cash_entries(self, start: datetime, end: datetime,
                     kind: str | None = None) -> list[dict[str, Any]]:
        """Expenses and cash receipts in [start, end), oldest first."""
        cash = self.m.CashEntry
        with self._guard("reading cash entries"):
            query = cash.select().where((cash.at_us >= ev.epoch_us(start))
                                        & (cash.at_us < ev.epoch_us(end)))
            if kind is not None:
                query = query.where(cash.kind == kind)
            return [_audited(r, ("event_id", "kind", "amount", "category", "note", "at"))
                    for r in query.order_by(cash.at_us)]


def _audited(row: Any, keys: Sequence[str]) -> dict[str, Any]:
    out = {k: getattr(row, k) for k in keys}
    for k in ("created_by", "created_at", "updated_by", "updated_at"):
        out[k] = getattr(row, k)
    return out

