"""Parsing, validating and indexing a rule bundle (``rules.md``).

A known key with a wrong type rejects the whole bundle, with a message naming the
rule and the key. A rule with an unknown condition key, effect key or kind is kept
but never applied; its ``unknown`` field says which key.

The index: the rules of each kind are sorted once in the order they are taken
(priority highest first, then id), kind after kind. For every condition that can
be looked up from the sale itself (member present, tier, group, birthday, weekday,
hour, week of the date range, sku, category, token kind, BIN) the bundle keeps, as
Python integers used as bit sets over that order, the rules that do not use the
condition and, per value, the rules that accept that value. A quote ANDs one mask per
condition and evaluates only the rules left, in order. The index only ever keeps
too many rules, never too few: every rule it leaves out has a condition that is
false for the sale, so the result equals a full scan (tests check it).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import zoneinfo
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from agent.errors import RulesError

KINDS = ("discount", "points", "multiplier", "credit", "lottery", "fee", "referral", "coupon",
         "reward")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
TOKEN_KINDS = ("pan", "nid", "nfc", "code", "tel")
CONDITION_KEYS = frozenset({
    "anonymous", "tiers", "min_tier", "groups", "weekdays", "hours", "dates", "birthday",
    "min_gross", "skus", "categories", "identified_by", "bins", "min_purchase_count",
    "min_spend_30d", "min_days_since_last_purchase",
    # Promotions a club can run (issue 21).
    "min_points", "min_spend_days", "bought_within_days", "first_purchase",
    "purchase_count_every", "referred", "codes", "single_use", "coupon", "once_per_member",
    "max_per_member", "max_per_store", "budget",
})
PERIODS = ("day", "week", "month", "year", "ever")
EFFECT_KEYS: Mapping[str, frozenset[str]] = {
    "discount": frozenset({"percent_bps", "amount", "max_amount", "per_unit", "buy", "get",
                           "cheapest"}),
    "points": frozenset({"per_spend", "points", "max_points", "per_unit", "per_visit"}),
    "multiplier": frozenset({"bps"}),
    "credit": frozenset({"percent_bps", "amount", "kind", "expires_days", "max_amount"}),
    "lottery": frozenset({"per_spend", "entries"}),
    "fee": frozenset({"percent_bps", "amount", "max_amount"}),
    "referral": frozenset({"percent_bps", "amount", "kind", "expires_days", "max_amount"}),
    "coupon": frozenset({"for_rule", "prefix", "expires_days"}),
    "reward": frozenset({"cost_points", "name", "units", "percent_bps"}),
}
# A date range longer than this many weeks is indexed as "any week" (it is still
# checked); shorter ones are filed under each week (day ordinal // 7) they touch.
_MAX_INDEXED_WEEKS = 110
_HHMM = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$|^24:00$")
_BIN = re.compile(r"^[0-9]{6}$")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class Rule:
    """One validated rule; absent conditions are None.

    A plain class with class-level defaults: a 10,000-rule bundle builds 10,000 of
    these, and setting only the keys a rule has keeps loading fast.
    """

    id: str
    kind: str
    priority: int
    exclusive: bool
    raw: Mapping[str, Any]
    # True when the rule works on some lines only (``skus``/``categories``).
    targets_lines: bool = False
    # The condition checks, compiled by the engine on first use.
    checks: tuple[Any, ...] | None = None
    # Why the rule is never applied (unknown kind or key), else None.
    unknown: str | None = None
    anonymous: bool = False
    tiers: frozenset[str] | None = None
    min_tier: str | None = None
    min_tier_rank: int = 0
    groups: frozenset[str] | None = None
    weekdays: frozenset[int] | None = None
    hours: tuple[tuple[int, int], ...] | None = None  # seconds of the day, [start, end)
    dates: tuple[tuple[dt.date, dt.date], ...] | None = None
    birthday: str | None = None
    min_gross: int | None = None
    skus: frozenset[str] | None = None
    categories: frozenset[str] | None = None
    identified_by: frozenset[str] | None = None
    bins: frozenset[str] | None = None
    min_purchase_count: int | None = None
    min_spend_30d: int | None = None
    min_days_since_last_purchase: int | None = None
    min_points: int | None = None
    min_spend_days: tuple[int, int] | None = None  # (days, amount)
    bought_within_days: int | None = None
    first_purchase: bool | None = None
    purchase_count_every: int | None = None
    referred: bool | None = None
    codes: frozenset[str] | None = None  # upper case
    single_use: bool = False
    coupon: bool = False
    max_per_member: tuple[int, str] | None = None  # (count, period)
    max_per_store: tuple[int, str] | None = None
    budget: int | None = None
    # True when the rule has a use limit or budget: its uses are emitted with the sale.
    limited: bool = False
    # Effects.
    percent_bps: int | None = None
    amount: int | None = None
    max_amount: int | None = None
    per_spend: int = 1
    points: int = 0
    max_points: int | None = None
    bps: int = 10000
    credit_kind: str = ""
    expires_days: int | None = None
    entries: int = 0
    per_unit: int | bool | None = None  # points per unit (points); amount per unit (discount)
    per_visit: int | None = None
    buy: int | None = None
    get: int | None = None
    cheapest: int | None = None
    for_rule: str | None = None
    prefix: str = ""
    cost_points: int = 0
    name: str = ""

    def __init__(self, rule_id: str, kind: str, priority: int, exclusive: bool,
                 raw: Mapping[str, Any]):
        self.id = rule_id
        self.kind = kind
        self.priority = priority
        self.exclusive = exclusive
        self.raw = raw

    def __repr__(self) -> str:
        return f"Rule({self.id!r}, {self.kind!r}, priority={self.priority})"


@dataclass(slots=True)
class Dimension:
    """One indexed condition of one kind: who ignores it, who accepts which value."""

    name: str
    any_mask: int
    buckets: dict[Any, int]


@dataclass(slots=True)
class RuleIndex:
    """All rules of known kinds, kind by kind in the order they are taken, and masks.

    Bit ``i`` of every mask stands for ``rules[i]``.
    """

    rules: list[Rule]
    dims: list[Dimension]
    # Rules that are always listed (never applied, but the explanation says why).
    always: int
    full: int


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


# ---------------------------------------------------------------- validation


class _Checker:
    """Type checks that raise a RulesError naming where the problem is."""

    __slots__ = ("where",)

    def __init__(self, where: str):
        self.where = where

    def fail(self, key: str, message: str) -> RulesError:
        return RulesError(f"{self.where}: {key!r} {message}")

    def int_(self, key: str, value: object, *, minimum: int | None = 0,
             maximum: int | None = None) -> int:
        if type(value) is not int:
            raise self.fail(key, f"must be a whole number, not {json.dumps(value)}")
        if minimum is not None and value < minimum:
            raise self.fail(key, f"must be at least {minimum}, not {value}")
        if maximum is not None and value > maximum:
            raise self.fail(key, f"must be at most {maximum}, not {value}")
        return value

    def str_(self, key: str, value: object) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(key, f"must be a non-empty string, not {json.dumps(value)}")
        return value

    def bool_(self, key: str, value: object) -> bool:
        if not isinstance(value, bool):
            raise self.fail(key, f"must be true or false, not {json.dumps(value)}")
        return value

    def str_list(self, key: str, value: object) -> list[str]:
        if type(value) is not list or not all(type(v) is str for v in value):
            raise self.fail(key, f"must be a list of strings, not {json.dumps(value)}")
        return value

    def obj(self, key: str, value: object) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(key, f"must be an object, not {json.dumps(value)}")
        return value


def _parse_time(text: str, check: _Checker, key: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise check.fail(key, f"must be an RFC 3339 time, not {text!r}") from None
    if value.tzinfo is None:
        raise check.fail(key, f"must carry a UTC offset, not {text!r}")
    return value


def _hhmm(text: str) -> int:
    return int(text[:2]) * 3600 + int(text[3:]) * 60


def _parse_when(rule: Rule, when: Mapping[str, Any], check: _Checker,
                tier_ranks: Mapping[str, int]) -> None:
    unknown = [k for k in when if k not in CONDITION_KEYS]
    if unknown:
        rule.unknown = f"it has a condition this terminal does not know: {min(unknown)!r}"
    for key, value in when.items():
        if key == "anonymous":
            rule.anonymous = check.bool_(key, value)
        elif key == "tiers":
            rule.tiers = frozenset(check.str_list(key, value))
        elif key == "min_tier":
            name = check.str_(key, value)
            if name not in tier_ranks:
                raise check.fail(key, f"names tier {name!r}, which the bundle's tiers do not list")
            rule.min_tier, rule.min_tier_rank = name, tier_ranks[name]
        elif key == "groups":
            rule.groups = frozenset(check.str_list(key, value))
        elif key == "weekdays":
            days = check.str_list(key, value)
            for d in days:
                if d not in WEEKDAYS:
                    raise check.fail(key, f"must list days among {', '.join(WEEKDAYS)}, not {d!r}")
            rule.weekdays = frozenset(WEEKDAYS.index(d) for d in days)
        elif key == "hours":
            rule.hours = tuple(_pairs(key, value, check, _HHMM, "HH:MM", _hhmm))
        elif key == "dates":
            pairs = tuple(_pairs(key, value, check, None, "YYYY-MM-DD", dt.date.fromisoformat))
            rule.dates = pairs
        elif key == "birthday":
            if value not in ("day", "month"):
                raise check.fail(key, f"must be \"day\" or \"month\", not {json.dumps(value)}")
            rule.birthday = value
        elif key == "min_gross":
            rule.min_gross = check.int_(key, value)
        elif key == "skus":
            rule.skus = frozenset(check.str_list(key, value))
        elif key == "categories":
            rule.categories = frozenset(check.str_list(key, value))
        elif key == "identified_by":
            rule.identified_by = frozenset(check.str_list(key, value))
        elif key == "bins":
            bins = check.str_list(key, value)
            for b in bins:
                if not _BIN.match(b):
                    raise check.fail(key, f"must list six-digit BINs, not {b!r}")
            rule.bins = frozenset(bins)
        elif key == "min_purchase_count":
            rule.min_purchase_count = check.int_(key, value)
        elif key == "min_spend_30d":
            rule.min_spend_30d = check.int_(key, value)
        elif key == "min_days_since_last_purchase":
            rule.min_days_since_last_purchase = check.int_(key, value)
        elif key == "min_points":
            rule.min_points = check.int_(key, value)
        elif key == "min_spend_days":
            obj = check.obj(key, value)
            if set(obj) != {"days", "amount"}:
                raise check.fail(key, "must be {\"days\": N, \"amount\": A}, not "
                                      f"{json.dumps(value)}")
            rule.min_spend_days = (check.int_(f"{key}.days", obj["days"], minimum=1),
                                   check.int_(f"{key}.amount", obj["amount"]))
        elif key == "bought_within_days":
            rule.bought_within_days = check.int_(key, value)
        elif key == "first_purchase":
            rule.first_purchase = check.bool_(key, value)
        elif key == "purchase_count_every":
            rule.purchase_count_every = check.int_(key, value, minimum=1)
        elif key == "referred":
            rule.referred = check.bool_(key, value)
        elif key == "codes":
            codes = check.str_list(key, value)
            if not codes or not all(c.strip() for c in codes):
                raise check.fail(key, f"must list non-empty codes, not {json.dumps(value)}")
            rule.codes = frozenset(normalise_code(c) for c in codes)
        elif key == "single_use":
            rule.single_use = check.bool_(key, value)
        elif key == "coupon":
            rule.coupon = check.bool_(key, value)
        elif key == "once_per_member":
            if check.bool_(key, value):
                rule.max_per_member = (1, "ever")
        elif key in ("max_per_member", "max_per_store"):
            obj = check.obj(key, value)
            period = obj.get("period", "ever")
            if set(obj) - {"count", "period"} or period not in PERIODS:
                raise check.fail(key, f"must be {{\"count\": N, \"period\": one of "
                                      f"{', '.join(PERIODS)}}}, not {json.dumps(value)}")
            limit = (check.int_(f"{key}.count", obj.get("count")), period)
            if key == "max_per_member":
                rule.max_per_member = limit
            else:
                rule.max_per_store = limit
        elif key == "budget":
            rule.budget = check.int_(key, value)
    if rule.single_use and rule.codes is None and not rule.coupon:
        raise check.fail("single_use", "needs 'codes' (or 'coupon') in the same rule")
    rule.limited = (rule.max_per_member is not None or rule.max_per_store is not None
                    or rule.budget is not None)


def normalise_code(code: str) -> str:
    """A code as compared: surrounding spaces dropped, upper case (typed codes)."""
    return code.strip().upper()


def _pairs(key: str, value: object, check: _Checker, pattern: re.Pattern[str] | None,
           shape: str, convert: Any) -> list[tuple[Any, Any]]:
    def bad() -> RulesError:
        return check.fail(key, f"must be a list of [\"{shape}\", \"{shape}\"] pairs, "
                               f"not {json.dumps(value)}")

    if not isinstance(value, list):
        raise bad()
    out = []
    for pair in value:
        if (not isinstance(pair, list) or len(pair) != 2
                or not isinstance(pair[0], str) or not isinstance(pair[1], str)):
            raise bad()
        try:
            if pattern is not None and not (pattern.match(pair[0]) and pattern.match(pair[1])):
                raise ValueError
            a, b = convert(pair[0]), convert(pair[1])
        except ValueError:
            raise bad() from None
        if shape != "HH:MM" and b < a:
            raise check.fail(key, f"range {pair} ends before it starts")
        out.append((a, b))
    return out


def _parse_then(rule: Rule, then: Mapping[str, Any], check: _Checker) -> None:
    known = EFFECT_KEYS[rule.kind]
    unknown = [k for k in then if k not in known]
    if unknown and rule.unknown is None:
        rule.unknown = f"it has an effect this terminal does not know: {min(unknown)!r}"
    kind = rule.kind

    def need(key: str) -> object:
        if key not in then:
            raise check.fail(f"then.{key}", f"is required for a {kind} rule")
        return then[key]

    def one_of(*keys: str) -> str:
        present = [k for k in keys if k in then]
        if len(present) != 1:
            raise check.fail("then", f"must have exactly one of "
                                     f"{' and '.join(repr(k) for k in keys)}")
        return present[0]

    def opt(key: str, minimum: int = 0) -> int | None:
        return check.int_(f"then.{key}", then[key], minimum=minimum) if key in then else None

    if kind == "discount":
        units = [k for k in ("buy", "cheapest") if k in then]
        if units:
            # Unit discounts: the cheapest units of the target lines, percent_bps off
            # (default: free).
            if len(units) > 1 or "amount" in then or "per_unit" in then:
                raise check.fail("then", "'buy'/'get' and 'cheapest' take only "
                                         "'percent_bps' and 'max_amount'")
            if "buy" in then:
                rule.buy = check.int_("then.buy", then["buy"], minimum=1)
                rule.get = check.int_("then.get", need("get"), minimum=1)
            else:
                rule.cheapest = check.int_("then.cheapest", then["cheapest"], minimum=1)
            rule.percent_bps = check.int_("then.percent_bps", then.get("percent_bps", 10000),
                                          maximum=10000)
        else:
            if "get" in then:
                raise check.fail("then.get", "needs 'buy'")
            if one_of("percent_bps", "amount") == "percent_bps":
                rule.percent_bps = check.int_("then.percent_bps", then["percent_bps"],
                                              maximum=10000)
            else:
                rule.amount = check.int_("then.amount", then["amount"])
            if "per_unit" in then:
                rule.per_unit = check.bool_("then.per_unit", then["per_unit"])
                if rule.per_unit and rule.amount is None:
                    raise check.fail("then.per_unit", "needs 'amount' (an amount off each "
                                                      "unit)")
        rule.max_amount = opt("max_amount")
    elif kind == "points":
        how = one_of("per_spend", "per_unit", "per_visit")
        if how == "per_spend":
            rule.per_spend = check.int_("then.per_spend", then["per_spend"], minimum=1)
            rule.points = check.int_("then.points", need("points"))
        else:
            if "points" in then:
                raise check.fail("then.points", f"goes with 'per_spend', not {how!r}")
            value = check.int_(f"then.{how}", then[how])
            if how == "per_unit":
                rule.per_unit = value
            else:
                rule.per_visit = value
        rule.max_points = opt("max_points")
    elif kind == "multiplier":
        rule.bps = check.int_("then.bps", need("bps"), minimum=10000)
    elif kind in ("credit", "referral"):
        if one_of("percent_bps", "amount") == "percent_bps":
            rule.percent_bps = check.int_("then.percent_bps", then["percent_bps"])
        else:
            rule.amount = check.int_("then.amount", then["amount"])
        rule.credit_kind = check.str_("then.kind", need("kind"))
        rule.expires_days = opt("expires_days")
        rule.max_amount = opt("max_amount")
    elif kind == "lottery":
        rule.per_spend = check.int_("then.per_spend", need("per_spend"), minimum=1)
        rule.entries = check.int_("then.entries", need("entries"))
    elif kind == "fee":
        if "percent_bps" not in then and "amount" not in then:
            raise check.fail("then", "must have 'percent_bps', 'amount' or both")
        rule.percent_bps = opt("percent_bps")
        rule.amount = opt("amount")
        rule.max_amount = opt("max_amount")
    elif kind == "coupon":
        rule.for_rule = check.str_("then.for_rule", need("for_rule"))
        if "prefix" in then:
            rule.prefix = normalise_code(check.str_("then.prefix", then["prefix"]))
        rule.expires_days = opt("expires_days")
    elif kind == "reward":
        rule.cost_points = check.int_("then.cost_points", need("cost_points"), minimum=1)
        rule.name = check.str_("then.name", then.get("name", rule.id))
        rule.cheapest = check.int_("then.units", then.get("units", 1), minimum=1)
        rule.percent_bps = check.int_("then.percent_bps", then.get("percent_bps", 10000),
                                      maximum=10000)


def _parse_rule(raw: object, index: int, tier_ranks: Mapping[str, int]) -> Rule:
    if type(raw) is not dict and not isinstance(raw, Mapping):
        raise RulesError(f"rules[{index}]: must be an object")
    rid = raw.get("id")
    if not isinstance(rid, str) or not rid:
        raise RulesError(f"rules[{index}]: 'id' must be a non-empty string, "
                         f"not {json.dumps(rid)}")
    check = _Checker(f"rule {rid!r}")
    kind = check.str_("kind", raw.get("kind"))
    priority = check.int_("priority", raw.get("priority", 0), minimum=None)
    exclusive = check.bool_("exclusive", raw.get("exclusive", False))
    rule = Rule(rid, kind, priority, exclusive, raw)
    when = raw.get("when", {})
    if type(when) is not dict:
        when = check.obj("when", when)
    _parse_when(rule, when, check, tier_ranks)
    rule.targets_lines = rule.skus is not None or rule.categories is not None
    if kind not in KINDS:
        rule.unknown = f"its kind {kind!r} is unknown to this terminal"
        return rule
    then = raw.get("then", {})
    if type(then) is not dict:
        then = check.obj("then", then)
    _parse_then(rule, then, check)
    return rule


def parse_bundle(payload: bytes | str | Mapping[str, Any]) -> Bundle:
    """Parse and validate a bundle (its JSON bytes, or an already decoded object).

    Raises :class:`RulesError` naming the rule and key of the first problem.
    """
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
    top = _Checker("bundle")

    def need(key: str) -> object:
        if key not in data:
            raise top.fail(key, "is missing")
        return data[key]

    club = top.str_("club", need("club"))
    merchant = top.str_("merchant", need("merchant"))
    version = top.int_("version", need("version"))
    expires_at = _parse_time(top.str_("expires_at", need("expires_at")), top, "expires_at")
    issued_at = None
    if "issued_at" in data:
        issued_at = _parse_time(top.str_("issued_at", data["issued_at"]), top, "issued_at")
    currency = top.str_("currency", data.get("currency", "XXX"))
    minor_units = top.int_("minor_units", data.get("minor_units", 2), maximum=8)
    tz_name = top.str_("timezone", need("timezone"))
    try:
        tz = zoneinfo.ZoneInfo(tz_name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise top.fail("timezone", f"is not a time zone this terminal knows: {tz_name!r}") from None

    tier_ranks: dict[str, int] = {}
    tiers = data.get("tiers", [])
    if not isinstance(tiers, list):
        raise top.fail("tiers", "must be a list of {id, rank}")
    for i, t in enumerate(tiers):
        tc = _Checker(f"bundle tiers[{i}]")
        t = tc.obj("tier", t)
        tier_ranks[tc.str_("id", t.get("id"))] = tc.int_("rank", t.get("rank"), minimum=None)

    points = None
    if "points" in data:
        pc = _Checker("bundle points")
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
        cc = _Checker("bundle credits")
        c = top.obj("credits", data["credits"])
        credits = CreditsConfig(
            accepted=tuple(cc.str_list("accepted", c.get("accepted", []))),
            use_cap_per_invoice=_opt_int(cc, c, "use_cap_per_invoice"),
            use_cap_per_day=_opt_int(cc, c, "use_cap_per_day"),
        )
    offline = None
    if "offline" in data:
        oc = _Checker("bundle offline")
        o = top.obj("offline", data["offline"])
        offline = OfflineConfig(
            max_redeem_value_per_member_day=_opt_int(oc, o, "max_redeem_value_per_member_day"),
            max_pending=_opt_int(oc, o, "max_pending"),
            max_age_hours=_opt_int(oc, o, "max_age_hours"),
            accept_single_use_codes=oc.bool_("accept_single_use_codes",
                                             o.get("accept_single_use_codes", False)),
        )

    raw_rules = need("rules")
    if not isinstance(raw_rules, list):
        raise top.fail("rules", "must be a list")
    rules = [_parse_rule(r, i, tier_ranks) for i, r in enumerate(raw_rules)]
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
                    tz_name, tz, tier_ranks, points, credits, offline, rules, payload=raw_bytes)
    _build_index(bundle)
    return bundle


def _value_by_tier(check: _Checker, value: object,
                   tier_ranks: Mapping[str, int]) -> dict[str, int]:
    obj = check.obj("value_by_tier", value)
    out = {}
    for tier, v in obj.items():
        if tier not in tier_ranks:
            raise check.fail("value_by_tier", f"names tier {tier!r}, which the bundle's tiers "
                                              f"do not list")
        out[tier] = check.int_(f"value_by_tier.{tier}", v, minimum=1)
    return out


def _opt_int(check: _Checker, obj: Mapping[str, Any], key: str) -> int | None:
    return check.int_(key, obj[key]) if key in obj else None


# ---------------------------------------------------------------- the index


def _week_keys(ranges: Iterable[tuple[dt.date, dt.date]]) -> list[int] | None:
    keys: list[int] = []
    for start, end in ranges:
        a, b = start.toordinal() // 7, end.toordinal() // 7
        if b - a > _MAX_INDEXED_WEEKS:
            return None
        keys.extend(range(a, b + 1))
    return keys


def _hour_keys(ranges: Iterable[tuple[int, int]]) -> list[int]:
    hours: set[int] = set()
    for start, end in ranges:
        if end <= start:
            # Wraps past midnight: [start, 24:00) and [00:00, end).
            hours.update(range(start // 3600, 24))
            hours.update(range(0, (end + 3599) // 3600))
        else:
            hours.update(range(start // 3600, (end + 3599) // 3600))
    return sorted(h for h in hours if h < 24)


def index_keys(rule: Rule, tier_ranks: Mapping[str, int]) -> dict[str, list[Any] | None]:
    """The values under which the index files ``rule``, per dimension.

    A dimension missing from the answer means "the rule does not use this
    condition"; the value None also means "any" (too wide to be worth indexing).
    """
    keys: dict[str, list[Any] | None] = {}
    if not rule.anonymous:
        keys["member"] = [True]
    if rule.tiers is not None or rule.min_tier is not None:
        allowed = set(rule.tiers) if rule.tiers is not None else set(tier_ranks)
        if rule.min_tier is not None:
            allowed = {t for t in allowed
                       if t in tier_ranks and tier_ranks[t] >= rule.min_tier_rank}
        keys["tier"] = list(allowed)
    if rule.groups is not None:
        keys["group"] = list(rule.groups)
    if rule.birthday is not None:
        keys["birthday"] = [rule.birthday]
    if rule.weekdays is not None:
        keys["weekday"] = list(rule.weekdays)
    if rule.hours is not None:
        keys["hour"] = _hour_keys(rule.hours)
    if rule.dates is not None:
        keys["week"] = _week_keys(rule.dates)
    if rule.skus is not None:
        keys["sku"] = list(rule.skus)
    if rule.categories is not None:
        keys["category"] = list(rule.categories)
    if rule.identified_by is not None:
        keys["token"] = list(rule.identified_by)
    if rule.bins is not None:
        keys["bin"] = list(rule.bins)
    if rule.codes is not None:
        keys["code"] = list(rule.codes)
    return keys


DIMENSIONS = ("member", "tier", "group", "birthday", "weekday", "hour", "week", "sku",
              "category", "token", "bin", "code")


def rule_order(rule: Rule) -> tuple[int, str]:
    """Rules of a kind are taken by priority, highest first, ties by id ascending."""
    return (-rule.priority, rule.id)


def _build_index(bundle: Bundle) -> None:
    groups: dict[str, list[Rule]] = {k: [] for k in KINDS}
    for rule in bundle.rules:
        if rule.kind in groups:
            groups[rule.kind].append(rule)
        else:
            bundle.unknown_kind.append(rule)
    bundle.unknown_kind.sort(key=rule_order)
    ordered: list[Rule] = []
    for kind, rules in groups.items():
        rules.sort(key=rule_order)
        bundle.by_kind[kind] = rules
        ordered.extend(rules)
    n = len(ordered)
    full = (1 << n) - 1
    always: list[int] = []
    # Positions first, masks at the end: OR-ing bits into growing big integers
    # one rule at a time would cost O(rules²).
    uses: dict[str, list[int]] = {name: [] for name in DIMENSIONS}
    bucket_pos: dict[str, dict[Any, list[int]]] = {name: {} for name in DIMENSIONS}
    tier_ranks = bundle.tier_ranks
    for pos, rule in enumerate(ordered):
        if rule.unknown is not None:
            always.append(pos)
        for name, values in index_keys(rule, tier_ranks).items():
            if values is None:
                continue
            uses[name].append(pos)
            buckets = bucket_pos[name]
            for v in values:
                if v in buckets:
                    buckets[v].append(pos)
                else:
                    buckets[v] = [pos]
    used = [Dimension(name, full ^ _mask(uses[name], n),
                      {v: _mask(p, n) for v, p in bucket_pos[name].items()})
            for name in DIMENSIONS if uses[name]]
    bundle.index = RuleIndex(ordered, used, _mask(always, n), full)
    bundle.needs_counts = any(
        r.limited or r.codes is not None or r.coupon or r.kind == "coupon"
        or r.first_purchase is not None or r.purchase_count_every is not None
        or r.bought_within_days is not None for r in ordered)


def _mask(positions: list[int], n: int) -> int:
    """The integer with exactly these bits set."""
    if len(positions) < 16:
        m = 0
        for p in positions:
            m |= 1 << p
        return m
    bits = bytearray((n + 8) // 8)
    for p in positions:
        bits[p >> 3] |= 1 << (p & 7)
    return int.from_bytes(bits, "little")
