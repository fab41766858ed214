"""Staff as this terminal knows them: local staff and the club's staff list in force.

Every row carries who created it and when, and who changed it last and when.
A staff member made at the terminal is recorded together with its
``staff_change`` event in one transaction.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from agent.errors import ClubtermError
from agent.offline_queue import events as ev
from agent.offline_queue.database import Database
from agent.offline_queue.entries import StoredEvent
from agent.offline_queue.outbox import Outbox
from agent.offline_queue.pinhash import hash_pin, verify_absent, verify_pin
from agent.staff.permissions import DEFAULT_GROUPS, role_of, union
from agent.staff.staff_list import (
    StaffEntry,
    StaffList,
    parse_staff_list,
    payload_of,
    stored_to_pin,
)

ROLES = ("cashier", "manager", "technician")
# The bundles table's slot that holds the club's staff list in force (its envelope).
STAFF_LIST_SLOT = "staff"
# Who changed a row the club's staff list changed (the audit columns).
BY_CLUB = "club:staff-list"

_STAFF_COLS = ("staff_id, name, role, pin_hash, active, created_by, created_at, updated_by, "
               "updated_at")

_ClubIndex = tuple[StaffList, dict[str, StaffEntry]]


class StaffManagedByClub(ClubtermError):
    """Local staff may not be created: the club's staff list is in force here."""


class RecordNotFound(ClubtermError, LookupError):
    """No such staff member, appointment or event."""


class StaffRecords:
    """Staff, their badges and PINs (hashes only), and the club's staff list."""

    def __init__(self, db: Database, outbox: Outbox):
        self.db = db
        self.outbox = outbox
        self._staff_list_cache: tuple[Any, _ClubIndex | None] | None = None

    def put_staff(self, staff_id: str, name: str, role: str, *, by: str | None,
                  badges: Sequence[str] | None = None, pin: str | None = None) -> dict[str, Any]:
        """Create or change a staff member; ``badges`` (tokens) replace the old ones
        when given, ``pin`` sets a new PIN (stored as a scrypt hash only)."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        pin_hash = hash_pin(pin) if pin is not None else None
        with self.db.write("saving staff") as conn:
            now = self.db.now_text()
            if conn.execute("UPDATE staff SET name = ?, role = ?, active = 1, updated_by = ?, "
                            "updated_at = ?, pin_hash = coalesce(?, pin_hash) "
                            "WHERE staff_id = ?",
                            (name, role, by, now, pin_hash, staff_id)).rowcount == 0:
                conn.execute("INSERT INTO staff (staff_id, name, role, pin_hash, active, "
                             "created_by, created_at, updated_by, updated_at) "
                             "VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?)",
                             (staff_id, name, role, pin_hash, by, now, by, now))
            if badges is not None:
                conn.execute("DELETE FROM staff_badges WHERE staff_id = ?", (staff_id,))
                conn.executemany("INSERT OR REPLACE INTO staff_badges (token, staff_id) "
                                 "VALUES (?, ?)", [(token, staff_id) for token in badges])
        found = self.staff(staff_id)
        assert found is not None
        return found

    def _staff_dict(self, row: Sequence[Any]) -> dict[str, Any]:
        (staff_id, name, role, pin_hash, active, created_by, created_at, updated_by,
         updated_at) = row
        tokens = [str(t) for (t,) in self.db.execute_sql(
            "SELECT token FROM staff_badges WHERE staff_id = ? ORDER BY token", (staff_id,))]
        club = self._club_staff_index()
        entry = club[1].get(staff_id) if club is not None else None
        if club is not None and entry is not None:
            groups, granted = list(entry.groups), club[0].permissions_of(entry)
            source = "club"
        else:
            groups, granted = [role], union([role], DEFAULT_GROUPS)
            source = "local"
        return {"staff_id": staff_id, "name": name, "role": role, "active": bool(active),
                "has_pin": pin_hash is not None, "badges": tokens, "groups": groups,
                "permissions": sorted(granted), "source": source, "created_by": created_by,
                "created_at": created_at, "updated_by": updated_by, "updated_at": updated_at}

    # ------------------------------------------------------------------ the club's staff list

    def _club_staff_index(self) -> _ClubIndex | None:
        """The staff list in force (parsed once per saved version), with its index."""
        with self.db.guard("reading staff"):
            row = self.db.execute_sql("SELECT version, saved_at FROM bundles WHERE slot = ?",
                                      (STAFF_LIST_SLOT,)).fetchone()
            key = None if row is None else tuple(row)
            cached = self._staff_list_cache
            if cached is not None and cached[0] == key:
                return cached[1]
            value: _ClubIndex | None = None
            if row is not None:
                (envelope,) = self.db.execute_sql(
                    "SELECT envelope FROM bundles WHERE slot = ?", (STAFF_LIST_SLOT,)).fetchone()
                # Verified before it was saved: parsed again, not checked again.
                staff_list = parse_staff_list(payload_of(json.loads(envelope)))
                value = (staff_list, {e.staff_id: e for e in staff_list.staff})
        self._staff_list_cache = (key, value)
        return value

    def club_staff_list(self) -> StaffList | None:
        """The club's staff list in force here, or None (local staff only)."""
        index = self._club_staff_index()
        return None if index is None else index[0]

    def staff_list_version(self) -> int | None:
        """The version of the club's staff list in force, or None."""
        with self.db.guard("reading staff"):
            row = self.db.execute_sql("SELECT version FROM bundles WHERE slot = ?",
                                      (STAFF_LIST_SLOT,)).fetchone()
        return None if row is None else int(row[0])

    def replace_club_staff(self, staff_list: StaffList, envelope: Mapping[str, Any], *,
                           keep_local: bool) -> dict[str, Any]:
        """Put ``staff_list`` (already accepted) in force, in one transaction.

        Everyone in the list is written as the list says (a local member with the
        same id becomes the club's); club staff no longer listed are deactivated.
        Other local staff stay as they are if ``keep_local`` (an offline-only box)
        and are deactivated otherwise: the club manages staff. Nobody is deleted,
        so history keeps its names. Returns ``{"version", "staff", "deactivated"}``.
        """
        listed = {e.staff_id for e in staff_list.staff}
        with self.db.write("saving the club's staff list") as conn:
            now = self.db.now_text()
            old = self._club_staff_index()
            old_club = set(old[1]) if old is not None else set()
            active_before = {str(r[0]) for r in conn.execute(
                "SELECT staff_id FROM staff WHERE active = 1")}
            for entry in staff_list.staff:
                role = role_of(entry.groups, staff_list.permissions_of(entry))
                values = (entry.name, role, entry.pin_hash, int(entry.active), BY_CLUB, now)
                if conn.execute("UPDATE staff SET name = ?, role = ?, pin_hash = ?, active = ?, "
                                "updated_by = ?, updated_at = ? WHERE staff_id = ?",
                                (*values, entry.staff_id)).rowcount == 0:
                    conn.execute("INSERT INTO staff (name, role, pin_hash, active, updated_by, "
                                 "updated_at, staff_id, created_by, created_at) "
                                 "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                 (*values, entry.staff_id, BY_CLUB, now))
                conn.execute("DELETE FROM staff_badges WHERE staff_id = ?", (entry.staff_id,))
                # The club's word wins over a local badge of the same token.
                conn.executemany("INSERT OR REPLACE INTO staff_badges (token, staff_id) "
                                 "VALUES (?, ?)", [(t, entry.staff_id) for t in entry.badges])
            gone = (active_before - listed) if not keep_local else \
                (old_club & active_before) - listed
            conn.executemany("UPDATE staff SET active = 0, updated_by = ?, updated_at = ? "
                             "WHERE staff_id = ?", [(BY_CLUB, now, s) for s in sorted(gone)])
            conn.execute("INSERT OR REPLACE INTO bundles (slot, version, envelope, reason, "
                         "saved_at) VALUES (?, ?, ?, NULL, ?)",
                         (STAFF_LIST_SLOT, staff_list.version,
                          json.dumps(dict(envelope), separators=(",", ":")), now))
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
        with self.db.write("saving staff") as conn:
            if self.staff_list_version() is not None and not offline_only:
                raise StaffManagedByClub(
                    "the club manages this terminal's staff: add the person at the club; "
                    "they can sign in here once the club's staff list arrives")
            if conn.execute("SELECT 1 FROM staff WHERE staff_id = ?",
                            (staff_id,)).fetchone() is not None:
                raise ValueError(f"staff member {staff_id!r} already exists")
            taken = conn.execute(
                "SELECT staff_id FROM staff_badges WHERE token IN "  # noqa: S608 (placeholders only)
                f"({', '.join('?' for _ in badges)}) LIMIT 1", list(badges)).fetchone() \
                if badges else None
            if taken is not None:
                raise ValueError(f"the badge belongs to staff member {taken[0]}")
            body = {"action": "create", "target_staff_id": staff_id, "name": name,
                    "groups": [role], "pin": stored_to_pin(pin_hash), "badges": list(badges),
                    "active": True}
            ev.validate_body("staff_change", body)
            stored = self.outbox.append_in_tx("staff_change", body, at, ev.format_at(at), by,
                                              offline)
            now = self.db.now_text()
            conn.execute("INSERT INTO staff (staff_id, name, role, pin_hash, active, "
                         "created_by, created_at, updated_by, updated_at) "
                         "VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?)",
                         (staff_id, name, role, pin_hash, by, now, by, now))
            conn.executemany("INSERT INTO staff_badges (token, staff_id) VALUES (?, ?)",
                             [(token, staff_id) for token in badges])
        found = self.staff(staff_id)
        assert found is not None
        return found, stored

    def staff(self, staff_id: str) -> dict[str, Any] | None:
        """A staff member (without the PIN hash), or None."""
        with self.db.guard("reading staff"):
            row = self.db.execute_sql(f"SELECT {_STAFF_COLS} FROM staff WHERE staff_id = ?",  # noqa: S608 (constant text)
                                      (staff_id,)).fetchone()
            return None if row is None else self._staff_dict(row)

    def staff_by_badge(self, token: str) -> dict[str, Any] | None:
        """The active staff member whose badge is ``token``, or None."""
        with self.db.guard("reading staff"):
            row = self.db.execute_sql(
                f"SELECT {_STAFF_COLS} FROM staff WHERE active = 1 AND staff_id = "  # noqa: S608 (constant text)
                "(SELECT staff_id FROM staff_badges WHERE token = ?)", (token,)).fetchone()
            return None if row is None else self._staff_dict(row)

    def list_staff(self, *, include_inactive: bool = False) -> list[dict[str, Any]]:
        """Staff members by name."""
        where = "" if include_inactive else " WHERE active = 1"
        with self.db.guard("reading staff"):
            rows = self.db.execute_sql(
                f"SELECT {_STAFF_COLS} FROM staff{where} ORDER BY name").fetchall()  # noqa: S608 (constant text)
            return [self._staff_dict(r) for r in rows]

    def set_staff_active(self, staff_id: str, active: bool, *, by: str | None) -> None:
        """Deactivate (or reactivate) a staff member; history stays."""
        with self.db.write("saving staff") as conn:
            n = conn.execute("UPDATE staff SET active = ?, updated_by = ?, updated_at = ? "
                             "WHERE staff_id = ?",
                             (int(active), by, self.db.now_text(), staff_id)).rowcount
        if n == 0:
            raise RecordNotFound(f"no staff member {staff_id}")

    def verify_staff_pin(self, staff_id: str, pin: str) -> bool:
        """True if ``staff_id`` is active, has a PIN and ``pin`` is it.

        An unknown, inactive or PIN-less id costs one scrypt check too (against a
        dummy hash), so the time taken does not tell which ids exist.
        """
        with self.db.guard("reading staff"):
            row = self.db.execute_sql("SELECT pin_hash FROM staff WHERE staff_id = ? "
                                      "AND active = 1", (staff_id,)).fetchone()
        if row is None or row[0] is None:
            return verify_absent(pin)
        return verify_pin(pin, str(row[0]))
