"""Computing a sale from a bundle: the exact arithmetic of ``rules.md``.

Pure: the time, the member and the terminal's counters are passed in. All money is
integers; every division rounds toward zero (all operands are ≥ 0, so ``//``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Sequence
from fractions import Fraction
from functools import reduce
from operator import or_
from typing import Any

from agent.errors import LimitExceeded, RulesError
from agent.rules.bundle import KINDS, WEEKDAYS, Bundle, Rule, normalise_code
from agent.rules.model import MemberView, Quote, QuoteContext, QuoteRequest


def format_money(amount: int, minor_units: int, currency: str = "") -> str:
    """``505`` with 2 minor units → ``"5.05"`` (integers only, no float)."""
    sign = "-" if amount < 0 else ""
    amount = abs(amount)
    if minor_units <= 0:
        text = str(amount)
    else:
        whole, frac = divmod(amount, 10**minor_units)
        text = f"{whole}.{frac:0{minor_units}d}"
    return f"{sign}{text} {currency}".rstrip() if currency else sign + text


def _factor(bps: int) -> str:
    """20000 → "2", 15000 → "1.5"."""
    return format_money(bps, 4).rstrip("0").rstrip(".")


def _or_list(items: Sequence[str]) -> str:
    items = sorted(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " or " + items[-1]


class _Facts:
    """What conditions look at, computed once per quote."""

    __slots__ = ("at", "bin6", "birthday_keys", "bundle", "category_lines", "codes", "ctx",
                 "date", "gross", "lines", "member", "member_note", "points_balance",
                 "purchases", "seconds", "sku_lines", "token_kind", "used_codes", "weekday")

    def __init__(self, bundle: Bundle, request: QuoteRequest, member: MemberView | None,
                 local: dt.datetime, gross: int, ctx: QuoteContext | None = None):
        self.bundle = bundle
        self.ctx = ctx if ctx is not None else QuoteContext(local)
        self.codes = [normalise_code(c) for c in request.codes]
        self.at = local
        self.lines = request.lines
        self.gross = gross
        self.sku_lines: dict[str, list[int]] = {}
        self.category_lines: dict[str, list[int]] = {}
        for i, ln in enumerate(self.lines):
            if ln.sku is not None:
                self.sku_lines.setdefault(ln.sku, []).append(i)
            if ln.category is not None:
                self.category_lines.setdefault(ln.category, []).append(i)
        self.token_kind = request.token_kind
        self.bin6 = request.bin6
        self.member = member if member is not None and member.active else None
        if member is None:
            self.member_note = "no member identified"
        elif not member.active:
            self.member_note = f"member is {member.status.replace('_', ' ')}, not active"
        else:
            self.member_note = ""
        self.date = local.date()
        self.weekday = local.weekday()
        self.seconds = local.hour * 3600 + local.minute * 60 + local.second
        md = self.member.birth_month_day if self.member is not None else None
        self.birthday_keys: list[str] = []
        if md is not None and md[0] == local.month:
            self.birthday_keys.append("month")
            if _is_birthday(md, self.date):
                self.birthday_keys.append("day")
        m = self.member
        # Purchases before this sale: the record's count plus this terminal's own
        # sales the record does not count yet (a missing count is 0).
        self.purchases = ((m.purchase_count or 0) if m is not None else 0) \
            + self.ctx.pending_purchases
        self.points_balance = (spendable(m, "points", self.date) if m is not None else 0)
        self.used_codes = self.ctx.used_codes | (m.used_codes if m is not None
                                                 else frozenset())

    def index_values(self) -> dict[str, list[Any]]:
        """The sale's value for each indexed dimension (see ``bundle.index_keys``)."""
        m = self.member
        return {
            "member": [True] if m is not None else [],
            "tier": [m.tier] if m is not None and m.tier is not None else [],
            "group": sorted(m.groups) if m is not None else [],
            "birthday": self.birthday_keys,
            "weekday": [self.weekday],
            "hour": [self.seconds // 3600],
            "week": [self.date.toordinal() // 7],
            "sku": list(self.sku_lines),
            "category": list(self.category_lines),
            "token": [self.token_kind] if self.token_kind is not None else [],
            "bin": [self.bin6] if self.bin6 is not None else [],
            "code": self.codes,
        }


def _is_birthday(md: tuple[int, int], date: dt.date) -> bool:
    month, day = md
    if (month, day) == (date.month, date.day):
        return True
    # 29 February counts on 28 February in a year without one.
    if (month, day) == (2, 29) and (date.month, date.day) == (2, 28):
        try:
            dt.date(date.year, 2, 29)
        except ValueError:
            return True
    return False


# Each condition is one small function: (rule, facts) -> the reason it fails, or None.
# A rule's checks are compiled once, in this fixed order, so that the "first reason"
# does not depend on the order of keys in the bundle JSON.
Check = Callable[[Rule, "_Facts"], "str | None"]


def _c_unknown(rule: Rule, f: _Facts) -> str | None:
    return rule.unknown


def _c_member(rule: Rule, f: _Facts) -> str | None:
    if f.member is None:
        return f"{f.member_note}; the rule is for members only"
    return None


def _who(f: _Facts) -> str:
    return f.member_note or "no member"


def _c_tiers(rule: Rule, f: _Facts) -> str | None:
    m, tiers = f.member, rule.tiers
    assert tiers is not None
    if m is None:
        return f"{_who(f)}; rule needs tier {_or_list(list(tiers))}"
    if m.tier not in tiers:
        return f"member is {m.tier or 'without a tier'}; rule needs {_or_list(list(tiers))}"
    return None


def _c_min_tier(rule: Rule, f: _Facts) -> str | None:
    m = f.member
    if m is None:
        return f"{_who(f)}; rule needs tier {rule.min_tier} or higher"
    rank = f.bundle.tier_ranks.get(m.tier) if m.tier is not None else None
    if rank is None or rank < rule.min_tier_rank:
        return f"member is {m.tier or 'without a tier'}; rule needs {rule.min_tier} or higher"
    return None


def _c_groups(rule: Rule, f: _Facts) -> str | None:
    m, groups = f.member, rule.groups
    assert groups is not None
    if m is None:
        return f"{_who(f)}; rule needs group {_or_list(list(groups))}"
    if m.groups.isdisjoint(groups):
        return f"member is not in group {_or_list(list(groups))}"
    return None


def _c_birthday(rule: Rule, f: _Facts) -> str | None:
    m = f.member
    if m is None:
        return f"{_who(f)}; rule is for the member's birthday {rule.birthday}"
    md = m.birth_month_day
    if md is None:
        return "member's birthday is not known"
    if rule.birthday == "month" and md[0] != f.date.month:
        return "it is not the member's birthday month"
    if rule.birthday == "day" and not _is_birthday(md, f.date):
        return "today is not the member's birthday"
    return None


def _c_purchase_count(rule: Rule, f: _Facts) -> str | None:
    m, need = f.member, rule.min_purchase_count
    assert need is not None
    if m is None:
        return f"{_who(f)}; rule needs {need} earlier purchases"
    have = m.purchase_count or 0  # a statistic the record lacks counts as 0
    if have < need:
        return f"member has {have} purchases; rule needs {need}"
    return None


def _c_spend_30d(rule: Rule, f: _Facts) -> str | None:
    m, need = f.member, rule.min_spend_30d
    assert need is not None
    if m is None:
        return f"{_who(f)}; rule needs a spend over the last 30 days"
    have = m.spend_30d or 0  # a statistic the record lacks counts as 0
    if have < need:
        mu = f.bundle.minor_units
        return (f"member spent {format_money(have, mu)} in 30 days; "
                f"rule needs {format_money(need, mu)}")
    return None


def _c_win_back(rule: Rule, f: _Facts) -> str | None:
    m, need = f.member, rule.min_days_since_last_purchase
    assert need is not None
    if m is None:
        return f"{_who(f)}; rule is for members who have not bought for a while"
    if need == 0:
        return None  # no wait asked for: holds with or without a purchase on record
    if m.last_purchase is None:
        return "member has no last purchase on record"
    days = (f.date - m.last_purchase).days
    if days < need:
        return f"member last bought {days} days ago; rule needs {need} days or more"
    return None


def _c_identified_by(rule: Rule, f: _Facts) -> str | None:
    kinds = rule.identified_by
    assert kinds is not None
    if f.token_kind in kinds:
        return None
    how = f"identified by {f.token_kind}" if f.token_kind else "not identified by a card"
    return f"customer is {how}; rule needs {_or_list(list(kinds))}"


def _c_bins(rule: Rule, f: _Facts) -> str | None:
    bins = rule.bins
    assert bins is not None
    if f.bin6 in bins:
        return None
    if f.bin6 is None:
        return "no bank card was read; rule is for certain bank cards"
    return f"bank card {f.bin6} is not one of the rule's banks"


def _c_weekdays(rule: Rule, f: _Facts) -> str | None:
    days = rule.weekdays
    assert days is not None
    if f.weekday in days:
        return None
    return (f"today is {WEEKDAYS[f.weekday]}; rule is for "
            f"{_or_list([WEEKDAYS[d] for d in sorted(days)])}")


def _c_hours(rule: Rule, f: _Facts) -> str | None:
    hours = rule.hours
    assert hours is not None
    s = f.seconds
    for start, end in hours:
        # start included, end excluded; an end at or before the start wraps past midnight
        if (start <= s < end) if start < end else (s >= start or s < end):
            return None
    spans = ", ".join(f"{a // 3600:02d}:{a % 3600 // 60:02d}-{b // 3600:02d}:"
                      f"{b % 3600 // 60:02d}" for a, b in hours)
    return f"local time is {f.at:%H:%M}; rule is for {spans}"


def _c_dates(rule: Rule, f: _Facts) -> str | None:
    dates = rule.dates
    assert dates is not None
    d = f.date
    for a, b in dates:
        if a <= d <= b:
            return None
    spans = ", ".join(f"{a} to {b}" for a, b in dates)
    return f"today is {d}; rule runs {spans}"


def _c_min_gross(rule: Rule, f: _Facts) -> str | None:
    need = rule.min_gross
    assert need is not None
    if f.gross >= need:
        return None
    mu = f.bundle.minor_units
    return (f"basket is {format_money(f.gross, mu)}; rule needs at least "
            f"{format_money(need, mu)}")


def _c_lines(rule: Rule, f: _Facts) -> str | None:
    if _targets(rule, f):
        return None
    parts = []
    if rule.skus is not None:
        parts.append(f"product {_or_list(list(rule.skus))}")
    if rule.categories is not None:
        parts.append(f"category {_or_list(list(rule.categories))}")
    return "no basket line is " + " in ".join(parts)


def spendable(member: MemberView, kind: str, today: dt.date) -> int:
    """The member's balance of ``kind`` less the lots that expired before ``today``.

    ``balance_lots`` says which parts of the balance expire when (the last valid
    local date). A lot expired before today is not spendable; the balance given
    (cached plus this terminal's events) is otherwise what may be spent.
    """
    balance = max(0, member.balances.get(kind, 0))
    if not member.balance_lots:
        return balance
    day = today.isoformat()
    expired = sum(a for expires, a in member.expiring(kind) if expires < day)
    return max(0, balance - expired)


def _period_key(day: str, period: str) -> str:
    """The period a local date falls in: the same key means the same period."""
    if period == "day":
        return day[:10]
    if period == "month":
        return day[:7]
    if period == "year":
        return day[:4]
    if period == "week":
        try:
            y, w, _ = dt.date.fromisoformat(day[:10]).isocalendar()
        except ValueError:
            return ""
        return f"{y}-W{w:02d}"
    return ""  # ever


def _uses_in_period(dates: object, today: dt.date, period: str) -> int:
    if not isinstance(dates, list | tuple):
        return 0
    key = _period_key(today.isoformat(), period)
    return sum(1 for d in dates if isinstance(d, str) and _period_key(d, period) == key)


def _c_min_points(rule: Rule, f: _Facts) -> str | None:
    need = rule.min_points
    assert need is not None
    if f.member is None:
        return f"{_who(f)}; rule needs {need} points"
    if f.points_balance < need:
        return f"member has {f.points_balance} points; rule needs {need}"
    return None


def _c_spend_days(rule: Rule, f: _Facts) -> str | None:
    assert rule.min_spend_days is not None
    days, need = rule.min_spend_days
    m = f.member
    if m is None:
        return f"{_who(f)}; rule needs a spend over the last {days} days"
    spent = m.spend_days(days) or 0  # a missing statistic counts as 0
    if spent < need:
        mu = f.bundle.minor_units
        return (f"member spent {format_money(spent, mu)} in {days} days; "
                f"rule needs {format_money(need, mu)}")
    return None


def _c_bought_within(rule: Rule, f: _Facts) -> str | None:
    need = rule.bought_within_days
    assert need is not None
    m = f.member
    if m is None:
        return f"{_who(f)}; rule is for members who bought in the last {need} days"
    if f.ctx.pending_purchases:
        return None  # bought here today, not yet in the record
    if m.last_purchase is None:
        return "member has no last purchase on record"
    days = (f.date - m.last_purchase).days
    if days > need:
        return f"member last bought {days} days ago; rule needs {need} days or fewer"
    return None


def _c_first_purchase(rule: Rule, f: _Facts) -> str | None:
    if f.member is None:
        return f"{_who(f)}; rule is about the member's first purchase"
    first = f.purchases == 0
    if first != rule.first_purchase:
        return (f"member has {f.purchases} earlier purchases; rule is for the first"
                if rule.first_purchase else "this is the member's first purchase; rule is "
                                            "for later ones")
    return None


def _c_every(rule: Rule, f: _Facts) -> str | None:
    n = rule.purchase_count_every
    assert n is not None
    if f.member is None:
        return f"{_who(f)}; rule is for every {n}th purchase"
    this = f.purchases + 1
    if this % n:
        return f"this is the member's purchase {this}; rule is for every {n}th"
    return None


def _c_referred(rule: Rule, f: _Facts) -> str | None:
    m = f.member
    if m is None:
        return f"{_who(f)}; rule is about referred members"
    want = rule.referred if rule.referred is not None else True
    if (m.referred_by is not None) != want:
        return ("member was not referred by another member" if want
                else "member was referred by another member")
    return None


def _c_codes(rule: Rule, f: _Facts) -> str | None:
    codes = rule.codes
    assert codes is not None
    code = next((c for c in f.codes if c in codes), None)
    if code is None:
        return "no matching code was given" if not f.codes else \
            "the code given is not one of the rule's codes"
    if rule.single_use:
        return _single_use(f, code)
    return None


def _single_use(f: _Facts, code: str) -> str | None:
    if code in f.used_codes:
        return f"code {code} was already used"
    off = f.bundle.offline
    if f.ctx.offline and not (off is not None and off.accept_single_use_codes):
        return f"offline: single-use code {code} cannot be checked with the club"
    return None


def _coupon_for(rule: Rule, f: _Facts) -> tuple[str | None, str | None]:
    """(the coupon code given for this rule, or None; the reason none fits)."""
    if not f.codes:
        return None, "no coupon code was given"
    today = f.date.isoformat()
    m = f.member
    held = list(m.coupons) if m is not None else []
    held += [c for c in f.ctx.coupons
             if c.get("member_id") in (None, m.member_id if m is not None else None)]
    why = "the code given is not a coupon for this rule"
    for c in held:
        code = c.get("code")
        if not isinstance(code, str) or c.get("rule") != rule.id:
            continue
        code = normalise_code(code)
        if code not in f.codes:
            continue
        expires = c.get("expires")
        if isinstance(expires, str) and expires[:10] < today:
            why = f"coupon {code} expired on {expires[:10]}"
            continue
        reason = _single_use(f, code)
        if reason is not None:
            why = reason
            continue
        return code, None
    return None, why


def _c_coupon(rule: Rule, f: _Facts) -> str | None:
    return _coupon_for(rule, f)[1]


def _c_max_per_member(rule: Rule, f: _Facts) -> str | None:
    assert rule.max_per_member is not None
    count, period = rule.max_per_member
    m = f.member
    if m is None:
        return f"{_who(f)}; rule is limited per member"
    used = (_uses_in_period(m.rule_uses.get(rule.id), f.date, period)
            + _uses_in_period(f.ctx.member_uses.get(rule.id), f.date, period))
    if used >= count:
        span = "in all" if period == "ever" else f"per {period}"
        return f"member has used this rule {used} times; at most {count} {span}"
    return None


def _c_max_per_store(rule: Rule, f: _Facts) -> str | None:
    assert rule.max_per_store is not None
    count, period = rule.max_per_store
    used = _uses_in_period(f.ctx.store_uses.get(rule.id), f.date, period)
    if used >= count:
        span = "in all" if period == "ever" else f"per {period}"
        return f"this terminal has used this rule {used} times; at most {count} {span}"
    return None


def _c_budget(rule: Rule, f: _Facts) -> str | None:
    assert rule.budget is not None
    used = f.ctx.budget_used.get(rule.id, 0)
    if used >= rule.budget:
        return f"the rule's budget at this terminal ({rule.budget}) is spent"
    return None


# A machine-readable name for each check (the explanation's "why").
WHY: dict[Check, str] = {
    _c_unknown: "unknown", _c_member: "member", _c_tiers: "tiers", _c_min_tier: "min_tier",
    _c_groups: "groups", _c_birthday: "birthday", _c_purchase_count: "min_purchase_count",
    _c_spend_30d: "min_spend_30d", _c_win_back: "min_days_since_last_purchase",
    _c_identified_by: "identified_by", _c_bins: "bins", _c_weekdays: "weekdays",
    _c_hours: "hours", _c_dates: "dates", _c_min_gross: "min_gross", _c_lines: "lines",
    _c_min_points: "min_points", _c_spend_days: "min_spend_days",
    _c_bought_within: "bought_within_days", _c_first_purchase: "first_purchase",
    _c_every: "purchase_count_every", _c_referred: "referred", _c_codes: "codes",
    _c_coupon: "coupon", _c_max_per_member: "max_per_member",
    _c_max_per_store: "max_per_store", _c_budget: "budget",
}


def compile_checks(rule: Rule) -> tuple[Check, ...]:
    """The rule's condition checks, in the order reasons are reported."""
    if rule.unknown is not None:
        return (_c_unknown,)
    checks: list[Check] = []
    if not rule.anonymous:
        checks.append(_c_member)
    for present, check in (
            (rule.tiers, _c_tiers), (rule.min_tier, _c_min_tier), (rule.groups, _c_groups),
            (rule.birthday, _c_birthday), (rule.min_purchase_count, _c_purchase_count),
            (rule.min_spend_30d, _c_spend_30d),
            (rule.min_days_since_last_purchase, _c_win_back),
            (rule.identified_by, _c_identified_by), (rule.bins, _c_bins),
            (rule.weekdays, _c_weekdays), (rule.hours, _c_hours), (rule.dates, _c_dates),
            (rule.min_gross, _c_min_gross),
            (rule.min_points, _c_min_points), (rule.min_spend_days, _c_spend_days),
            (rule.bought_within_days, _c_bought_within),
            (rule.first_purchase, _c_first_purchase),
            (rule.purchase_count_every, _c_every),
            (True if rule.kind == "referral" else rule.referred, _c_referred),
            (rule.codes, _c_codes), (True if rule.coupon else None, _c_coupon)):
        if present is not None:
            checks.append(check)
    if rule.targets_lines:
        checks.append(_c_lines)
    # Limits last: a rule that would not apply anyway is not reported as used up.
    for limit, check in ((rule.max_per_member, _c_max_per_member),
                         (rule.max_per_store, _c_max_per_store),
                         (rule.budget, _c_budget)):
        if limit is not None:
            checks.append(check)
    return tuple(checks)


def _why_not(rule: Rule, f: _Facts) -> str | None:
    """The first reason the rule's conditions do not hold, or None when they all hold."""
    return _why_not_coded(rule, f)[0]


def _why_not_coded(rule: Rule, f: _Facts) -> tuple[str | None, str]:
    """(the first reason the rule does not hold or None, the failing check's name)."""
    checks = rule.checks
    if checks is None:
        # Compiled on first use (idempotent, so a race between threads is harmless).
        checks = rule.checks = compile_checks(rule)
    for check in checks:
        reason = check(rule, f)
        if reason is not None:
            return reason, WHY.get(check, "condition")
    return None, ""


def _targets(rule: Rule, f: _Facts) -> list[int]:
    """Indexes of the rule's target lines (a line must match every line key present)."""
    found: set[int] | None = None
    for wanted, where in ((rule.skus, f.sku_lines), (rule.categories, f.category_lines)):
        if wanted is None:
            continue
        hits: set[int] = set()
        if len(wanted) <= len(where):
            for key in wanted:
                lines = where.get(key)
                if lines:
                    hits.update(lines)
        else:
            for key, lines in where.items():
                if key in wanted:
                    hits.update(lines)
        found = hits if found is None else found & hits
    return sorted(found) if found else []


def _split(amount: int, targets: Sequence[int] | None, remaining: list[int]) -> None:
    """Take ``amount`` off the target lines (None: all lines) in proportion to their
    remaining.

    Each share rounds toward zero; the minor units left over go one at a time to the
    target lines in basket order, skipping lines with nothing remaining. (A line with
    something remaining still has at least 1 after its share unless ``amount`` is the
    whole remaining, and then nothing is left over; so checking after is the same.)
    """
    if amount <= 0:
        return
    if targets is None:
        total = sum(remaining)
        if total <= 0:
            return
        after = [r - amount * r // total for r in remaining]
        left = amount - (total - sum(after))
        i = 0
        while left > 0:
            if after[i] > 0:
                after[i] -= 1
                left -= 1
            i += 1
        remaining[:] = after
        return
    total = sum(remaining[i] for i in targets)
    if total <= 0:
        return
    left = amount
    for i in targets:
        share = amount * remaining[i] // total
        remaining[i] -= share
        left -= share
    for i in targets:
        if left <= 0:
            break
        if remaining[i] > 0:
            remaining[i] -= 1
            left -= 1


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
        # any_mask | the buckets of the sale's values, with the loop in C.
        allowed = reduce(or_, filter(None, map(dim.buckets.get, values[dim.name])),
                         dim.any_mask)
        mask &= allowed
        if not mask:
            break
    mask |= index.always
    out: dict[str, list[Rule]] = {k: [] for k in KINDS}
    if not mask:
        return out
    # Bit i of the mask is character i of the reversed binary string; str.find jumps
    # over the zeros at C speed.
    bits = bin(mask)[:1:-1]
    rules = index.rules
    i = bits.find("1")
    while i >= 0:
        rule = rules[i]
        out[rule.kind].append(rule)
        i = bits.find("1", i + 1)
    return out


class _Explainer:
    __slots__ = ("bundle", "cur", "div", "entries", "listed", "mu")

    def __init__(self, bundle: Bundle | None):
        self.bundle = bundle
        self.entries: list[dict[str, Any]] = []
        self.listed = 0
        self.mu = bundle.minor_units if bundle is not None else 0
        self.div = 10**self.mu
        self.cur = f" {bundle.currency}" if bundle is not None else ""

    def money(self, amount: int) -> str:
        # format_money inlined: a quote formats dozens of amounts.
        if amount < 0 or not self.mu:
            return format_money(amount, self.mu) + self.cur
        return f"{amount // self.div}.{amount % self.div:0{self.mu}d}{self.cur}"

    def applied(self, rule: Rule, text: str, **numbers: Any) -> None:
        self.listed += 1
        entry: dict[str, Any] = {"rule": rule.id, "kind": rule.kind, "applied": True}
        entry.update(numbers)
        entry["text"] = f"{rule.id}: {text}"
        self.entries.append(entry)

    def skipped(self, rule: Rule, reason: str, why: str = "", **extra: Any) -> None:
        self.listed += 1
        entry: dict[str, Any] = {"rule": rule.id, "kind": rule.kind, "applied": False,
                                 "reason": reason}
        if why:
            entry["why"] = why
        entry.update(extra)
        entry["text"] = f"{rule.id}: not applied, {reason}"
        self.entries.append(entry)

    def note(self, step: str, text: str, **extra: Any) -> None:
        entry: dict[str, Any] = {"step": step}
        entry.update(extra)
        entry["text"] = text
        self.entries.append(entry)


class _Kind:
    """Walks the rules of one kind in order, with exclusivity and the explanation."""

    def __init__(self, rules: list[Rule], facts: _Facts, ex: _Explainer):
        self.facts = facts
        self.ex = ex
        self.rules = rules

    def holding(self, *, first_only: bool = False) -> list[tuple[Rule, list[int] | None]]:
        """The rules whose conditions hold, in order, stopping after an exclusive one
        (or after the first one with ``first_only``); the rest are explained."""
        out: list[tuple[Rule, list[int] | None]] = []
        stopper: Rule | None = None
        for rule in self.rules:
            if stopper is not None:
                if first_only and not stopper.exclusive:
                    why = (f"multiplier {stopper.id} already applies; only the first "
                           f"multiplier that applies counts")
                else:
                    why = f"exclusive rule {stopper.id} already applies"
                self.ex.skipped(rule, why, "exclusive")
                continue
            reason, code = _why_not_coded(rule, self.facts)
            if reason is not None:
                self.ex.skipped(rule, reason, code)
                continue
            targets = _targets(rule, self.facts) if rule.targets_lines else None
            out.append((rule, targets))
            if rule.exclusive or first_only:
                stopper = rule
        return out


def _limit(name: str, message: str) -> LimitExceeded:
    return LimitExceeded(name, message)


def _unit_discount(rule: Rule, targets: list[int] | None, lines: Sequence[Any],
                   remaining: list[int]) -> list[tuple[int, int]]:
    """(line, amount) of a per-unit, buy-X-get-Y, cheapest-units or reward discount.

    Per unit: ``amount`` off each unit of each target line (at most what the line has
    left). Units: the cheapest units of the target lines (by unit price, then basket
    order) are ``percent_bps`` off; buy X get Y makes ``floor(U / (X + Y)) × Y`` of the
    ``U`` units cheap, ``cheapest: N`` (and a reward's ``units``) makes ``min(N, U)``.
    A unit is worth ``remaining / qty`` of its line; a line's amount is
    ``floor(remaining × units × percent_bps / (qty × 10000))``.
    """
    idx = range(len(lines)) if targets is None else targets
    if rule.per_unit:
        per = rule.amount or 0
        return [(i, min(remaining[i], per * lines[i].qty)) for i in idx]
    units = sum(lines[i].qty for i in idx)
    if rule.buy is not None and rule.get is not None:
        free = units // (rule.buy + rule.get) * rule.get
    else:
        free = min(rule.cheapest or 0, units)
    bps = rule.percent_bps if rule.percent_bps is not None else 10000
    out = []
    # A unit is worth an equal share of what its line has left (earlier discounts
    # included); the cheapest by that worth first, ties in basket order.
    for i in sorted((j for j in idx if lines[j].qty),
                    key=lambda j: (Fraction(remaining[j], lines[j].qty), j)):
        if free <= 0:
            break
        take = min(free, lines[i].qty)
        free -= take
        out.append((i, remaining[i] * take * bps // (lines[i].qty * 10000)))
    return out


def _take(rule: Rule, targets: list[int] | None, lines: Sequence[Any],
          remaining: list[int], budget_left: int | None = None) -> tuple[int, int, str]:
    """Apply one discount-like rule to ``remaining``: (amount, R, what capped it or "")."""
    r_sum = sum(remaining) if targets is None else sum(remaining[i] for i in targets)
    cap, cap_by = rule.max_amount, "the rule's maximum"
    if budget_left is not None and (cap is None or budget_left < cap):
        cap, cap_by = budget_left, "the rule's budget"
    if rule.per_unit or rule.buy is not None or rule.cheapest is not None:
        shares = _unit_discount(rule, targets, lines, remaining)
        amount = sum(a for _, a in shares)
        if cap is not None and amount > cap:
            _split(cap, [i for i, a in shares if a] or None, remaining)
            return cap, r_sum, cap_by
        for i, a in shares:
            remaining[i] -= a
        return amount, r_sum, ""
    if rule.percent_bps is not None:
        amount = r_sum * rule.percent_bps // 10000
    else:
        amount = min(rule.amount or 0, r_sum)
    capped = ""
    if cap is not None and amount > cap:
        amount, capped = cap, cap_by
    _split(amount, targets, remaining)
    return amount, r_sum, capped


def _budget(rule: Rule, ctx: QuoteContext, amount: int) -> tuple[int, bool]:
    """``amount`` within what is left of the rule's budget at this terminal."""
    if rule.budget is None:
        return amount, False
    left = max(0, rule.budget - ctx.budget_used.get(rule.id, 0))
    return (left, True) if amount > left else (amount, False)


def _coupon_code(seed: str, rule: Rule) -> str:
    digest = hashlib.sha256(f"{seed}\x00{rule.id}".encode()).hexdigest()[:10].upper()
    return f"{rule.prefix}{digest}"


def _offline_block(bundle: Bundle, ctx: QuoteContext) -> tuple[str | None, str]:
    """The offline limit that forbids redeeming anything now, with its text."""
    off = bundle.offline
    if not ctx.offline or off is None:
        return None, ""
    if off.max_pending is not None and ctx.pending_count >= off.max_pending:
        return "max_pending", (f"offline with {ctx.pending_count} events waiting "
                               f"(limit {off.max_pending}): nothing may be redeemed")
    if (off.max_age_hours is not None and ctx.oldest_pending_age_s is not None
            and ctx.oldest_pending_age_s > off.max_age_hours * 3600):
        return "max_age_hours", (f"offline and the oldest waiting event is older than "
                                 f"{off.max_age_hours} hours: nothing may be redeemed")
    return None, ""


def quote(bundle: Bundle | None, request: QuoteRequest, member: MemberView | None,
          ctx: QuoteContext, *, use_index: bool = True) -> Quote:
    """Compute a sale (``rules.md``, "Computing a sale"; docs/rules.md for the kinds
    and conditions of issue 21).

    ``use_index=False`` scans every rule (tests compare it with the index). Raises
    :class:`LimitExceeded` for a redemption, credit or reward request over a limit,
    and :class:`RulesError` for an invalid request.
    """
    lines = request.lines
    totals = [ln.qty * ln.unit_price for ln in lines]
    gross = sum(totals)
    remaining = list(totals)
    ex = _Explainer(bundle)
    valid = bundle is not None and ctx.at < bundle.expires_at
    active = member if member is not None and member.active else None
    discounts: list[tuple[str, int]] = []
    points_earned: list[tuple[str, int]] = []
    credits_earned: list[tuple[str, str, int, str | None]] = []
    lottery = 0
    facts: _Facts | None = None
    extra = Quote(0, [], 0, 0, 0, [], 0, [], [], 0, None)  # issue 21's rows
    reward_points = reward_value = 0

    def used(rule: Rule, amount: int) -> None:
        if rule.limited and amount > 0:
            extra.uses.append((rule.id, amount))

    def code_used(rule: Rule, f: _Facts) -> None:
        if rule.coupon:
            code = _coupon_for(rule, f)[0]
            if code is not None:
                extra.codes_used.append((rule.id, code, True))
        elif rule.codes is not None:
            code = next((c for c in f.codes if c in rule.codes), None)
            if code is not None:
                extra.codes_used.append((rule.id, code, rule.single_use))

    if bundle is None:
        ex.note("rules", "no rule bundle on this terminal; no rule applies")
    elif not valid:
        ex.note("rules", f"the rules (version {bundle.version}) expired at "
                         f"{bundle.expires_at.isoformat()}; no rule applies")
    else:
        local = ctx.at.astimezone(bundle.tz)
        facts = _Facts(bundle, request, member, local, gross, ctx)
        looked_at = considered(bundle, facts.index_values(), use_index)
        if facts.member_note:
            ex.note("member", f"{facts.member_note}: only rules for everyone apply")
        # 2. Discounts.
        for rule, targets in _Kind(looked_at["discount"], facts, ex).holding():
            budget_left = (None if rule.budget is None
                           else max(0, rule.budget - ctx.budget_used.get(rule.id, 0)))
            amount, r_sum, capped = _take(rule, targets, lines, remaining, budget_left)
            if amount:
                discounts.append((rule.id, amount))
            used(rule, amount)
            code_used(rule, facts)
            text = f"{ex.money(amount)} off"
            if rule.per_unit:
                text += f" ({ex.money(rule.amount or 0)} off each unit)"
            elif rule.buy is not None:
                text += f" (buy {rule.buy} get {rule.get}, cheapest units first)"
            elif rule.cheapest is not None:
                text += f" (the {rule.cheapest} cheapest units)"
            elif rule.percent_bps is not None:
                text += f" ({rule.percent_bps // 100}.{rule.percent_bps % 100:02d} % of " \
                        f"{ex.money(r_sum)})"
            if capped:
                text += f", capped by {capped}"
            if r_sum == 0:
                text += " (nothing left to discount on its lines)"
            ex.applied(rule, text, amount=amount)
        # 2b. Rewards the customer takes for points (a reward catalogue).
        reward_points, reward_value = _rewards(bundle, request, active, ctx, facts,
                                               looked_at["reward"], lines, remaining,
                                               discounts, extra, ex)

    net = sum(remaining)
    # 4. Redemption.
    redeemed_points, redeemed_value, credits_used, limits_held = _redeem(
        bundle if valid else None, request, member, active, ctx, net, ex,
        reward_points=reward_points, reward_value=reward_value,
        today=facts.date if facts is not None else None)
    payable = net - redeemed_value - sum(a for _, a in credits_used)

    # 5. Earning.
    if bundle is not None and facts is not None:
        def base_of(targets: list[int] | None) -> int:
            if net == 0:
                return 0
            target_net = net if targets is None else sum(remaining[i] for i in targets)
            return target_net * payable // net

        def units_of(targets: list[int] | None) -> int:
            return sum(ln.qty for ln in lines) if targets is None else \
                sum(lines[i].qty for i in targets)

        total_points = 0
        for rule, targets in _Kind(looked_at["points"], facts, ex).holding():
            numbers_base: int | None = None
            if rule.per_visit is not None:
                pts, how = rule.per_visit, "for the visit"
            elif rule.per_unit is not None:
                n = units_of(targets)
                pts, how = int(rule.per_unit) * n, f"for {n} units"
            else:
                base = base_of(targets)
                pts, how = base // rule.per_spend * rule.points, f"on {ex.money(base)}"
                numbers_base = base
            at_max = rule.max_points is not None and pts > rule.max_points
            if at_max and rule.max_points is not None:
                pts = rule.max_points
            pts, over = _budget(rule, ctx, pts)
            total_points += pts
            if pts:
                points_earned.append((rule.id, pts))
            used(rule, pts)
            code_used(rule, facts)
            numbers: dict[str, Any] = {"points": pts}
            if numbers_base is not None:
                numbers["base"] = numbers_base
            ex.applied(rule, f"{pts} points {how}"
                       + (", capped by the rule's maximum" if at_max else "")
                       + (", capped by the rule's budget" if over else ""), **numbers)
        for rule, _ in _Kind(looked_at["multiplier"], facts, ex).holding(first_only=True):
            extra_pts = total_points * rule.bps // 10000 - total_points
            if extra_pts:
                points_earned.append((rule.id, extra_pts))
            ex.applied(rule, f"{extra_pts} extra points (×{_factor(rule.bps)} on "
                             f"{total_points})", points=extra_pts)
        expires_base = facts.date

        def expiry(rule: Rule) -> str | None:
            return (None if rule.expires_days is None else
                    (expires_base + dt.timedelta(days=rule.expires_days)).isoformat())

        def credit_amount(rule: Rule, base: int) -> tuple[int, str]:
            if rule.amount is not None:
                amount, how = rule.amount, ""
            else:
                amount, how = base * (rule.percent_bps or 0) // 10000, \
                    f" on {ex.money(base)}"
            note = ""
            if rule.max_amount is not None and amount > rule.max_amount:
                amount, note = rule.max_amount, ", capped by the rule's maximum"
            amount, over = _budget(rule, ctx, amount)
            return amount, how + note + (", capped by the rule's budget" if over else "")

        for rule, targets in _Kind(looked_at["credit"], facts, ex).holding():
            base = base_of(targets)
            amount, how = credit_amount(rule, base)
            expires = expiry(rule)
            if amount:
                credits_earned.append((rule.id, rule.credit_kind, amount, expires))
            used(rule, amount)
            code_used(rule, facts)
            ex.applied(rule, f"{ex.money(amount)} of {rule.credit_kind}"
                       + how.split(",")[0] + (f", expires {expires}" if expires else "")
                       + ("," + how.split(",", 1)[1] if "," in how else ""),
                       amount=amount, credit_kind=rule.credit_kind, expires=expires, base=base)
        for rule, targets in _Kind(looked_at["lottery"], facts, ex).holding():
            base = base_of(targets)
            entries = base // rule.per_spend * rule.entries
            lottery += entries
            ex.applied(rule, f"{entries} draw entries on {ex.money(base)}", entries=entries,
                       base=base)
        _earn_issue21(bundle, ctx, facts, looked_at, net, remaining, base_of, credit_amount,
                      expiry, extra, used, code_used, ex)
        for rule in bundle.unknown_kind:
            ex.skipped(rule, rule.unknown or "unknown kind", "unknown")
        left_out = len(bundle.rules) - ex.listed
        if left_out > 0:
            ex.note("index", f"{left_out} other rules do not fit this sale (another tier, "
                             f"day, time, product, card or member) and were not looked at",
                    rules=left_out)
    return Quote(
        gross=gross, discounts=discounts, net=net, redeemed_points=redeemed_points,
        redeemed_value=redeemed_value, credits_used=credits_used, payable=payable,
        points_earned=points_earned, credits_earned=credits_earned, lottery_entries=lottery,
        rules_version=bundle.version if bundle is not None else None, explain=ex.entries,
        line_nets=remaining, limits_held=limits_held, fees=extra.fees,
        referral_rewards=extra.referral_rewards, coupons_issued=extra.coupons_issued,
        codes_used=extra.codes_used, rewards=extra.rewards, uses=extra.uses,
    )


def _earn_issue21(bundle: Bundle, ctx: QuoteContext, facts: _Facts,
                  looked_at: dict[str, list[Rule]], net: int, remaining: list[int],
                  base_of: Callable[[list[int] | None], int],
                  credit_amount: Callable[[Rule, int], tuple[int, str]],
                  expiry: Callable[[Rule], str | None], extra: Quote,
                  used: Callable[[Rule, int], None],
                  code_used: Callable[[Rule, _Facts], None], ex: _Explainer) -> None:
    """Fees, referral shares and coupons (after every earning rule of version 1)."""
    for rule, targets in _Kind(looked_at["fee"], facts, ex).holding():
        on = net if targets is None else sum(remaining[i] for i in targets)
        amount = (rule.amount or 0) + on * (rule.percent_bps or 0) // 10000
        capped = rule.max_amount is not None and amount > rule.max_amount
        if capped and rule.max_amount is not None:
            amount = rule.max_amount
        amount, over = _budget(rule, ctx, amount)
        if amount:
            extra.fees.append((rule.id, amount))
        used(rule, amount)
        code_used(rule, facts)
        ex.applied(rule, f"fee {ex.money(amount)} on {ex.money(on)}"
                   + (", capped by the rule's maximum" if capped else "")
                   + (", capped by the rule's budget" if over else ""),
                   amount=amount, base=on)
    for rule, targets in _Kind(looked_at["referral"], facts, ex).holding():
        assert facts.member is not None and facts.member.referred_by is not None
        referrer = facts.member.referred_by
        base = base_of(targets)
        amount, how = credit_amount(rule, base)
        expires = expiry(rule)
        if amount:
            extra.referral_rewards.append((rule.id, referrer, rule.credit_kind, amount,
                                           expires))
        used(rule, amount)
        code_used(rule, facts)
        what = "points" if rule.credit_kind == "points" else ex.money(amount)
        ex.applied(rule, f"{amount if what == 'points' else what}"
                   f"{' points' if what == 'points' else ' of ' + rule.credit_kind} "
                   f"for referrer {referrer}{how}", amount=amount,
                   credit_kind=rule.credit_kind, referrer=referrer, expires=expires, base=base)
    for rule, _ in _Kind(looked_at["coupon"], facts, ex).holding():
        expires = expiry(rule)
        if ctx.coupon_seed is None:
            ex.applied(rule, "no coupon issued: the sale has no reference to make a code "
                             "from (quote it through the agent)", amount=0)
            continue
        amount, over = _budget(rule, ctx, 1)
        if not amount:
            ex.applied(rule, "no coupon issued: the rule's budget is spent", amount=0)
            continue
        code = _coupon_code(ctx.coupon_seed, rule)
        extra.coupons_issued.append((rule.id, code, rule.for_rule or "", expires))
        used(rule, 1)
        code_used(rule, facts)
        ex.applied(rule, f"coupon {code} for {rule.for_rule}"
                   + (f", valid until {expires}" if expires else ""), amount=1, code=code,
                   for_rule=rule.for_rule, expires=expires)


def _rewards(bundle: Bundle, request: QuoteRequest, active: MemberView | None,
             ctx: QuoteContext, facts: _Facts, listed: list[Rule], lines: Sequence[Any],
             remaining: list[int], discounts: list[tuple[str, int]], extra: Quote,
             ex: _Explainer) -> tuple[int, int]:
    """Rewards asked for (points → a named reward); the others listed as available.

    Returns (points they cost, discount they give).
    """
    asked = list(dict.fromkeys(request.rewards))
    if not asked:
        for rule in listed:
            reason, code = _why_not_coded(rule, facts)
            if reason is not None:
                ex.skipped(rule, reason, code)
            else:
                ex.skipped(rule, f"not asked for: {rule.name} for {rule.cost_points} points",
                           "not_requested", available=facts.points_balance >= rule.cost_points,
                           cost_points=rule.cost_points, name=rule.name)
        return 0, 0
    if active is None:
        raise _limit("member", "only an active member can take a reward for points")
    block, text = _offline_block(bundle, ctx)
    if block is not None:
        raise _limit(block, text)
    left = facts.points_balance
    total_points = total_value = 0
    for rid in asked:
        found = bundle.rule(rid)
        if found is None or found.kind != "reward":
            raise RulesError(f"{rid!r} is not a reward of these rules")
        rule = found
        reason = _why_not(rule, facts)
        if reason is not None:
            raise _limit("reward", f"reward {rid} cannot be taken: {reason}")
        if rule.cost_points > left:
            raise _limit("balance", f"reward {rid} costs {rule.cost_points} points; the "
                                    f"member has {left}")
        targets = _targets(rule, facts) if rule.targets_lines else None
        amount, _, _ = _take(rule, targets, lines, remaining)
        left -= rule.cost_points
        total_points += rule.cost_points
        total_value += amount
        extra.rewards.append((rule.id, rule.cost_points))
        if rule.limited:
            extra.uses.append((rule.id, rule.cost_points))
        if amount:
            discounts.append((rule.id, amount))
        ex.applied(rule, f"{rule.name} for {rule.cost_points} points "
                         f"({ex.money(amount)} off)", amount=amount, points=rule.cost_points)
    for rule in listed:
        if rule.id not in asked:
            ex.skipped(rule, "not asked for", "not_requested")
    return total_points, total_value


def _redeem(bundle: Bundle | None, request: QuoteRequest, member: MemberView | None,
            active: MemberView | None, ctx: QuoteContext, net: int,
            ex: _Explainer, *, reward_points: int = 0, reward_value: int = 0,
            today: dt.date | None = None) -> tuple[int, int, list[tuple[str, int]], list[str]]:
    """Points then credits, within every limit (step 4 and the offline rules of step 6).

    ``reward_points`` were already taken by rewards (and ``reward_value`` counts in the
    offline day allowance); lots of ``balance_lots`` that expired before ``today`` are
    not spendable.
    """
    if active is not None and today is not None and active.balance_lots:
        _note_expiring(active, today, ex)
    want = request.redeem_points
    want_points = want is not None and want != 0
    if not want_points and not request.use_credit:
        return 0, 0, [], []
    is_max = want == "max"
    held: list[str] = []

    def refuse(limit: str, message: str) -> LimitExceeded:
        return _limit(limit, message)

    # Who and with what rules.
    if bundle is None:
        if is_max and not request.use_credit:
            ex.note("redeem", "nothing redeemed: no valid rule bundle", limit="bundle")
            return 0, 0, [], ["bundle"]
        raise refuse("bundle", "nothing can be redeemed without a valid rule bundle")
    if active is None:
        why = ("no member identified" if member is None
               else f"the member is {member.status.replace('_', ' ')}")
        if is_max and not request.use_credit:
            ex.note("redeem", f"nothing redeemed: {why}", limit="member")
            return 0, 0, [], ["member"]
        raise refuse("member", f"{why}; only an active member can redeem")

    # Offline: what may be redeemed at all, and how much today.
    day_left: int | None = None
    off = bundle.offline
    block, block_text = _offline_block(bundle, ctx)
    if ctx.offline and off is not None:
        if block is not None:
            held.append(block)
            ex.note("limit", block_text, limit=block)
        if off.max_redeem_value_per_member_day is not None:
            day_left = max(0, off.max_redeem_value_per_member_day - ctx.redeemed_today
                           - ctx.credit_used_today - reward_value)

    redeemed_points = redeemed_value = 0
    if want_points:
        pc = bundle.points
        if pc is None:
            if not is_max:
                raise refuse("points", "this club's rules do not allow redeeming points")
            ex.note("redeem", "points cannot be redeemed under these rules", limit="points")
        else:
            balance = (max(0, active.balances.get("points", 0)) if today is None
                       else spendable(active, "points", today))
            balance = max(0, balance - reward_points)
            value = pc.value_by_tier.get(active.tier or "", pc.value)
            share_cap, share_name = net, "payable"
            if pc.max_redeem_share_bps is not None:
                capped_share = net * pc.max_redeem_share_bps // 10000
                if capped_share < net:
                    share_cap, share_name = capped_share, "max_redeem_share_bps"
            # (most points allowed, the limit that sets it)
            bounds: list[tuple[int, str]] = [(0, block)] if block is not None else []
            bounds += [(balance, "balance"), (share_cap // value, share_name)]
            if day_left is not None:
                bounds.append((day_left // value, "max_redeem_value_per_member_day"))
            most, bound_by = min(bounds, key=lambda b: b[0])
            if is_max:
                pts = most
                if 0 < pts < pc.min_redeem:
                    ex.note("redeem", f"at most {pts} points could be redeemed ({bound_by}), "
                                      f"fewer than the minimum {pc.min_redeem}; none redeemed",
                            limit="min_redeem")
                    held.append("min_redeem")
                    pts = 0
                elif bound_by != "balance" and pts < balance and bound_by not in held:
                    held.append(bound_by)
            else:
                assert isinstance(want, int)
                pts = want
                if pts < pc.min_redeem:
                    raise refuse("min_redeem", f"at least {pc.min_redeem} points must be "
                                               f"redeemed at once, not {pts}")
                if pts > most:
                    limit = next(name for cap, name in bounds if pts > cap)
                    raise refuse(limit, _points_limit_text(limit, pts, balance, share_cap,
                                                           value, day_left, ex))
            redeemed_points, redeemed_value = pts, pts * value
            if day_left is not None:
                day_left -= redeemed_value
            ex.note("redeem", f"{pts} points redeemed for {ex.money(redeemed_value)}"
                    + (f" (the most allowed: {bound_by})" if is_max else ""),
                    points=pts, value=redeemed_value)

    credits_used: list[tuple[str, int]] = []
    if request.use_credit:
        cc = bundle.credits
        still = net - redeemed_value
        spent = 0
        left_bal = dict(active.balances)
        if today is not None and active.balance_lots:
            left_bal = {k: spendable(active, k, today) for k in left_bal}
        for kind in request.use_credit:
            if cc is None or kind not in cc.accepted:
                raise refuse("accepted", f"credit {kind!r} is not accepted at this merchant")
            bounds = [(0, block)] if block is not None else []
            bounds += [(max(0, left_bal.get(kind, 0)), "balance"), (still, "payable")]
            if cc.use_cap_per_invoice is not None:
                bounds.append((max(0, cc.use_cap_per_invoice - spent), "use_cap_per_invoice"))
            if cc.use_cap_per_day is not None:
                bounds.append((max(0, cc.use_cap_per_day - ctx.credit_used_today - spent),
                               "use_cap_per_day"))
            if day_left is not None:
                bounds.append((day_left, "max_redeem_value_per_member_day"))
            amount, bound_by = min(bounds, key=lambda b: b[0])
            if bound_by not in ("balance", "payable") and bound_by not in held:
                held.append(bound_by)
            if amount:
                credits_used.append((kind, amount))
            left_bal[kind] = left_bal.get(kind, 0) - amount
            still -= amount
            spent += amount
            if day_left is not None:
                day_left -= amount
            ex.note("credit", f"{ex.money(amount)} of {kind} used (limited by {bound_by})",
                    credit_kind=kind, amount=amount, limit=bound_by)
    return redeemed_points, redeemed_value, credits_used, held


def _note_expiring(member: MemberView, today: dt.date, ex: _Explainer) -> None:
    """List the member's dated balance lots: expired (not spendable) or expiring."""
    day = today.isoformat()
    for kind in sorted(k for k in member.balance_lots if isinstance(k, str)):
        for expires, amount in member.expiring(kind):
            shown = str(amount) + " points" if kind == "points" else \
                f"{ex.money(amount)} of {kind}"
            if expires < day:
                ex.note("expiry", f"{shown} expired after {expires}; not spendable",
                        balance_kind=kind, amount=amount, expires=expires, expired=True)
            else:
                ex.note("expiry", f"{shown} expire after {expires}", balance_kind=kind,
                        amount=amount, expires=expires, expired=False)


def _points_limit_text(limit: str, pts: int, balance: int, share_cap: int, value: int,
                       day_left: int | None, ex: _Explainer) -> str:
    if limit == "balance":
        return f"the member has {balance} points; {pts} asked"
    if limit == "payable":
        return (f"{pts} points are worth {ex.money(pts * value)}, more than the "
                f"{ex.money(share_cap)} to pay")
    if limit == "max_redeem_share_bps":
        return (f"{pts} points are worth {ex.money(pts * value)}; at most "
                f"{ex.money(share_cap)} of this sale may be paid with points")
    if limit == "max_redeem_value_per_member_day":
        return (f"offline, this member may redeem at most {ex.money(day_left or 0)} more "
                f"today at this terminal")
    if limit == "max_pending":
        return "offline with too many events waiting for the club: nothing may be redeemed"
    if limit == "max_age_hours":
        return "offline for too long (oldest waiting event too old): nothing may be redeemed"
    raise RulesError(f"unknown limit {limit}")  # pragma: no cover
