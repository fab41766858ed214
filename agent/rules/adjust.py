"""Manual balance adjustments (``balance_adjust``, protocol 1.3): the bundle's
``adjustments`` block and the pure arithmetic of one adjustment.

No I/O, no clock: the store passes in what was adjusted today (per member and, while
offline, per staff member), and :func:`adjustment_problem` says whether one more
adjustment is within the bundle's limits (docs/protocol/bundle.md "Adjustments").

Points from an amount (the Vietnamese card systems' "enter the amount, the system
computes the points") use the same floor arithmetic as a ``points`` rule with
``per_spend`` (agent/rules/effects.py): ``amount // per_spend * points``. Worked
example (docs/rules.md "Points from an amount"): 1 point per 1.00 EUR
(``per_spend`` 100, ``points`` 1) and a purchase of 123.45 EUR (12345) give
12345 // 100 * 1 = 123 points; 99 cents give 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agent.rules.rule_parse import Checker

__all__ = ["REASONS", "AdjustmentsConfig", "Allowance", "CreditAdjust", "PointsAdjust",
           "adjustment_problem", "parse_adjustments", "points_for_amount"]

#: The reason codes of a ``balance_adjust`` (docs/protocol/club.md).
REASONS = ("purchase_not_recorded", "goodwill", "correction", "gift", "complaint", "other")
#: Balance kinds an operator may grant besides points (the shared design's kinds).
GRANTABLE_PREFIXES = ("credit.", "units.")
#: The largest number in an adjustment or a limit: 2**53 - 1 (every JSON reader).
MAX_NUMBER = 2**53 - 1


@dataclass(frozen=True, slots=True)
class PointsAdjust:
    """``adjustments.points``: None in a limit means no limit."""

    max_add: int | None = None
    max_deduct: int | None = None
    max_per_member_day: int | None = None
    # The earning rate of "points from an amount" (None: points only typed in).
    per_spend: int | None = None
    points: int | None = None


@dataclass(frozen=True, slots=True)
class CreditAdjust:
    """``adjustments.credit``: the kinds an operator may grant and the limits."""

    kinds: tuple[str, ...] = ()
    max_grant: int | None = None
    max_deduct: int | None = None
    max_per_member_day: int | None = None


@dataclass(frozen=True, slots=True)
class AdjustmentsConfig:
    """The bundle's ``adjustments`` (absent from the bundle: the feature is off)."""

    points: PointsAdjust | None = None
    credit: CreditAdjust | None = None
    require_note: bool = False
    # From the bundle's ``offline`` block: what one staff member may add by hand per
    # club-local day while the terminal is offline (None: no offline limit).
    offline_points_per_staff_day: int | None = None
    offline_credit_per_staff_day: int | None = None


@dataclass(frozen=True, slots=True)
class Allowance:
    """What was already adjusted today, read in the write transaction of the new one.

    ``member_added``: added to this member today, this kind (positive amounts);
    ``staff_added_offline``: added by this staff member today while offline, all
    members, points or all granted kinds together.
    """

    member_added: int = 0
    staff_added_offline: int = 0


def points_for_amount(amount: int, per_spend: int, points: int) -> int:
    """The points a purchase of ``amount`` (minor units) earns at ``points`` per
    ``per_spend``: whole steps only, as the engine's ``per_spend`` rule."""
    if amount < 0 or per_spend < 1 or points < 0:
        raise ValueError("amount and points must be at least 0, per_spend at least 1")
    return amount // per_spend * points


def adjustment_problem(cfg: AdjustmentsConfig | None, kind: str, amount: int, *,
                       offline: bool, allowance: Allowance) -> tuple[str, dict[str, Any]] | None:
    """Why this adjustment is outside the bundle's limits, or None.

    Returns ``(reason, params)``: ``adjust_off`` (no ``adjustments`` block, or none
    for this kind), ``kind_not_grantable``, ``max_add``, ``max_deduct``,
    ``member_day``, ``offline_staff_day``; ``params`` name the limit and what is left.
    The balance itself (never below zero) is the store's check.
    """
    if cfg is None:
        return "adjust_off", {}
    if amount == 0:
        return "zero", {}
    if kind == "points":
        if cfg.points is None:
            return "adjust_off", {"kind": kind}
        most_add, most_deduct = cfg.points.max_add, cfg.points.max_deduct
        member_day = cfg.points.max_per_member_day
        offline_day = cfg.offline_points_per_staff_day
    else:
        if cfg.credit is None:
            return "adjust_off", {"kind": kind}
        if kind not in cfg.credit.kinds:
            return "kind_not_grantable", {"kind": kind, "kinds": list(cfg.credit.kinds)}
        most_add, most_deduct = cfg.credit.max_grant, cfg.credit.max_deduct
        member_day = cfg.credit.max_per_member_day
        offline_day = cfg.offline_credit_per_staff_day
    if amount > 0 and most_add is not None and amount > most_add:
        return "max_add", {"max": most_add}
    if amount < 0 and most_deduct is not None and -amount > most_deduct:
        return "max_deduct", {"max": most_deduct}
    if amount > 0 and member_day is not None and allowance.member_added + amount > member_day:
        return "member_day", {"max": member_day,
                              "left": max(0, member_day - allowance.member_added)}
    if amount > 0 and offline and offline_day is not None \
            and allowance.staff_added_offline + amount > offline_day:
        return "offline_staff_day", {"max": offline_day,
                                     "left": max(0, offline_day - allowance.staff_added_offline)}
    return None


def parse_adjustments(data: Mapping[str, Any], rules: Mapping[str, tuple[str, int, int]]
                      ) -> AdjustmentsConfig | None:
    """The bundle's ``adjustments`` block (None when absent: the feature is off).

    ``rules`` maps a ``points`` rule id with ``per_spend`` to ``(kind, per_spend,
    points)`` for ``points.earn_rule``. Raises RulesError naming the key.
    """
    if "adjustments" not in data:
        return None
    top = Checker("bundle")
    raw = top.obj("adjustments", data["adjustments"])
    check = Checker("bundle adjustments")
    points = None
    if "points" in raw:
        pc = Checker("bundle adjustments.points")
        p = check.obj("points", raw["points"])
        per_spend, pts = _opt(pc, p, "per_spend", 1), _opt(pc, p, "points", 0)
        if (per_spend is None) != (pts is None):
            raise pc.fail("per_spend", "and 'points' go together (points per amount)")
        if "earn_rule" in p:
            if per_spend is not None:
                raise pc.fail("earn_rule", "or 'per_spend' and 'points', not both")
            rule_id = pc.str_("earn_rule", p["earn_rule"])
            found = rules.get(rule_id)
            if found is None:
                raise pc.fail("earn_rule", f"names {rule_id!r}, which is not a 'points' rule "
                                           "with 'per_spend' in this bundle")
            _, per_spend, pts = found
        points = PointsAdjust(max_add=_opt(pc, p, "max_add", 1),
                              max_deduct=_opt(pc, p, "max_deduct", 1),
                              max_per_member_day=_opt(pc, p, "max_per_member_day", 1),
                              per_spend=per_spend, points=pts)
    credit = None
    if "credit" in raw:
        cc = Checker("bundle adjustments.credit")
        c = check.obj("credit", raw["credit"])
        kinds = cc.str_list("kinds", c.get("kinds", []))
        for kind in kinds:
            if not kind.startswith(GRANTABLE_PREFIXES) or len(kind) > 64 \
                    or len(kind.split(".", 1)[1]) == 0:
                raise cc.fail("kinds", f"holds {kind!r}; a grantable kind is 'credit.<x>' or "
                                       "'units.<x>' (at most 64 characters)")
        credit = CreditAdjust(kinds=tuple(kinds), max_grant=_opt(cc, c, "max_grant", 1),
                              max_deduct=_opt(cc, c, "max_deduct", 1),
                              max_per_member_day=_opt(cc, c, "max_per_member_day", 1))
    offline = data.get("offline")
    oc = Checker("bundle offline")
    o = oc.obj("offline", offline) if offline is not None else {}
    return AdjustmentsConfig(
        points=points, credit=credit,
        require_note=check.bool_("require_note", raw.get("require_note", False)),
        offline_points_per_staff_day=_opt(oc, o, "adjust_points_per_staff_day", 0),
        offline_credit_per_staff_day=_opt(oc, o, "adjust_credit_per_staff_day", 0))


def _opt(check: Checker, obj: Mapping[str, Any], key: str, minimum: int) -> int | None:
    if key not in obj:
        return None
    return check.int_(key, obj[key], minimum=minimum, maximum=MAX_NUMBER)
