"""A rule of a bundle as the engine sees it, and the bundle vocabulary.

The keys a rule may have (``CONDITION_KEYS``, ``EFFECT_KEYS``), its kinds and the
validated :class:`Rule` (absent conditions are None). ``rule_parse`` builds rules,
``index`` files them, ``conditions`` checks them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

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
    # The condition checks with their names, compiled when the bundle is loaded
    # (``conditions.compile_checks``).
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
    # True when the rule takes a code or coupon: the code used is emitted with the sale.
    takes_code: bool = False
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



def normalise_code(code: str) -> str:
    """A code as compared: surrounding spaces dropped, upper case (typed codes)."""
    return code.strip().upper()

