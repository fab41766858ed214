"""Local operations data for the staff UI: staff, attendance, appointments, cash.

Part of :class:`agent.offline_queue.store.Store` (a mixin so the outbox file stays
readable). Whatever is also a protocol event (attendance, appointment, expense,
cash receipt) is recorded together with its event in one transaction: the UI's
list and the outbox never disagree. Every row carries who created it and when,
and who changed it last and when.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from agent.errors import ClubtermError
from agent.offline_queue import events as ev
from agent.offline_queue.pinhash import hash_pin, verify_absent, verify_pin
from agent.offline_queue.uuid7 import uuid7_str
from agent.staff.permissions import DEFAULT_GROUPS, role_of, union
from agent.staff.staff_list import (
    StaffEntry,
    StaffList,
    parse_staff_list,
    payload_of,
    stored_to_pin,
)

if TYPE_CHECKING:
    from agent.offline_queue.models import BoundModels
    from agent.offline_queue.store import StoredEvent

ROLES = ("cashier", "manager", "technician")
# The bundles table's slot that holds the club's staff list in force (its envelope).
STAFF_LIST_SLOT = "staff"
# Who changed a row the club's staff list changed (the audit columns).
BY_CLUB = "club:staff-list"


class StaffManagedByClub(ClubtermError):
    """Local staff may not be created: the club's staff list is in force here."""


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
        club = self._club_staff_index()
        entry = club[1].get(row.staff_id) if club is not None else None
        if club is not None and entry is not None:
            groups, granted = list(entry.groups), club[0].permissions_of(entry)
            source = "club"
        else:
            groups, granted = [row.role], union([row.role], DEFAULT_GROUPS)
            source = "local"
        return {"staff_id": row.staff_id, "name": row.name, "role": row.role,
                "active": bool(row.active), "has_pin": row.pin_hash is not None,
                "badges": tokens, "groups": groups, "permissions": sorted(granted),
                "source": source, "created_by": row.created_by, "created_at": row.created_at,
                "updated_by": row.updated_by, "updated_at": row.updated_at}

    # ------------------------------------------------------------------ the club's staff list

    _staff_list_cache: tuple[Any, tuple[StaffList, dict[str, StaffEntry]] | None] | None = None

    def _club_staff_index(self) -> tuple[StaffList, dict[str, StaffEntry]] | None:
        """The staff list in force (parsed once per saved version), with its index."""
        bundle = self.m.Bundle
        with self._guard("reading staff"):
            row = (bundle.select(bundle.version, bundle.saved_at)
                   .where(bundle.slot == STAFF_LIST_SLOT).first())
            key = None if row is None else (row.version, row.saved_at)
            cached = self._staff_list_cache
            if cached is not None and cached[0] == key:
                return cached[1]
            value: tuple[StaffList, dict[str, StaffEntry]] | None = None
            if row is not None:
                full = bundle.get(bundle.slot == STAFF_LIST_SLOT)
                # Verified before it was saved: parsed again, not checked again.
                staff_list = parse_staff_list(payload_of(json.loads(full.envelope)))
                value = (staff_list, {e.staff_id: e for e in staff_list.staff})
        self._staff_list_cache = (key, value)
        return value

    def club_staff_list(self) -> StaffList | None:
        """The club's staff list in force here, or None (local staff only)."""
        index = self._club_staff_index()
        return None if index is None else index[0]

    def staff_list_version(self) -> int | None:
        """The version of the club's staff list in force, or None."""
        bundle = self.m.Bundle
        with self._guard("reading staff"):
            row = (bundle.select(bundle.version).where(bundle.slot == STAFF_LIST_SLOT)
                   .first())
        return None if row is None else int(row.version)

    def replace_club_staff(self, staff_list: StaffList, envelope: Mapping[str, Any], *,
                           keep_local: bool) -> dict[str, Any]:
        """Put ``staff_list`` (already accepted) in force, in one transaction.

        Everyone in the list is written as the list says (a local member with the
        same id becomes the club's); club staff no longer listed are deactivated.
        Other local staff stay as they are if ``keep_local`` (an offline-only box)
        and are deactivated otherwise: the club manages staff. Nobody is deleted,
        so history keeps its names. Returns ``{"version", "staff", "deactivated"}``.
        """
        self._writable("saving the club's staff list")
        now = self._now_text()
        staff, badge, bundle = self.m.Staff, self.m.StaffBadge, self.m.Bundle
        listed = {e.staff_id for e in staff_list.staff}
        with self._guard("saving the club's staff list"), self.db.atomic():
            old = self._club_staff_index()
            old_club = set(old[1]) if old is not None else set()
            active_before = {r.staff_id for r in staff.select(staff.staff_id)
                             .where(staff.active == 1)}
            for entry in staff_list.staff:
                role = role_of(entry.groups, staff_list.permissions_of(entry))
                values = {"name": entry.name, "role": role, "pin_hash": entry.pin_hash,
                          "active": int(entry.active), "updated_by": BY_CLUB,
                          "updated_at": now}
                if staff.update(values).where(staff.staff_id == entry.staff_id).execute() == 0:
                    staff.insert(staff_id=entry.staff_id, created_by=BY_CLUB, created_at=now,
                                 **values).execute()
                badge.delete().where(badge.staff_id == entry.staff_id).execute()
                for token in entry.badges:
                    # The club's word wins over a local badge of the same token.
                    badge.replace(token=token, staff_id=entry.staff_id).execute()
            gone = (active_before - listed) if not keep_local else \
                (old_club & active_before) - listed
            if gone:
                staff.update({staff.active: 0, staff.updated_by: BY_CLUB,
                              staff.updated_at: now}).where(
                    staff.staff_id.in_(sorted(gone))).execute()
            bundle.replace(slot=STAFF_LIST_SLOT, version=staff_list.version,
                           envelope=json.dumps(dict(envelope), separators=(",", ":")),
                           reason=None, saved_at=now).execute()
            self._staff_list_cache = None
        deactivated = sorted(gone | {e.staff_id for e in staff_list.staff
                                     if not e.active and e.staff_id in active_before})
        return {"version": staff_list.version, "staff": len(staff_list.staff),
                "deactivated": deactivated}

    def create_local_staff(self, staff_id: str, name: str, role: str, *, pin: str | None,
                           badges: Sequence[str], by: str | None, at: datetime,
                           offline: bool, offline_only: bool) -> tuple[dict[str, Any],
                                                                      StoredEvent]:
        """A manager creates a staff member at the terminal: the row and a
        ``staff_change`` event (so the club learns of it) in one transaction.

        Refused (:class:`StaffManagedByClub`) while a club staff list is in force,
        unless the box is ``offline_only``; a taken id or badge is a ValueError.
        """
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        pin_hash = hash_pin(pin) if pin is not None else None
        self._writable("saving staff")
        staff, badge = self.m.Staff, self.m.StaffBadge
        with self._guard("saving staff"), self.db.atomic():
            if self.staff_list_version() is not None and not offline_only:
                raise StaffManagedByClub(
                    "the club manages this terminal's staff: add the person at the club; "
                    "they can sign in here once the club's staff list arrives")
            if staff.get_or_none(staff.staff_id == staff_id) is not None:
                raise ValueError(f"staff member {staff_id!r} already exists")
            taken = badge.get_or_none(badge.token.in_(list(badges))) if badges else None
            if taken is not None:
                raise ValueError(f"the badge belongs to staff member {taken.staff_id}")
            body = {"action": "create", "target_staff_id": staff_id, "name": name,
                    "groups": [role], "pin": stored_to_pin(pin_hash), "badges": list(badges),
                    "active": True}
            ev.validate_body("staff_change", body)
            stored = self._append_in_tx("staff_change", body, at, ev.format_at(at), by,
                                        offline)
            now = self._now_text()
            staff.insert(staff_id=staff_id, name=name, role=role, pin_hash=pin_hash, active=1,
                         created_by=by, created_at=now, updated_by=by,
                         updated_at=now).execute()
            for token in badges:
                badge.insert(token=token, staff_id=staff_id).execute()
        found = self.staff(staff_id)
        assert found is not None
        return found, stored

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

