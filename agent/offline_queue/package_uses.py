"""(1.3) Check-ins: a ``package_use`` checked and recorded in one write transaction.

Two tills checking in the last visit of a package at once: the second reads the
first's use in its own write transaction (the balance ``visits.<package_id>`` is the
cached one plus this terminal's own unreflected uses) and is refused
``package_used_up``; nothing can take a package below zero at one terminal. Across
terminals while offline, ``offline_max`` (the bundle's
``offline.max_package_uses_per_member_day``) bounds what each terminal gives one
member per local day (docs/protocol/club.md, "Visit packages").
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from agent.offline_queue import events as ev
from agent.offline_queue.entries import StoredEvent
from agent.rules import packages as pk

if TYPE_CHECKING:
    from agent.offline_queue.outbox import Outbox


class PackageRefused(ev.InvalidEvent):
    """A check-in the store refuses in its write transaction; nothing was recorded.
    ``reason``: ``package_unknown``, ``package_not_started``, ``package_frozen``,
    ``package_expired``, ``package_used_up``, ``package_offline_limit``."""

    def __init__(self, reason: str, message: str, params: dict[str, Any] | None = None):
        self.reason = reason
        self.params = dict(params or {})
        super().__init__(message)


@dataclass(frozen=True)
class UseCheck:
    """The club-local day of the check-in, its bounds (epoch µs) and the offline bound
    (None online)."""

    today: date
    start_us: int
    end_us: int
    offline_max: int | None


def append_package_use(outbox: Outbox, body: dict[str, Any], *, at: datetime,
                       staff_id: str | None, offline: bool,
                       check: UseCheck) -> tuple[StoredEvent, int | None]:
    """Check and record one check-in; return it with the visits left (None for an
    unlimited membership). A body with ``request_id`` this member already used is
    answered with the earlier check-in (a retry after a lost answer), never a second."""
    ev.validate_body("package_use", body)
    at_text = ev.format_at(at)
    member_id, package_id = str(body["member_id"]), str(body["package_id"])
    kind = pk.visits_kind(package_id)
    request_id = body.get("request_id")
    with outbox.db.write("recording a check-in"):
        if isinstance(request_id, str):
            done = outbox.event_for_request("package_use", member_id, request_id)
            if done is not None:
                return done, outbox.members.usable_balances(member_id).get(kind)
        record = outbox.members.member(member_id)
        pkg = with_own_freezes(outbox, member_id, pk.find_package(record, package_id))
        left = outbox.members.usable_balances(member_id).get(kind, 0)
        used_offline = 0
        if check.offline_max is not None:
            used_offline = int(outbox.db.execute_sql(
                "SELECT coalesce(sum(json_extract(body, '$.units')), 0) FROM events "
                "WHERE member_id = ? AND type = 'package_use' AND state != 'rejected' "
                "AND at_us >= ? AND at_us < ? AND json_extract(body, '$.offline')",
                (member_id, check.start_us, check.end_us)).fetchone()[0])
        try:
            refusal = pk.use_refusal(pkg, None if pkg is not None and pkg.get("visits_total")
                                     is None else left, int(body["units"]), check.today,
                                     used_today_offline=used_offline,
                                     offline_max=check.offline_max)
        except pk.PackageError as exc:
            raise PackageRefused("package_unknown", f"The club's record of this package "
                                 f"cannot be read: {exc}.", {"package_id": package_id}) from exc
        if refusal is not None:
            raise PackageRefused(refusal.reason, refusal.message, dict(refusal.params))
        stored = outbox.append_in_tx("package_use", body, at, at_text, staff_id, offline)
        after = outbox.members.usable_balances(member_id).get(kind)
    return stored, None if pkg is not None and pkg.get("visits_total") is None else after


def with_own_freezes(outbox: Outbox, member_id: str,
                     pkg: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """The package with this terminal's own freezes of it that the club's record does
    not show yet (rejected ones left out): a freeze counts here at once."""
    if pkg is None:
        return None
    rows = outbox.db.execute_sql(
        "SELECT body FROM events WHERE member_id = ? AND type = 'package_freeze' "
        "AND state != 'rejected' AND json_extract(body, '$.package_id') = ? ORDER BY seq",
        (member_id, str(pkg["package_id"]))).fetchall()
    if not rows:
        return pkg
    frozen = [dict(f) for f in pkg.get("frozen") or [] if isinstance(f, Mapping)]
    for (text,) in rows:
        body = json.loads(text)
        span = {"from": body["from"], "until": body["until"]}
        if span not in frozen:
            frozen.append(span)
    return {**pkg, "frozen": frozen}


def append_package_freeze(outbox: Outbox, body: dict[str, Any], *, at: datetime,
                          staff_id: str | None, offline: bool, today: date) -> StoredEvent:
    """Check and record one freeze in one write transaction: the member holds the
    package, and :func:`agent.rules.packages.freeze_refusal` allows the period with
    every freeze known here (the club's and this terminal's own)."""
    ev.validate_body("package_freeze", body)
    at_text = ev.format_at(at)
    member_id, package_id = str(body["member_id"]), str(body["package_id"])
    with outbox.db.write("recording a package freeze"):
        pkg = with_own_freezes(outbox, member_id,
                               pk.find_package(outbox.members.member(member_id), package_id))
        if pkg is None:
            raise PackageRefused("package_unknown", "This member holds no such package.",
                                 {"package_id": package_id})
        try:
            refusal = pk.freeze_refusal(pkg, date.fromisoformat(body["from"]),
                                        date.fromisoformat(body["until"]), today)
        except pk.PackageError as exc:
            raise PackageRefused("package_unknown", f"The club's record of this package "
                                 f"cannot be read: {exc}.", {"package_id": package_id}) from exc
        if refusal is not None:
            raise PackageRefused(refusal.reason, refusal.message, dict(refusal.params))
        return outbox.append_in_tx("package_freeze", body, at, at_text, staff_id, offline)


def check_package_refund_in_tx(outbox: Outbox, sale_id: str, sale: Mapping[str, Any],
                               units: Mapping[int, int] | None,
                               earlier: list[tuple[int, Mapping[int, int]]]) -> dict[str, int]:
    """A refund of a sale that sold packages, checked in its write transaction: refused
    ``package_used`` (RefundNotPossible) when the package it would take back was used —
    its usable visits (the club's balance plus this terminal's own unreflected uses)
    are fewer than the visits the refund takes back, or, for a membership, this
    terminal recorded a check-in of it since the sale. Returns the balance changes the
    refund makes here at once (``visits.<id>`` −visits taken back), so that a package
    refunded here is not used here before the club's record comes back.

    ``units``: line → units refunded (None: the whole sale); ``earlier``: this
    terminal's earlier refunds by line of the sale, each (seq, line → units). A sale
    the club has not applied yet (no package of it in the record) takes nothing back:
    nobody could have used it. Other terminals' check-ins count once they are in the
    club's record (docs/protocol/club.md, "Visit packages and memberships")."""
    member_id = sale.get("member_id")
    if not isinstance(member_id, str):
        return {}
    record = outbox.members.member(member_id)
    packages = pk.member_packages(record)
    if not any(isinstance(p.get("sold_by"), list) for p in packages):
        return {}
    applied = int(((record or {}).get("applied") or {}).get(outbox.terminal_id, 0) or 0)
    pending: dict[int, int] = {}
    for seq, lines in earlier:
        if seq > applied:  # the club's record does not show this refund yet
            for line, qty in lines.items():
                pending[line] = pending.get(line, 0) + qty
    take = pk.refund_take(packages, sale_id, units, pending)
    if not take.visits and not take.unlimited:
        return {}
    used: dict[str, int] = {}
    if take.unlimited:
        sale_seq = outbox.db.execute_sql("SELECT seq FROM events WHERE id = ?",
                                          (sale_id,)).fetchone()
        used = {str(pid): int(n) for pid, n in outbox.db.execute_sql(
            "SELECT json_extract(body, '$.package_id'), count(*) FROM events "
            "WHERE member_id = ? AND type = 'package_use' AND state != 'rejected' "
            "AND seq > ? GROUP BY 1", (member_id, int(sale_seq[0]) if sale_seq else 0)
        ).fetchall() if pid in take.unlimited}
    refusal = pk.refund_refusal(take, outbox.members.usable_balances(member_id), used)
    if refusal is not None:
        raise ev.RefundNotPossible(refusal.reason, refusal.message, dict(refusal.params))
    return {pk.visits_kind(pid): -visits for pid, visits in take.visits.items() if visits}
