"""Staff at the terminal: sign-in (PIN throttle, badge taps), clocking, new staff.

A PIN attempt is counted before its hash is checked and PIN checks of one staff id
run one at a time, so concurrent guesses cannot pass the limit
(``sessions.PinAttempts``); an unknown id costs as long as a known one. A badge is
no credential on its own: only a single-use reference handed out for a tap on this
terminal's own reader signs in (``sessions.BadgeTaps``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

from agent.errors import ApiError, ClubtermError, StorageError
from agent.localapi import CONFLICT, INVALID_PARAMS, NOT_ALLOWED, NOT_FOUND, STORAGE
from agent.localapi.services.core import STORAGE_MESSAGE, Caller, ServiceCore, _granted, log
from agent.localapi.services.params import Params, _p, _sentence, _text
from agent.localapi.services.reports import _attendance_rows
from agent.localapi.sessions import BadgeTap
from agent.offline_queue.local_data import StaffManagedByClub
from agent.staff import permissions as perm
from agent.staff.staff_list import check_badge


class StaffMethods(ServiceCore):
    """``staff.*`` and the badge taps the daemon reports."""

    async def staff_login(self, params: Params, conn: Caller | None) -> dict[str, Any]:
        """``staff.login`` with a badge tap reference, or staff_id and PIN."""
        staff, _tap = await self._staff_from(params, need_pin=True)
        granted = _granted(staff)
        session = self.sessions.open(staff["staff_id"], staff.get("name") or "", staff["role"],
                                     granted)
        log.info("staff %s signed in as %s", session.staff_id, session.role)
        return {"session": session.token, "staff_id": session.staff_id, "name": session.name,
                "role": session.role, "groups": list(staff.get("groups") or [staff["role"]]),
                "permissions": perm.as_table(granted), "idle_s": self.sessions.idle_s,
                "max_s": self.sessions.max_s}

    async def staff_create(self, params: Params, conn: Caller | None) -> dict[str, Any]:
        """``staff.create`` (extension): a manager adds a local staff member.

        Recorded with a ``staff_change`` event so the club learns of it. Refused
        while the club's staff list is in force, unless ``[terminal] offline_only``.
        """
        session = await self._session(params, perm.STAFF_ADD)
        staff_id = _text(params, "staff_id", max_len=32) or ""
        if any(ch.isspace() for ch in staff_id):
            raise ApiError(INVALID_PARAMS, "The staff id must not contain spaces.",
                           {"param": "staff_id"})
        name = _text(params, "name", max_len=100) or ""
        role = _p(params, "role", str, required=False, default="cashier") or "cashier"
        if role not in perm.ROLES:
            raise ApiError(INVALID_PARAMS, f"The role must be one of {', '.join(perm.ROLES)}.",
                           {"param": "role"})
        given_pin = params.get("pin")
        pin = given_pin if isinstance(given_pin, str) else None
        if given_pin is not None and (pin is None or not pin.isascii()
                                      or not pin.isdigit() or not 4 <= len(pin) <= 12):
            raise ApiError(INVALID_PARAMS, "The PIN must be 4 to 12 digits.", {"param": "pin"})
        raw_badges = params.get("badges", [])
        if not isinstance(raw_badges, list) or len(raw_badges) > 16:
            raise ApiError(INVALID_PARAMS, "Badges must be a list of at most 16 badge tokens.",
                           {"param": "badges"})
        badges: list[str] = []
        for item in raw_badges:
            try:
                badges.append(check_badge(item, "badge"))
            except ClubtermError as exc:
                raise ApiError(INVALID_PARAMS, "A badge is not a badge token (tap the badge "
                               "on the reader and use the token shown).",
                               {"param": "badges"}) from exc
        if pin is None and not badges:
            raise ApiError(INVALID_PARAMS, "Give a PIN or a badge, or the person could not "
                           "sign in.", {"param": "pin"})
        try:
            staff, stored = await self.db.call(
                self.records.create_local_staff, staff_id, name, role, pin=pin,
                badges=list(dict.fromkeys(badges)), by=session.staff_id, at=self.clock(),
                offline=not self.view.online(), offline_only=self.offline_only)
        except StaffManagedByClub as exc:
            raise ApiError(NOT_ALLOWED, _sentence(str(exc)),
                           {"reason": "club_manages_staff"}) from exc
        except ValueError as exc:
            raise ApiError(CONFLICT, _sentence(str(exc))) from exc
        except StorageError as exc:
            log.error("could not record a staff member: %s", exc)
            raise ApiError(STORAGE, STORAGE_MESSAGE, {"detail": str(exc)}) from exc
        log.info("staff %s created staff member %s (%s)", session.staff_id, staff_id, role)
        self.view.on_recorded()
        return {"staff_id": staff["staff_id"], "name": staff["name"], "role": staff["role"],
                "permissions": perm.as_table(_granted(staff)),
                "event_id": stored.id}

    async def staff_logout(self, params: Params, conn: Caller | None) -> bool:
        """``staff.logout`` (extension): end a session."""
        token = _p(params, "session", str)
        return self.sessions.close(token)

    async def badge_tapped(self, token: str, reader: str) -> dict[str, Any] | None:
        """The ``card`` event for a staff badge read on this terminal, or None if
        ``token`` is no active staff member's badge.

        The event carries a fresh single-use tap reference in ``token``, never the
        badge token itself: every subscriber sees it. Raises ClubtermError if the
        store cannot say (the caller must then not broadcast the token either).
        """
        staff = await self.db.read(self.records.staff_by_badge, token)
        if staff is None:
            return None
        tap = self.taps.issue(staff["staff_id"], token, reader, self.monotonic())
        return {"type": "card", "kind": "staff_badge", "reader": reader, "token": tap.ref,
                "token_kind": "tap", "expires_s": self.taps.ttl_s, "masked": None,
                "info": None, "member": None,
                "staff": {"staff_id": staff["staff_id"], "name": staff.get("name")}}

    @contextlib.asynccontextmanager
    async def _pin_lock(self, staff_id: str) -> AsyncIterator[None]:
        """Serialise PIN checks of one staff id; the entry goes when nobody holds it."""
        lock, holders = self._pin_locks.setdefault(staff_id, (asyncio.Lock(), [0]))
        holders[0] += 1
        try:
            async with lock:
                yield
        finally:
            holders[0] -= 1
            if holders[0] == 0:
                self._pin_locks.pop(staff_id, None)

    async def _staff_from(self, params: Params, *, need_pin: bool
                          ) -> tuple[dict[str, Any], BadgeTap | None]:
        token = params.get("token")
        staff_id = params.get("staff_id")
        if token is not None:
            if not isinstance(token, str) or not token or len(token) > 200:
                raise ApiError(INVALID_PARAMS, "The badge token is not valid.", {"param": "token"})
            # Only a reference the agent handed out for a tap on its own reader, once,
            # within seconds: a badge token alone (seen, logged, copied) is no credential.
            tap = self.taps.take(token, self.monotonic())
            staff = await self.db.read(self.records.staff, tap.staff_id)
            if staff is None or not staff.get("active", True) or \
                    tap.badge not in (staff.get("badges") or []):
                raise ApiError(NOT_FOUND, "This badge does not belong to any staff member.")
            return dict(staff), tap
        if staff_id is None:
            raise ApiError(INVALID_PARAMS, "Give a badge token, or a staff id and PIN.")
        if not isinstance(staff_id, str) or not staff_id or len(staff_id) > 200:
            raise ApiError(INVALID_PARAMS, "The staff id is not valid.", {"param": "staff_id"})
        pin = params.get("pin")
        if pin is None and not need_pin:
            # Only a manager's correction (checked by the caller) gets here.
            staff = await self.db.read(self.records.staff, staff_id)
            if staff is None or not staff.get("active", True):
                raise ApiError(NOT_FOUND, "There is no staff member with this id.")
            return dict(staff), None
        if not isinstance(pin, str) or not pin or len(pin) > 64:
            raise ApiError(INVALID_PARAMS, "Please enter your PIN.", {"param": "pin"})
        # Counted before the check: concurrent guesses cannot all pass the limit.
        self.pin_attempts.reserve(staff_id, self.monotonic())
        async with self._pin_lock(staff_id):
            # scrypt takes tens of milliseconds: not on the store thread, where it would
            # hold up sales, and not on the loop. An unknown id is hashed as long
            # (against a dummy), so the answer's time does not tell which ids exist.
            ok = await asyncio.to_thread(self.records.verify_staff_pin, staff_id, pin)
            staff = await self.db.read(self.records.staff, staff_id) if ok else None
        if staff is None or not staff.get("active", True):
            # Same answer for an unknown id and a wrong PIN: no guessing of ids.
            raise ApiError(NOT_ALLOWED, "The staff id or PIN is not right.",
                           {"reason": "bad_credentials"})
        self.pin_attempts.succeeded(staff_id)
        return dict(staff), None

    async def staff_clock(self, params: Params, conn: Caller | None) -> dict[str, Any]:
        """``staff.clock``: record an attendance event."""
        action = _p(params, "action", str)
        if action not in ("in", "out"):
            raise ApiError(INVALID_PARAMS, 'The action must be "in" or "out".',
                           {"param": "action"})
        # Clocking needs the person: their badge tap or their PIN. Without either,
        # only a manager's correction with a reason (recorded as such) is taken.
        correction: tuple[str, str] | None = None
        if params.get("token") is None and params.get("pin") is None:
            if params.get("session") is None:
                raise ApiError(INVALID_PARAMS, "Tap your badge or enter your PIN to clock "
                               "in or out.", {"param": "pin", "reason": "pin_or_badge"})
            session = await self._session(params, perm.CLOCK_OTHERS)
            reason = _text(params, "reason", required=False, max_len=200)
            if not reason or not reason.strip():
                raise ApiError(INVALID_PARAMS, "A manager's correction needs a reason.",
                               {"param": "reason"})
            correction = (session.staff_id, reason.strip())
        staff, tap = await self._staff_from(params, need_pin=correction is None)
        try:
            if perm.CLOCK not in _granted(staff):
                raise ApiError(NOT_ALLOWED, f"{staff.get('name') or staff['staff_id']} may not "
                               "clock in or out at this terminal.",
                               {"reason": "role", "permission": perm.CLOCK})
            return await self._clock(staff, action, tap, correction)
        except ApiError:
            # Nothing was recorded (already in, storage): the tap may still be used
            # once, e.g. for "out" after "in" was refused, until it expires.
            if tap is not None:
                self.taps.give_back(tap, self.monotonic())
            raise

    async def _clock(self, staff: Mapping[str, Any], action: str, tap: BadgeTap | None,
                     correction: tuple[str, str] | None = None) -> dict[str, Any]:
        events, end = await self._day_events(self._today())
        rows = _attendance_rows(events, {}, self.clock(), end)
        present = {r["staff_id"] for r in rows if r["present"]}
        name = staff.get("name") or staff["staff_id"]
        if action == "in" and staff["staff_id"] in present:
            raise ApiError(CONFLICT, f"{name} is already clocked in.")
        if action == "out" and staff["staff_id"] not in present:
            raise ApiError(CONFLICT, f"{name} is not clocked in.")
        # identified_by is the badge token itself: it goes to the club in the event,
        # never to the local API's subscribers.
        extra = ({"corrected_by": correction[0], "reason": correction[1]}
                 if correction is not None else {})
        stored = await self._record("an attendance", self.records.clock_staff, staff["staff_id"],
                                    action, at=self.clock(),
                                    by=correction[0] if correction else staff["staff_id"],
                                    identified_by=tap.badge if tap is not None else None,
                                    offline=not self.view.online(),
                                    corrected_by=correction[0] if correction else None,
                                    reason=correction[1] if correction else None)
        at_s = stored.at
        self.view.broadcast({"type": "attendance", "staff_id": staff["staff_id"],
                             "name": name, "action": action, "at": at_s, **extra})
        return {"event_id": stored.id, "at": at_s, "staff_id": staff["staff_id"],
                "name": name, **extra}

