"""Local operations data for the staff UI: staff, attendance, appointments, cash.

``store.records`` (:class:`LocalRecords`). Whatever is also a protocol event
(attendance, appointment, expense, cash receipt, a staff member made here) is
recorded together with its event in one transaction (through
:meth:`Outbox.append_in_tx`): the UI's list and the outbox never disagree. Every
row carries who created it and when, and who changed it last and when. Staff
live in :mod:`agent.offline_queue.staff_records`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from agent.errors import ClubtermError
from agent.offline_queue import events as ev
from agent.offline_queue.entries import StoredEvent
from agent.offline_queue.staff_records import (
    BY_CLUB,
    ROLES,
    STAFF_LIST_SLOT,
    RecordNotFound,
    StaffManagedByClub,
    StaffRecords,
)
from agent.offline_queue.uuid7 import uuid7_str

__all__ = ["BY_CLUB", "ROLES", "STAFF_LIST_SLOT", "AppointmentConflict", "LocalRecords",
           "RecordNotFound", "StaffManagedByClub"]

_AUDIT = ("created_by", "created_at", "updated_by", "updated_at")
_ATTENDANCE = ("event_id", "staff_id", "action", "at", "identified_by", *_AUDIT)
_APPOINTMENT = ("appointment_id", "customer", "customer_name", "service", "staff_id", "start",
                "minutes", "note", "status", *_AUDIT)
_CASH = ("event_id", "kind", "amount", "category", "note", "at", *_AUDIT)


class AppointmentConflict(ClubtermError):
    """An appointment overlaps another active one of the same staff member."""

    def __init__(self, message: str, other_id: str):
        self.other_id = other_id
        super().__init__(message)


def _rows(cols: Sequence[str], rows: list[Any]) -> list[dict[str, Any]]:
    return [dict(zip(cols, row, strict=True)) for row in rows]


class LocalRecords(StaffRecords):
    """Staff (see :class:`StaffRecords`), attendance, appointments, expenses and cash
    receipts."""

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
        with self.db.write("recording attendance") as conn:
            stored = self.outbox.append_in_tx("attendance", body, at, at_text, by, offline)
            now = self.db.now_text()
            conn.execute("INSERT INTO attendance (event_id, staff_id, action, at, at_us, "
                         "identified_by, created_by, created_at, updated_by, updated_at) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         (stored.id, staff_id, action, at_text, ev.epoch_us(at),
                          identified_by, by, now, by, now))
        return stored

    def attendance_between(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """Clock-ins and -outs in [start, end), oldest first."""
        with self.db.guard("reading attendance"):
            rows = self.db.execute_sql(
                f"SELECT {', '.join(_ATTENDANCE)} FROM attendance WHERE at_us >= ? "  # noqa: S608 (constant text)
                "AND at_us < ? ORDER BY at_us", (ev.epoch_us(start), ev.epoch_us(end))
            ).fetchall()
        return _rows(_ATTENDANCE, rows)

    # ------------------------------------------------------------------ appointments

    def _appointments(self, where: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        rows = self.db.execute_sql(
            f"SELECT {', '.join(_APPOINTMENT)} FROM appointments WHERE {where} "  # noqa: S608 (constant text)
            "ORDER BY start_us", params).fetchall()
        return _rows(_APPOINTMENT, rows)

    def appointment(self, appointment_id: str) -> dict[str, Any] | None:
        """One appointment (cancelled ones too), or None."""
        with self.db.guard("reading appointments"):
            found = self._appointments("appointment_id = ?", (appointment_id,))
        return found[0] if found else None

    def appointments_between(self, start: datetime, end: datetime, *,
                             include_cancelled: bool = False) -> list[dict[str, Any]]:
        """Appointments that begin in [start, end), by start time."""
        where = "start_us >= ? AND start_us < ?"
        if not include_cancelled:
            where += " AND status = 'active'"
        with self.db.guard("reading appointments"):
            return self._appointments(where, (ev.epoch_us(start), ev.epoch_us(end)))

    def overlapping_appointments(self, staff_id: str, start: datetime, minutes: int, *,
                                 exclude: str | None = None) -> list[dict[str, Any]]:
        """Active appointments of ``staff_id`` that overlap [start, start+minutes)."""
        begin = ev.epoch_us(start)
        end = ev.epoch_us(start + timedelta(minutes=minutes))
        where = "staff_id = ? AND status = 'active' AND start_us < ? AND end_us > ?"
        params: list[Any] = [staff_id, end, begin]
        if exclude is not None:
            where += " AND appointment_id != ?"
            params.append(exclude)
        with self.db.guard("reading appointments"):
            return self._appointments(where, params)

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
                           customer_name: str | None = None,
                           ) -> tuple[dict[str, Any], StoredEvent]:
        """Book an appointment (event ``appointment``/``create``); raises
        AppointmentConflict when it overlaps one of the same staff member.
        ``customer_name``: who a customer that is not a member is (with a phone)."""
        if minutes <= 0:
            raise ValueError("an appointment lasts at least one minute")
        appointment_id = appointment_id or uuid7_str()
        body = {"appointment_id": appointment_id, "action": "create", "customer": customer,
                "service": service, "staff_id": staff_id, "start": ev.format_at(start),
                "minutes": minutes, "note": note}
        if customer_name:
            body["customer_name"] = customer_name
        ev.validate_body("appointment", body)
        with self.db.write("booking an appointment") as conn:
            self._check_free(staff_id, start, minutes, None)
            stored = self.outbox.append_in_tx("appointment", body, at, ev.format_at(at), by,
                                              offline)
            now = self.db.now_text()
            conn.execute(
                "INSERT INTO appointments (appointment_id, customer, customer_name, service, "
                "staff_id, start, start_us, end_us, minutes, note, status, created_by, "
                "created_at, updated_by, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'active', ?, ?, ?, ?)",
                (appointment_id, customer, customer_name or None, service, staff_id,
                 body["start"],
                 ev.epoch_us(start), ev.epoch_us(start + timedelta(minutes=minutes)), minutes,
                 note, by, now, by, now))
            found = self.appointment(appointment_id)
        assert found is not None
        return found, stored

    def _active(self, appointment_id: str) -> dict[str, Any]:
        found = self._appointments("appointment_id = ? AND status = 'active'",
                                   (appointment_id,))
        if not found:
            raise RecordNotFound(f"no active appointment {appointment_id}")
        return found[0]

    def update_appointment(self, appointment_id: str, *, by: str | None, at: datetime,
                           offline: bool, customer: str | None = None,
                           service: str | None = None, staff_id: str | None = None,
                           start: datetime | None = None, minutes: int | None = None,
                           note: str | None = None, customer_name: str | None = None,
                           ) -> tuple[dict[str, Any], StoredEvent]:
        """Change an active appointment (only the arguments given change; a new
        ``customer`` without ``customer_name`` forgets the old name)."""
        with self.db.write("changing an appointment") as conn:
            row = self._active(appointment_id)
            new_start = start if start is not None else ev.parse_at(row["start"])
            new_minutes = minutes if minutes is not None else int(row["minutes"])
            new_staff = staff_id if staff_id is not None else row["staff_id"]
            body = {"appointment_id": appointment_id, "action": "update",
                    "customer": customer if customer is not None else row["customer"],
                    "service": service if service is not None else row["service"],
                    "staff_id": new_staff, "start": ev.format_at(new_start),
                    "minutes": new_minutes, "note": note if note is not None else row["note"]}
            name = customer_name if customer_name is not None else (
                row["customer_name"] if body["customer"] == row["customer"] else None)
            if name:
                body["customer_name"] = name
            ev.validate_body("appointment", body)
            self._check_free(new_staff, new_start, new_minutes, appointment_id)
            stored = self.outbox.append_in_tx("appointment", body, at, ev.format_at(at), by,
                                              offline)
            conn.execute(
                "UPDATE appointments SET customer = ?, customer_name = ?, service = ?, "
                "staff_id = ?, start = ?, start_us = ?, end_us = ?, minutes = ?, note = ?, "
                "updated_by = ?, updated_at = ? WHERE appointment_id = ?",
                (body["customer"], name or None, body["service"], new_staff, body["start"],
                 ev.epoch_us(new_start), ev.epoch_us(new_start + timedelta(minutes=new_minutes)),
                 new_minutes, body["note"], by, self.db.now_text(), appointment_id))
            found = self.appointment(appointment_id)
        assert found is not None
        return found, stored

    def cancel_appointment(self, appointment_id: str, *, by: str | None, at: datetime,
                           offline: bool) -> StoredEvent:
        """Cancel an active appointment (the row stays, marked cancelled)."""
        with self.db.write("cancelling an appointment") as conn:
            row = self._active(appointment_id)
            body = {"appointment_id": appointment_id, "action": "cancel",
                    **{k: row[k] for k in ("customer", "service", "staff_id", "start",
                                           "minutes", "note")}}
            if row["customer_name"]:
                body["customer_name"] = row["customer_name"]
            stored = self.outbox.append_in_tx("appointment", body, at, ev.format_at(at), by,
                                              offline)
            conn.execute("UPDATE appointments SET status = 'cancelled', updated_by = ?, "
                         "updated_at = ? WHERE appointment_id = ?",
                         (by, self.db.now_text(), appointment_id))
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
        with self.db.write(f"recording an {kind}") as conn:
            stored = self.outbox.append_in_tx(kind, body, at, at_text, by, offline)
            now = self.db.now_text()
            conn.execute("INSERT INTO cash_entries (event_id, kind, amount, category, note, at, "
                         "at_us, created_by, created_at, updated_by, updated_at) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         (stored.id, kind, amount, category, note, at_text, ev.epoch_us(at),
                          by, now, by, now))
        return stored

    def cash_entries(self, start: datetime, end: datetime,
                     kind: str | None = None) -> list[dict[str, Any]]:
        """Expenses and cash receipts in [start, end), oldest first."""
        where = "at_us >= ? AND at_us < ?"
        params: list[Any] = [ev.epoch_us(start), ev.epoch_us(end)]
        if kind is not None:
            where += " AND kind = ?"
            params.append(kind)
        with self.db.guard("reading cash entries"):
            rows = self.db.execute_sql(
                f"SELECT {', '.join(_CASH)} FROM cash_entries WHERE {where} "  # noqa: S608 (constant text)
                "ORDER BY at_us", params).fetchall()
        return _rows(_CASH, rows)
