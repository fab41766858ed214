"""Manual balance adjustments at the reader (protocol 1.3, ``balance_adjust``):
``balance.adjust`` and ``balance.adjustments`` (docs/protocol/local-api.md).

Points added by hand ("enter the amount, the system computes the points", or the
points directly), points deducted, credit and units granted by a permitted staff
member with a reason code and a note, within the signed bundle's ``adjustments``
limits. The balance and the limits are checked by the store in the write
transaction that records the event (``Outbox.append_adjustment``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from agent.errors import ApiError, ClubtermError
from agent.localapi import (
    INVALID_PARAMS,
    LIMIT,
    MEMBER_NOT_ACTIVE,
    NOT_ALLOWED,
    UNKNOWN_MEMBER,
)
from agent.localapi.services.core import Caller, ServiceCore, _store_error
from agent.localapi.services.params import Params, _p, _parse_date, _text, request_id_param
from agent.rules.adjust import REASONS, AdjustmentsConfig, points_for_amount
from agent.staff import permissions as perm

log = logging.getLogger("agent.localapi.services")

#: The largest amount or purchase amount ``balance.adjust`` takes (as ``_amount``).
MAX_ADJUST = 10**12
#: Rows of ``balance.adjustments`` at most (the per-staff totals count them all).
MAX_REPORT_ROWS = 200
_ADJUST_KEYS = frozenset({"session", "token", "member_id", "kind", "amount",
                          "points_from_amount", "reason", "note", "preview", "request_id"})
_REPORT_KEYS = frozenset({"session", "date", "staff_id"})


def _only(params: Params, allowed: frozenset[str]) -> None:
    extra = sorted(k for k in params if k not in allowed)
    if extra:
        raise ApiError(INVALID_PARAMS, f"Unknown parameter {extra[0][:40]!r}.",
                       {"param": extra[0][:40], "reason": "bad_param"})


def _kind(params: Params) -> str:
    kind = _p(params, "kind", str)
    if kind != "points" and not (kind.startswith(("credit.", "units.")) and 7 <= len(kind) <= 64
                                 and kind.isprintable() and " " not in kind
                                 and kind.split(".", 1)[1]):
        raise ApiError(INVALID_PARAMS, "The kind must be points, credit.<name> or units.<name>.",
                       {"param": "kind", "reason": "bad_kind"})
    return kind


def _signed(params: Params, name: str) -> int:
    value = _p(params, name, int)
    if value == 0 or abs(value) > MAX_ADJUST:
        raise ApiError(INVALID_PARAMS, f"The {name.replace('_', ' ')} must be a whole number "
                       f"other than 0, at most {MAX_ADJUST:,} either way.",
                       {"param": name, "reason": "bad_amount", "max": MAX_ADJUST})
    return value


class AdjustMethods(ServiceCore):
    """``balance.adjust`` and ``balance.adjustments``."""

    async def balance_adjust(self, params: Params, conn: Caller | None) -> dict[str, Any]:
        """``balance.adjust`` (manager: ``balance_adjust.add``): add or deduct points,
        grant or take back credit/units of one member; ``preview`` answers the
        computed amount and the balance after it without recording anything."""
        _only(params, _ADJUST_KEYS)
        session = await self._session(params, perm.ADJUST)
        bundle = self.view.bundle()
        config = bundle.adjustments if bundle is not None else None
        if config is None:
            raise ApiError(NOT_ALLOWED, "Manual adjustments are not enabled by the club.",
                           {"reason": "adjust_off"})
        kind = _kind(params)
        basis: int | None = None
        if (params.get("amount") is None) == (params.get("points_from_amount") is None):
            raise ApiError(INVALID_PARAMS, "Give either amount or points_from_amount.",
                           {"reason": "invalid_params"})
        if params.get("points_from_amount") is not None:
            basis = _signed(params, "points_from_amount")
            rate = config.points
            if kind != "points" or basis < 0:
                raise ApiError(INVALID_PARAMS, "Points can be computed only from a positive "
                               "purchase amount.", {"param": "points_from_amount",
                                                    "reason": "bad_amount"})
            if rate is None or rate.per_spend is None or rate.points is None:
                raise ApiError(NOT_ALLOWED, "The club does not compute points from an amount "
                               "here; enter the points.", {"reason": "no_earn_rate"})
            amount = points_for_amount(basis, rate.per_spend, rate.points)
            if amount == 0:
                raise ApiError(LIMIT, f"A purchase of {basis} earns no points (1 point per "
                               f"{rate.per_spend}); enter the points instead.",
                               {"reason": "limit", "limit": "no_points", "per_spend":
                                rate.per_spend, "points": rate.points})
        else:
            amount = _signed(params, "amount")
        reason = _p(params, "reason", str)
        if reason not in REASONS:
            raise ApiError(INVALID_PARAMS, f"The reason must be one of {', '.join(REASONS)}.",
                           {"param": "reason", "reason": "bad_reason", "reasons": list(REASONS)})
        note = _text(params, "note", required=config.require_note, max_len=500)
        preview = params.get("preview", False)
        if not isinstance(preview, bool):
            raise ApiError(INVALID_PARAMS, "preview must be true or false.",
                           {"param": "preview", "reason": "wrong_type", "expected": "bool"})
        member = await self._adjusted_member(params)
        if amount < 0 and self.earn_only(member):
            raise ApiError(NOT_ALLOWED, "This member's balance is kept by another merchant; "
                           "it cannot be reduced here.", {"reason": "earn_only"})
        member_id = str(member["member_id"])
        body: dict[str, Any] = {"member_id": member_id, "kind": kind, "amount": amount,
                                "reason": reason, "note": note or None}
        if basis is not None:
            body["basis_amount"] = basis
        request_id = request_id_param(params)
        if request_id is not None:
            body["request_id"] = request_id
        at = self.clock()
        offline = not self.view.online()
        day = bundle.local_day(at) if bundle is not None else self._day_bounds(self._today())
        if preview:
            # The same checks as the append, recording nothing: a refusal shows
            # before the manager confirms.
            try:
                have = await self.db.read(
                    self.outbox.preview_adjustment, body, staff_id=session.staff_id,
                    offline=offline, config=config, day=day)
            except ClubtermError as exc:
                raise _store_error(exc) from exc
            return {"preview": True, "member_id": member_id, "kind": kind,
                    "amount": amount, "basis_amount": basis, "balance": have,
                    "balance_after": have + amount}
        stored, balances = await self._record(
            "a balance adjustment", self.outbox.append_adjustment, body, at=at,
            staff_id=session.staff_id, offline=offline, config=config, day=day)
        return {"event_id": stored.id, "at": stored.at, "member_id": member_id, "kind": kind,
                "amount": amount, "basis_amount": basis, "balances": balances,
                "offline": offline}

    async def _adjusted_member(self, params: Params) -> dict[str, Any]:
        """The member by ``token`` or ``member_id`` (exactly one), active."""
        if (params.get("token") is None) == (params.get("member_id") is None):
            raise ApiError(INVALID_PARAMS, "Give either the member's card (token) or member_id.",
                           {"reason": "invalid_params"})
        if params.get("token") is not None:
            return await self._member_for(self._identifier_of({"token": params["token"]}))
        member_id = _text(params, "member_id", max_len=100)
        member = await self.db.read(self.members.member, member_id)
        if member is None:
            raise ApiError(UNKNOWN_MEMBER, "No member has this id.", {"reason": "unknown_member"})
        if member.get("status") != "active":
            raise ApiError(MEMBER_NOT_ACTIVE, "This member's card is not active; the balance "
                           "cannot be changed here.", {"reason": "member_not_active",
                                                       "status": member.get("status")})
        return dict(member)

    async def balance_adjustments(self, params: Params, conn: Caller | None) -> dict[str, Any]:
        """``balance.adjustments`` (manager: ``balance_adjust.view``): one local day's
        manual adjustments at this terminal, per staff member and row by row."""
        _only(params, _REPORT_KEYS)
        await self._session(params, perm.ADJUST_REPORT)
        day = _parse_date(params["date"]) if params.get("date") is not None else self._today()
        staff_id = _text(params, "staff_id", required=False, max_len=100)
        events, _ = await self._day_events(day)
        adjusts = [e for e in events if e.get("type") == "balance_adjust"
                   and (staff_id is None or e.get("recorded_by") == staff_id)]
        names = await self._staff_names({e.get("recorded_by") for e in adjusts})
        members: dict[str, Any] = {}
        for member_id in {e.get("member_id") for e in adjusts}:
            if isinstance(member_id, str) and len(members) < MAX_REPORT_ROWS:
                record = await self.db.read(self.members.member, member_id)
                members[member_id] = (record or {}).get("name")
        report = adjustment_report(adjusts, names, members)
        return {"date": day.isoformat(), **report}


def adjust_info(config: AdjustmentsConfig | None) -> dict[str, Any] | None:
    """What a client needs to offer manual adjustments (``agent.status.adjustments``):
    None when the bundle turns them off."""
    if config is None:
        return None
    rate = config.points
    return {"points": rate is not None,
            "from_amount": rate is not None and rate.per_spend is not None,
            "per_spend": rate.per_spend if rate is not None else None,
            "points_per_step": rate.points if rate is not None else None,
            "kinds": list(config.credit.kinds) if config.credit is not None else [],
            "require_note": config.require_note, "reasons": list(REASONS)}


def adjustment_report(events: Iterable[Mapping[str, Any]], staff_names: Mapping[str, str],
                      member_names: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The day's manual adjustments (pure): totals per staff member (points added and
    deducted, other kinds by kind) and the rows, newest first, at most
    ``MAX_REPORT_ROWS`` (``truncated`` says so)."""
    per_staff: dict[str, dict[str, Any]] = {}
    rows = []
    totals = {"points_added": 0, "points_deducted": 0, "count": 0}
    for e in events:
        if e.get("type") != "balance_adjust":
            continue
        who = str(e.get("recorded_by") or e.get("staff_id") or "")
        kind, amount = str(e.get("kind")), int(e.get("amount") or 0)
        row = per_staff.setdefault(who, {"staff_id": who or None,
                                         "name": staff_names.get(who, who or None),
                                         "points_added": 0, "points_deducted": 0,
                                         "count": 0, "other": {}})
        row["count"] += 1
        totals["count"] += 1
        if kind == "points":
            key = "points_added" if amount > 0 else "points_deducted"
            row[key] += abs(amount)
            totals[key] += abs(amount)
        else:
            other = row["other"].setdefault(kind, {"added": 0, "deducted": 0})
            other["added" if amount > 0 else "deducted"] += abs(amount)
        rows.append({"event_id": e.get("id"), "at": e.get("at"), "staff_id": who or None,
                     "member_id": e.get("member_id"),
                     "member_name": (member_names or {}).get(str(e.get("member_id"))),
                     "kind": kind, "amount": amount, "reason": e.get("reason"),
                     "note": e.get("note"), "basis_amount": e.get("basis_amount"),
                     "offline": bool(e.get("offline"))})
    rows.sort(key=lambda r: str(r["at"]), reverse=True)
    return {**totals, "per_staff": sorted(per_staff.values(), key=lambda r: str(r["name"])),
            "rows": rows[:MAX_REPORT_ROWS], "truncated": len(rows) > MAX_REPORT_ROWS}
