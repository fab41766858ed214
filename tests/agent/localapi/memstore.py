"""An in-memory stand-in for ``agent.offline_queue.Store`` and a minimal quote.

Used by the local-API tests for the transport and the method contracts (params,
roles, errors); the tests in tests/e2e/ and tests/agent/daemon/ use the real store
and rules engine. ``fail_appends`` simulates a disk that refuses writes.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from agent.errors import LimitExceeded, StorageError


@dataclass
class StoredEvent:
    id: str
    seq: int
    type: str
    at: datetime
    body: dict[str, Any]
    staff_id: str | None
    offline: bool


@dataclass
class QueueStats:
    pending: int
    oldest_at: datetime | None
    rejected: int
    by_type: dict[str, int]


class MemStore:
    def __init__(self) -> None:
        self.members: dict[str, dict[str, Any]] = {}
        self.by_token: dict[str, str] = {}
        self.outbox: list[StoredEvent] = []
        self.staff: dict[str, dict[str, Any]] = {}
        self.pins: dict[str, str] = {}
        self.appointments: dict[str, dict[str, Any]] = {}
        self.fail_appends = False
        self.append_thread: str | None = None
        self.lock = threading.Lock()

    def add_member(self, record: dict[str, Any]) -> None:
        self.members[record["member_id"]] = record
        for ident in record.get("identifiers", []):
            self.by_token[ident] = record["member_id"]

    def add_staff(self, staff_id: str, name: str, role: str, pin: str, badge: str) -> None:
        self.staff[staff_id] = {"staff_id": staff_id, "name": name, "role": role}
        self.pins[staff_id] = pin
        self.by_token_staff = getattr(self, "by_token_staff", {})
        self.by_token_staff[badge] = staff_id

    # -- Store API
    def append(self, type: str, body: dict[str, Any], *, at: datetime, staff_id: str | None,
               offline: bool) -> StoredEvent:
        self.append_thread = threading.current_thread().name
        if self.fail_appends:
            raise StorageError("disk full")
        with self.lock:
            ev = StoredEvent(str(uuid.uuid4()), len(self.outbox) + 1, type, at, dict(body),
                             staff_id, offline)
            self.outbox.append(ev)
        return ev

    def lookup(self, token: str) -> dict[str, Any] | None:
        mid = self.by_token.get(token)
        return dict(self.members[mid]) if mid else None

    def member(self, member_id: str) -> dict[str, Any] | None:
        return self.members.get(member_id)

    def usable_balances(self, member_id: str) -> dict[str, int]:
        balances = dict(self.members[member_id]["balances"])
        for ev in self.outbox:
            if ev.type == "sale" and ev.body.get("member_id") == member_id:
                balances["points"] = balances.get("points", 0) - ev.body["redeemed_points"] + sum(
                    p["points"] for p in ev.body["points_earned"])
        return balances

    def offline_counters(self, member_id: str, start: datetime, end: datetime) -> tuple[int, int]:
        return (0, 0)

    def queue_stats(self) -> QueueStats:
        return QueueStats(len(self.outbox), self.outbox[0].at if self.outbox else None, 0, {})

    def members_version(self) -> int:
        return 7

    def events(self, state: str | None = None) -> list[StoredEvent]:
        return list(self.outbox)

    # -- local data
    def staff_by_token(self, token: str) -> dict[str, Any] | None:
        sid = getattr(self, "by_token_staff", {}).get(token)
        return self.staff.get(sid) if sid else None

    def staff_get(self, staff_id: str) -> dict[str, Any] | None:
        return self.staff.get(staff_id)

    def staff_check_pin(self, staff_id: str, pin: str) -> bool:
        return self.pins.get(staff_id) == pin

    def appointment_put(self, appt: dict[str, Any], *, by: str, at: datetime) -> None:
        self.appointments[appt["appointment_id"]] = dict(appt)

    def appointment_get(self, appointment_id: str) -> dict[str, Any] | None:
        return self.appointments.get(appointment_id)

    def appointments_between(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        return [a for a in self.appointments.values()
                if start <= datetime.fromisoformat(a["start"]) < end]


def simple_quote(bundle: Any, request: dict[str, Any], member: dict[str, Any] | None,
                 ctx: dict[str, Any]) -> dict[str, Any]:
    """No discounts; 1 point per 100; points redeemable up to the balance and half the net."""
    gross = sum(line["qty"] * line["unit_price"] for line in request["lines"])
    redeem = request.get("redeem_points") or 0
    available = member["balances"].get("points", 0) if member else 0
    cap = gross // 2
    if redeem == "max":
        redeem = min(available, cap)
    if redeem > available:
        raise LimitExceeded("points_balance", "The member does not have that many points.")
    if redeem > cap:
        raise LimitExceeded("max_redeem_share", "At most half of the sale can be paid in points.")
    payable = gross - redeem
    earned = [{"rule": "base", "points": payable // 100}] if member else []
    return {"gross": gross, "discounts": [], "net": gross, "redeemed_points": redeem,
            "redeemed_value": redeem, "credits_used": [], "payable": payable,
            "points_earned": earned, "credits_earned": [], "lottery_entries": 0,
            "rules_version": 1, "explain": [], "limits_held": []}
