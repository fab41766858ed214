"""Parsing and validating a rule bundle (``rules.md``): its top-level sections.

The rules themselves are validated by :mod:`agent.rules.rule_parse` and indexed by
:mod:`agent.rules.index` (see there for how the index works).
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from agent.errors import RulesError
from agent.rules.adjust import AdjustmentsConfig, parse_adjustments
from agent.rules.index import RuleIndex, build_index
from agent.rules.rule import KINDS, WEEKDAYS, Rule, normalise_code
from agent.rules.rule_parse import Checker, parse_rule, parse_time
from agent.rules.stored_value import StoredValueConfig, parse_stored_value
from agent.rules.tiers import MAX_WINDOW_DAYS, TierUpgrade

#: (1.3) The largest whole number on the wire (2**53 - 1, docs/protocol/club.md).
MAX_WHOLE = 2**53 - 1

__all__ = ["KINDS", "WEEKDAYS", "Bundle", "CreditsConfig", "OfflineConfig", "PointsConfig",
           "Rule", "normalise_code", "parse_bundle"]


@dataclass(frozen=True, slots=True)
class PointsConfig:
    """``points`` of the bundle."""

    value: int
    min_redeem: int
    max_redeem_share_bps: int | None
    # What one point is worth for members of a tier (absent: ``value``).
    value_by_tier: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CreditsConfig:
    """``credits`` of the bundle."""

    accepted: tuple[str, ...]
    use_cap_per_invoice: int | None
    use_cap_per_day: int | None


@dataclass(frozen=True, slots=True)
class OfflineConfig:
    """``offline`` of the bundle; None means no limit."""

    max_redeem_value_per_member_day: int | None
    max_pending: int | None
    max_age_hours: int | None
    # May a single-use code be taken while offline (the risk rule in docs/rules.md)?
    accept_single_use_codes: bool = False
    # (1.3) What this terminal may charge on house accounts while offline and not
    # yet reflected by the club (net per account, minor units); None: no limit.
    max_account_charge: int | None = None
    # (1.3) Check-ins one terminal gives one member per local day while offline
    # (docs/protocol/bundle.md "Visit packages"); None: the default, 1.
    max_package_uses_per_member_day: int | None = None


@dataclass(slots=True, eq=False)
class Bundle:
    """A parsed, validated and indexed rule bundle."""

    club: str
    merchant: str
    version: int
    issued_at: dt.datetime | None
    expires_at: dt.datetime
    currency: str
    minor_units: int
    timezone: str
    tz: dt.tzinfo
    tier_ranks: Mapping[str, int]
    points: PointsConfig | None
    credits: CreditsConfig | None
    offline: OfflineConfig | None
    rules: list[Rule]
    by_kind: dict[str, list[Rule]] = field(default_factory=dict)
    index: RuleIndex = field(default_factory=lambda: RuleIndex([], [], 0, 0))
    unknown_kind: list[Rule] = field(default_factory=list)
    payload: bytes = b""
    # Some rule reads the store's promotion counts (limits, codes, coupons,
    # first/every-Nth purchase): the agent only counts when one does.
    needs_counts: bool = False
    # (1.3) Each tier's ``upgrade`` threshold by tier id (agent/rules/tiers.py).
    tier_upgrades: Mapping[str, TierUpgrade] = field(default_factory=dict)
    # (1.3) The balance types a club sells (agent/rules/stored_value.py); None: none.
    stored_value: StoredValueConfig | None = None
    # (1.3) ``adjustments``: manual points and granted credit (agent/rules/adjust.py);
    # None: the feature is off.
    adjustments: AdjustmentsConfig | None = None

    def rule(self, rule_id: str) -> Rule | None:
        """The rule with that id, if any."""
        for r in self.rules:
            if r.id == rule_id:
                return r
        return None

    def local_day(self, at: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
        """The club-local day containing ``at``: [start, end) as aware datetimes.

        For the store's day counters (credit day cap, offline day limit). A day of a
        daylight-saving change is 23 or 25 hours long.
        """
        if at.tzinfo is None:
            raise RulesError("the time must carry a UTC offset")
        day = at.astimezone(self.tz).date()
        start = dt.datetime.combine(day, dt.time(0), tzinfo=self.tz)
        end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=self.tz)
        return start, end

    def summary(self) -> str:
        """One line for people: club, merchant, version, rule count, expiry."""
        return (f"club {self.club}, merchant {self.merchant}, version {self.version}, "
                f"{len(self.rules)} rules, expires {self.expires_at.isoformat()}")



def parse_bundle(payload: bytes | str | Mapping[str, Any]) -> Bundle:
    """Parse and validate a bundle (its JSON bytes, or an already decoded object).

    Raises :class:`RulesError` naming the rule and key of the first problem.

    The garbage collector is paused meanwhile: a 10,000-rule bundle makes a few
    hundred thousand objects, none in a reference cycle, and each collection the
    allocations would trigger walks them all again (a third of the load time).
    """
    paused = gc.isenabled()
    gc.disable()
    try:
        return _parse_bundle(payload)
    finally:
        if paused:
            gc.enable()


def _parse_bundle(payload: bytes | str | Mapping[str, Any]) -> Bundle:
    raw_bytes = b""
    if isinstance(payload, bytes | str):
        raw_bytes = payload.encode() if isinstance(payload, str) else payload
        try:
            data = json.loads(raw_bytes)
        except (ValueError, UnicodeDecodeError) as exc:
            raise RulesError(f"the bundle is not valid JSON: {exc}") from None
    else:
        data = payload
    if not isinstance(data, Mapping):
        raise RulesError("the bundle must be a JSON object")
    top = Checker("bundle")

    def need(key: str) -> object:
        if key not in data:
            raise top.fail(key, "is missing")
        return data[key]

    club = top.str_("club", need("club"))
    merchant = top.str_("merchant", need("merchant"))
    version = top.int_("version", need("version"))
    expires_at = parse_time(top.str_("expires_at", need("expires_at")), top, "expires_at")
    issued_at = None
    if "issued_at" in data:
        issued_at = parse_time(top.str_("issued_at", data["issued_at"]), top, "issued_at")
    currency = top.str_("currency", data.get("currency", "XXX"))
    minor_units = top.int_("minor_units", data.get("minor_units", 2), maximum=8)
    tz_name = top.str_("timezone", need("timezone"))
    try:
        tz = zoneinfo.ZoneInfo(tz_name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise top.fail("timezone", f"is not a time zone this terminal knows: {tz_name!r}") from None

    tier_ranks: dict[str, int] = {}
    tier_upgrades: dict[str, TierUpgrade] = {}
    tiers = data.get("tiers", [])
    if not isinstance(tiers, list):
        raise top.fail("tiers", "must be a list of {id, rank}")
    for i, t in enumerate(tiers):
        tc = Checker(f"bundle tiers[{i}]")
        t = tc.obj("tier", t)
        tier_ranks[tc.str_("id", t.get("id"))] = tc.int_("rank", t.get("rank"), minimum=None)
        if "upgrade" in t:  # (1.3) what takes a member of the tier below into this one
            tier_upgrades[str(t["id"])] = _tier_upgrade(tc, t["upgrade"])

    points = None
    if "points" in data:
        pc = Checker("bundle points")
        p = top.obj("points", data["points"])
        if "value" not in p:
            raise pc.fail("value", "is missing")
        points = PointsConfig(
            value=pc.int_("value", p["value"], minimum=1),
            min_redeem=pc.int_("min_redeem", p.get("min_redeem", 0)),
            max_redeem_share_bps=(pc.int_("max_redeem_share_bps", p["max_redeem_share_bps"])
                                  if "max_redeem_share_bps" in p else None),
            value_by_tier=_value_by_tier(pc, p.get("value_by_tier", {}), tier_ranks),
        )
    credits = None
    if "credits" in data:
        cc = Checker("bundle credits")
        c = top.obj("credits", data["credits"])
        credits = CreditsConfig(
            accepted=tuple(cc.str_list("accepted", c.get("accepted", []))),
            use_cap_per_invoice=_opt_int(cc, c, "use_cap_per_invoice"),
            use_cap_per_day=_opt_int(cc, c, "use_cap_per_day"),
        )
    offline = None
    if "offline" in data:
        oc = Checker("bundle offline")
        o = top.obj("offline", data["offline"])
        offline = OfflineConfig(
            max_redeem_value_per_member_day=_opt_int(oc, o, "max_redeem_value_per_member_day"),
            max_pending=_opt_int(oc, o, "max_pending"),
            max_age_hours=_opt_int(oc, o, "max_age_hours"),
            accept_single_use_codes=oc.bool_("accept_single_use_codes",
                                             o.get("accept_single_use_codes", False)),
            max_account_charge=_opt_int(oc, o, "max_account_charge"),
            max_package_uses_per_member_day=_opt_int(oc, o, "max_package_uses_per_member_day"),
        )

    raw_rules = need("rules")
    if not isinstance(raw_rules, list):
        raise top.fail("rules", "must be a list")
    rules = [parse_rule(r, i, tier_ranks) for i, r in enumerate(raw_rules)]
    seen: set[str] = set()
    for r in rules:
        if r.id in seen:
            raise RulesError(f"rule {r.id!r}: 'id' is used by more than one rule")
        seen.add(r.id)
    for r in rules:
        if r.kind == "coupon" and r.for_rule not in seen:
            raise RulesError(f"rule {r.id!r}: 'then.for_rule' names rule {r.for_rule!r}, "
                             f"which the bundle does not have")

    bundle = Bundle(club, merchant, version, issued_at, expires_at, currency, minor_units,
                    tz_name, tz, tier_ranks, points, credits, offline, rules, payload=raw_bytes,
                    tier_upgrades=tier_upgrades)
    if "stored_value" in data:  # (1.3)
        bundle.stored_value = parse_stored_value(data["stored_value"])
    bundle.adjustments = parse_adjustments(data, {
        r.id: (r.kind, r.per_spend, r.points) for r in rules
        if r.kind == "points" and r.per_visit is None and r.per_unit is None})
    build_index(bundle)
    return bundle


def _tier_upgrade(tc: Checker, raw: object) -> TierUpgrade:
    """A tier's ``upgrade`` {min_spend?, min_purchases?, window_days}: at least one
    threshold, whole numbers, ``window_days`` 0 (all time) to MAX_WINDOW_DAYS."""
    up = tc.obj("upgrade", raw)
    if "min_spend" not in up and "min_purchases" not in up:
        raise tc.fail("upgrade", "needs min_spend or min_purchases")
    return TierUpgrade(
        min_spend=(tc.int_("upgrade.min_spend", up["min_spend"], minimum=1,
                           maximum=MAX_WHOLE) if "min_spend" in up else None),
        min_purchases=(tc.int_("upgrade.min_purchases", up["min_purchases"], minimum=1,
                               maximum=MAX_WHOLE) if "min_purchases" in up else None),
        window_days=tc.int_("upgrade.window_days", up.get("window_days"), minimum=0,
                            maximum=MAX_WINDOW_DAYS))


def _value_by_tier(check: Checker, value: object,
                   tier_ranks: Mapping[str, int]) -> dict[str, int]:
    obj = check.obj("value_by_tier", value)
    out = {}
    for tier, v in obj.items():
        if tier not in tier_ranks:
            raise check.fail("value_by_tier", f"names tier {tier!r}, which the bundle's tiers "
                                              f"do not list")
        out[tier] = check.int_(f"value_by_tier.{tier}", v, minimum=1)
    return out


def _opt_int(check: Checker, obj: Mapping[str, Any], key: str) -> int | None:
    return check.int_(key, obj[key]) if key in obj else None

