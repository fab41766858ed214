"""A rule's conditions: one small check per condition, compiled once per rule.

Each check is ``(rule, facts) -> the reason it fails, or None``. A rule's checks are
compiled when the bundle is loaded, in a fixed order, so that the "first reason"
does not depend on the order of keys in the bundle JSON; each carries the
machine-readable name of its condition (the explanation's ``why``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from agent.rules.explain import Explainer, format_money, or_list
from agent.rules.facts import Facts, is_birthday
from agent.rules.limits import c_budget, c_codes, c_coupon, c_max_per_member, c_max_per_store
from agent.rules.model import MemberView
from agent.rules.rule import WEEKDAYS, Rule

Check = Callable[[Rule, Facts], "str | None"]


def _c_unknown(rule: Rule, f: Facts) -> str | None:
    return rule.unknown


def _c_member(rule: Rule, f: Facts) -> str | None:
    if f.member is None:
        return f"{f.member_note}; the rule is for members only"
    return None


def _who(f: Facts) -> str:
    return f.member_note or "no member"


def _c_tiers(rule: Rule, f: Facts) -> str | None:
    m, tiers = f.member, rule.tiers
    assert tiers is not None
    if m is None:
        return f"{_who(f)}; rule needs tier {or_list(list(tiers))}"
    if m.tier not in tiers:
        return f"member is {m.tier or 'without a tier'}; rule needs {or_list(list(tiers))}"
    return None


def _c_min_tier(rule: Rule, f: Facts) -> str | None:
    m = f.member
    if m is None:
        return f"{_who(f)}; rule needs tier {rule.min_tier} or higher"
    rank = f.bundle.tier_ranks.get(m.tier) if m.tier is not None else None
    if rank is None or rank < rule.min_tier_rank:
        return f"member is {m.tier or 'without a tier'}; rule needs {rule.min_tier} or higher"
    return None


def _c_groups(rule: Rule, f: Facts) -> str | None:
    m, groups = f.member, rule.groups
    assert groups is not None
    if m is None:
        return f"{_who(f)}; rule needs group {or_list(list(groups))}"
    if m.groups.isdisjoint(groups):
        return f"member is not in group {or_list(list(groups))}"
    return None


def _c_birthday(rule: Rule, f: Facts) -> str | None:
    m = f.member
    if m is None:
        return f"{_who(f)}; rule is for the member's birthday {rule.birthday}"
    md = m.birth_month_day
    if md is None:
        return "member's birthday is not known"
    if rule.birthday == "month" and md[0] != f.date.month:
        return "it is not the member's birthday month"
    if rule.birthday == "day" and not is_birthday(md, f.date):
        return "today is not the member's birthday"
    return None



def _c_win_back(rule: Rule, f: Facts) -> str | None:
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


def _c_identified_by(rule: Rule, f: Facts) -> str | None:
    kinds = rule.identified_by
    assert kinds is not None
    if f.token_kind in kinds:
        return None
    how = f"identified by {f.token_kind}" if f.token_kind else "not identified by a card"
    return f"customer is {how}; rule needs {or_list(list(kinds))}"


def _c_bins(rule: Rule, f: Facts) -> str | None:
    bins = rule.bins
    assert bins is not None
    if f.bin6 in bins:
        return None
    if f.bin6 is None:
        return "no bank card was read; rule is for certain bank cards"
    return f"bank card {f.bin6} is not one of the rule's banks"


def _c_weekdays(rule: Rule, f: Facts) -> str | None:
    days = rule.weekdays
    assert days is not None
    if f.weekday in days:
        return None
    return (f"today is {WEEKDAYS[f.weekday]}; rule is for "
            f"{or_list([WEEKDAYS[d] for d in sorted(days)])}")


def _c_hours(rule: Rule, f: Facts) -> str | None:
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


def _c_dates(rule: Rule, f: Facts) -> str | None:
    dates = rule.dates
    assert dates is not None
    d = f.date
    for a, b in dates:
        if a <= d <= b:
            return None
    spans = ", ".join(f"{a} to {b}" for a, b in dates)
    return f"today is {d}; rule runs {spans}"


def _c_min_gross(rule: Rule, f: Facts) -> str | None:
    need = rule.min_gross
    assert need is not None
    if f.gross >= need:
        return None
    mu = f.bundle.minor_units
    return (f"basket is {format_money(f.gross, mu)}; rule needs at least "
            f"{format_money(need, mu)}")


def _c_lines(rule: Rule, f: Facts) -> str | None:
    found = f.last_targets = targets(rule, f)
    if found:
        return None
    parts = []
    if rule.skus is not None:
        parts.append(f"product {or_list(list(rule.skus))}")
    if rule.categories is not None:
        parts.append(f"category {or_list(list(rule.categories))}")
    return "no basket line is " + " in ".join(parts)



def _c_bought_within(rule: Rule, f: Facts) -> str | None:
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


def _c_first_purchase(rule: Rule, f: Facts) -> str | None:
    if f.member is None:
        return f"{_who(f)}; rule is about the member's first purchase"
    first = f.purchases == 0
    if first != rule.first_purchase:
        return (f"member has {f.purchases} earlier purchases; rule is for the first"
                if rule.first_purchase else "this is the member's first purchase; rule is "
                                            "for later ones")
    return None


def _c_every(rule: Rule, f: Facts) -> str | None:
    n = rule.purchase_count_every
    assert n is not None
    if f.member is None:
        return f"{_who(f)}; rule is for every {n}th purchase"
    this = f.purchases + 1
    if this % n:
        return f"this is the member's purchase {this}; rule is for every {n}th"
    return None


def _c_referred(rule: Rule, f: Facts) -> str | None:
    m = f.member
    if m is None:
        return f"{_who(f)}; rule is about referred members"
    if rule.kind == "referral" and m.referred_by is None:
        # A referral rule pays a referrer: with none it cannot apply, whatever its
        # `referred` key says (`referred: false` on it never holds).
        return "member was not referred by another member"
    want = rule.referred if rule.referred is not None else True
    if (m.referred_by is not None) != want:
        return ("member was not referred by another member" if want
                else "member was referred by another member")
    return None


# ------------------------------------------- "the member has at least N of something"


@dataclass(frozen=True, slots=True)
class Threshold:
    """A condition "the member's statistic is at least the rule's figure".

    Without a member the rule does not hold; a statistic the record lacks counts
    as 0. ``absent`` and ``short`` are the reasons, with ``{need}``, ``{have}`` and
    ``{days}`` filled in (amounts of money formatted when ``money``).
    """

    why: str
    # (the figure the rule needs, the days it is counted over) from the rule.
    need: Callable[[Rule], tuple[int, int]]
    have: Callable[[Facts, MemberView, int], int | None]
    absent: str
    short: str
    money: bool = False

    def check(self, rule: Rule, f: Facts) -> str | None:
        """The reason the rule's threshold is not met, or None."""
        need, days = self.need(rule)
        m = f.member
        if m is None:
            return f"{_who(f)}; " + self.absent.format(need=need, days=days)
        have = self.have(f, m, days) or 0
        if have >= need:
            return None
        if self.money:
            mu = f.bundle.minor_units
            return self.short.format(have=format_money(have, mu), days=days,
                                     need=format_money(need, mu))
        return self.short.format(have=have, need=need, days=days)


def _need(value: int | None, days: int = 0) -> tuple[int, int]:
    assert value is not None
    return value, days


def _spend_days(rule: Rule) -> tuple[int, int]:
    assert rule.min_spend_days is not None
    days, amount = rule.min_spend_days
    return amount, days


THRESHOLDS = {
    "min_purchase_count": Threshold(
        "min_purchase_count", lambda r: _need(r.min_purchase_count),
        lambda f, m, days: m.purchase_count, "rule needs {need} earlier purchases",
        "member has {have} purchases; rule needs {need}"),
    "min_spend_30d": Threshold(
        "min_spend_30d", lambda r: _need(r.min_spend_30d, 30),
        lambda f, m, days: m.spend_30d, "rule needs a spend over the last 30 days",
        "member spent {have} in 30 days; rule needs {need}", money=True),
    "min_points": Threshold(
        "min_points", lambda r: _need(r.min_points),
        lambda f, m, days: f.points_balance, "rule needs {need} points",
        "member has {have} points; rule needs {need}"),
    "min_spend_days": Threshold(
        "min_spend_days", _spend_days, lambda f, m, days: m.spend_days(days),
        "rule needs a spend over the last {days} days",
        "member spent {have} in {days} days; rule needs {need}", money=True),
}


# ---------------------------------------------------------------- compiling


def compile_checks(rule: Rule) -> tuple[tuple[Check, str], ...]:
    """The rule's condition checks with their names, in the order reasons are reported."""
    if rule.unknown is not None:
        return _UNKNOWN
    checks: list[tuple[Check, str]] = [] if rule.anonymous else [_MEMBER]
    for attr, pair in _SEGMENTS:
        if getattr(rule, attr) is not None:
            checks.append(pair)
    if rule.kind == "referral" or rule.referred is not None:
        checks.append(_REFERRED)
    if rule.codes is not None:
        checks.append(_CODES)
    if rule.coupon:
        checks.append(_COUPON)
    if rule.targets_lines:
        checks.append(_LINES)
    # Limits last: a rule that would not apply anyway is not reported as used up.
    for attr, pair in _LIMITS:
        if getattr(rule, attr) is not None:
            checks.append(pair)
    return tuple(checks)


# The order of the checks (each with its name), built once: compiling a 10,000-rule
# bundle takes a few milliseconds.
_UNKNOWN: tuple[tuple[Check, str], ...] = ((_c_unknown, "unknown"),)
_MEMBER: tuple[Check, str] = (_c_member, "member")
_SEGMENTS: tuple[tuple[str, tuple[Check, str]], ...] = tuple(
    (name, (check, name)) for name, check in (
        ("tiers", _c_tiers), ("min_tier", _c_min_tier), ("groups", _c_groups),
        ("birthday", _c_birthday),
        ("min_purchase_count", THRESHOLDS["min_purchase_count"].check),
        ("min_spend_30d", THRESHOLDS["min_spend_30d"].check),
        ("min_days_since_last_purchase", _c_win_back), ("identified_by", _c_identified_by),
        ("bins", _c_bins), ("weekdays", _c_weekdays), ("hours", _c_hours),
        ("dates", _c_dates), ("min_gross", _c_min_gross),
        ("min_points", THRESHOLDS["min_points"].check),
        ("min_spend_days", THRESHOLDS["min_spend_days"].check),
        ("bought_within_days", _c_bought_within), ("first_purchase", _c_first_purchase),
        ("purchase_count_every", _c_every)))
_REFERRED: tuple[Check, str] = (_c_referred, "referred")
_CODES: tuple[Check, str] = (c_codes, "codes")
_COUPON: tuple[Check, str] = (c_coupon, "coupon")
_LINES: tuple[Check, str] = (_c_lines, "lines")
_LIMITS: tuple[tuple[str, tuple[Check, str]], ...] = (
    ("max_per_member", (c_max_per_member, "max_per_member")),
    ("max_per_store", (c_max_per_store, "max_per_store")), ("budget", (c_budget, "budget")))


def why_not(rule: Rule, f: Facts) -> str | None:
    """The first reason the rule's conditions do not hold, or None when they all hold."""
    return why_not_coded(rule, f)[0]


def why_not_coded(rule: Rule, f: Facts) -> tuple[str | None, str]:
    """(the first reason the rule does not hold or None, the failing check's name).

    When the rule holds and works on some lines, ``f.last_targets`` are its lines.
    """
    checks = rule.checks
    if checks is None:
        # A rule built outside parse_bundle: compiled on first use (idempotent).
        checks = rule.checks = compile_checks(rule)
    for check, why in checks:
        reason = check(rule, f)
        if reason is not None:
            return reason, why
    return None, ""


def targets(rule: Rule, f: Facts) -> list[int]:
    """Indexes of the rule's target lines (a line must match every line key present)."""
    found: set[int] | None = None
    if rule.skus is not None:
        found = _hits(rule.skus, f.sku_lines)
    if rule.categories is not None:
        hits = _hits(rule.categories, f.category_lines)
        found = hits if found is None else found & hits
    return sorted(found) if found else []


def _hits(wanted: frozenset[str], where: dict[str, list[int]]) -> set[int]:
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
    return hits


def holding(rules: list[Rule], f: Facts, ex: Explainer, *,
            first_only: bool = False) -> list[tuple[Rule, list[int] | None]]:
    """The rules whose conditions hold, in order, with their target lines (None: all),
    stopping after an exclusive one (or after the first one with ``first_only``); the
    others are explained."""
    out: list[tuple[Rule, list[int] | None]] = []
    stopper: Rule | None = None
    for rule in rules:
        if stopper is not None:
            if first_only and not stopper.exclusive:
                why = (f"multiplier {stopper.id} already applies; only the first "
                       f"multiplier that applies counts")
            else:
                why = f"exclusive rule {stopper.id} already applies"
            ex.skipped(rule, why, "exclusive")
            continue
        checks = rule.checks
        if checks is None:
            checks = rule.checks = compile_checks(rule)
        for check, why in checks:  # why_not_coded, inlined: it runs for every rule
            reason = check(rule, f)
            if reason is not None:
                ex.skipped(rule, reason, why)
                break
        else:
            out.append((rule, f.last_targets if rule.targets_lines else None))
            if rule.exclusive or first_only:
                stopper = rule
    return out
