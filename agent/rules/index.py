"""The rule index: which rules a sale can possibly match, as bit sets.

The rules of each kind are sorted once in the order they are taken (priority highest
first, then id), kind after kind. For every condition that can be looked up from the
sale itself (member present, tier, group, birthday, weekday, hour, week of the date
range, sku, category, token kind, BIN, code) the bundle keeps, as Python integers
used as bit sets over that order, the rules that do not use the condition and, per
value, the rules that accept that value. A quote ANDs one mask per condition and
evaluates only the rules left, in order. The index only ever keeps too many rules,
never too few: every rule it leaves out has a condition that is false for the sale,
so the result equals a full scan (tests check it).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import reduce
from operator import or_
from typing import TYPE_CHECKING, Any

from agent.rules.conditions import compile_checks
from agent.rules.rule import KINDS, Rule

if TYPE_CHECKING:
    from agent.rules.bundle import Bundle

# A date range longer than this many weeks is indexed as "any week" (it is still
# checked); shorter ones are filed under each week (day ordinal // 7) they touch.
_MAX_INDEXED_WEEKS = 110


@dataclass(slots=True)
class Dimension:
    """One indexed condition: the rules that ignore it (``any_mask``) and, per value,
    the rules a sale with that value may match (``allowed``: ``any_mask`` included,
    so that a sale's one value costs one lookup)."""

    name: str
    any_mask: int
    allowed: dict[Any, int]


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


def build_index(bundle: Bundle) -> None:
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
        rule.checks = compile_checks(rule)
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
    used = []
    for name in DIMENSIONS:
        if uses[name]:
            any_mask = full ^ _mask(uses[name], n)
            used.append(Dimension(name, any_mask, {v: any_mask | _mask(p, n)
                                                   for v, p in bucket_pos[name].items()}))
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


def considered(bundle: Bundle, values: dict[str, list[Any]],
               use_index: bool = True) -> dict[str, list[Rule]]:
    """The rules a quote looks at, per kind, in the order they are taken.

    With the index: every rule that passes each indexed condition (a superset of the
    rules that hold). Without: every rule.
    """
    if not use_index:
        return bundle.by_kind
    index = bundle.index
    mask = index.full
    for dim in index.dims:
        sale = values[dim.name]
        if len(sale) == 1:  # most dimensions: one value, one lookup
            mask &= dim.allowed.get(sale[0], dim.any_mask)
        else:
            # The union over the sale's values (lines, groups, codes), the loop in C.
            mask &= reduce(or_, filter(None, map(dim.allowed.get, sale)), dim.any_mask)
        if not mask:
            break
    mask |= index.always
    out: dict[str, list[Rule]] = {k: [] for k in KINDS}
    if not mask:
        return out
    # Bit i of the mask is character i of the reversed binary string; str.find jumps
    # over the zeros at C speed.
    find = bin(mask)[:1:-1].find
    rules = index.rules
    i = find("1")
    while i >= 0:
        rule = rules[i]
        out[rule.kind].append(rule)
        i = find("1", i + 1)
    return out
