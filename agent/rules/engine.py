"""Computing a sale from a bundle: the exact arithmetic of ``rules.md``.

Pure: the time, the member and the terminal's counters are passed in. All money is
integers; every division rounds toward zero (all operands are ≥ 0, so ``//``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from functools import reduce
from operator import or_
from typing import Any

from agent.errors import LimitExceeded, RulesError
from agent.rules.bundle import KINDS, WEEKDAYS, Bundle, Rule
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

    __slots__ = ("at", "bin6", "birthday_keys", "bundle", "category_lines", "date", "gross",
                 "lines", "member", "member_note", "seconds", "sku_lines",
                 "token_kind", "weekday")

    def __init__(self, bundle: Bundle, request: QuoteRequest, member: MemberView | None,
                 local: dt.datetime, gross: int):
        self.bundle = bundle
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
            (rule.min_gross, _c_min_gross)):
        if present is not None:
            checks.append(check)
    if rule.targets_lines:
        checks.append(_c_lines)
    return tuple(checks)


def _why_not(rule: Rule, f: _Facts) -> str | None:
    """The first reason the rule's conditions do not hold, or None when they all hold."""
    checks = rule.checks
    if checks is None:
        # Compiled on first use (idempotent, so a race between threads is harmless).
        checks = rule.checks = compile_checks(rule)
    for check in checks:
        reason = check(rule, f)
        if reason is not None:
            return reason
    return None


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

    def skipped(self, rule: Rule, reason: str) -> None:
        self.listed += 1
        self.entries.append({"rule": rule.id, "kind": rule.kind, "applied": False,
                             "reason": reason, "text": f"{rule.id}: not applied, {reason}"})

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
                self.ex.skipped(rule, why)
                continue
            reason = _why_not(rule, self.facts)
            if reason is not None:
                self.ex.skipped(rule, reason)
                continue
            targets = _targets(rule, self.facts) if rule.targets_lines else None
            out.append((rule, targets))
            if rule.exclusive or first_only:
                stopper = rule
        return out


def _limit(name: str, message: str) -> LimitExceeded:
    return LimitExceeded(name, message)


def quote(bundle: Bundle | None, request: QuoteRequest, member: MemberView | None,
          ctx: QuoteContext, *, use_index: bool = True) -> Quote:
    """Compute a sale (``rules.md``, "Computing a sale").

    ``use_index=False`` scans every rule (tests compare it with the index). Raises
    :class:`LimitExceeded` for a redemption or credit request over a limit, and
    :class:`RulesError` for an invalid request.
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

    if bundle is None:
        ex.note("rules", "no rule bundle on this terminal; no rule applies")
    elif not valid:
        ex.note("rules", f"the rules (version {bundle.version}) expired at "
                         f"{bundle.expires_at.isoformat()}; no rule applies")
    else:
        local = ctx.at.astimezone(bundle.tz)
        facts = _Facts(bundle, request, member, local, gross)
        looked_at = considered(bundle, facts.index_values(), use_index)
        if facts.member_note:
            ex.note("member", f"{facts.member_note}: only rules for everyone apply")
        # 2. Discounts.
        for rule, targets in _Kind(looked_at["discount"], facts, ex).holding():
            r_sum = (sum(remaining) if targets is None
                     else sum(remaining[i] for i in targets))
            if rule.percent_bps is not None:
                amount = r_sum * rule.percent_bps // 10000
            else:
                amount = min(rule.amount or 0, r_sum)
            capped = rule.max_amount is not None and amount > rule.max_amount
            if capped and rule.max_amount is not None:
                amount = rule.max_amount
            _split(amount, targets, remaining)
            if amount:
                discounts.append((rule.id, amount))
            text = f"{ex.money(amount)} off"
            if rule.percent_bps is not None:
                text += f" ({rule.percent_bps // 100}.{rule.percent_bps % 100:02d} % of " \
                        f"{ex.money(r_sum)})"
            if capped:
                text += ", capped by the rule's maximum"
            if r_sum == 0:
                text += " (nothing left to discount on its lines)"
            ex.applied(rule, text, amount=amount)

    net = sum(remaining)
    # 4. Redemption.
    redeemed_points, redeemed_value, credits_used, limits_held = _redeem(
        bundle if valid else None, request, member, active, ctx, net, ex)
    payable = net - redeemed_value - sum(a for _, a in credits_used)

    # 5. Earning.
    if bundle is not None and facts is not None:
        def base_of(targets: list[int] | None) -> int:
            if net == 0:
                return 0
            target_net = net if targets is None else sum(remaining[i] for i in targets)
            return target_net * payable // net

        total_points = 0
        for rule, targets in _Kind(looked_at["points"], facts, ex).holding():
            base = base_of(targets)
            pts = base // rule.per_spend * rule.points
            capped = rule.max_points is not None and pts > rule.max_points
            if capped and rule.max_points is not None:
                pts = rule.max_points
            total_points += pts
            if pts:
                points_earned.append((rule.id, pts))
            ex.applied(rule, f"{pts} points on {ex.money(base)}"
                       + (", capped by the rule's maximum" if capped else ""),
                       points=pts, base=base)
        for rule, _ in _Kind(looked_at["multiplier"], facts, ex).holding(first_only=True):
            extra = total_points * rule.bps // 10000 - total_points
            if extra:
                points_earned.append((rule.id, extra))
            ex.applied(rule, f"{extra} extra points (×{_factor(rule.bps)} on "
                             f"{total_points})", points=extra)
        expires_base = facts.date
        for rule, targets in _Kind(looked_at["credit"], facts, ex).holding():
            base = base_of(targets)
            amount = base * (rule.percent_bps or 0) // 10000
            capped = rule.max_amount is not None and amount > rule.max_amount
            if capped and rule.max_amount is not None:
                amount = rule.max_amount
            expires = (None if rule.expires_days is None else
                       (expires_base + dt.timedelta(days=rule.expires_days)).isoformat())
            if amount:
                credits_earned.append((rule.id, rule.credit_kind, amount, expires))
            ex.applied(rule, f"{ex.money(amount)} of {rule.credit_kind} on {ex.money(base)}"
                       + (f", expires {expires}" if expires else "")
                       + (", capped by the rule's maximum" if capped else ""),
                       amount=amount, credit_kind=rule.credit_kind, expires=expires, base=base)
        for rule, targets in _Kind(looked_at["lottery"], facts, ex).holding():
            base = base_of(targets)
            entries = base // rule.per_spend * rule.entries
            lottery += entries
            ex.applied(rule, f"{entries} draw entries on {ex.money(base)}", entries=entries,
                       base=base)
        for rule in bundle.unknown_kind:
            ex.skipped(rule, rule.unknown or "unknown kind")
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
        line_nets=remaining, limits_held=limits_held,
    )


def _redeem(bundle: Bundle | None, request: QuoteRequest, member: MemberView | None,
            active: MemberView | None, ctx: QuoteContext, net: int,
            ex: _Explainer) -> tuple[int, int, list[tuple[str, int]], list[str]]:
    """Points then credits, within every limit (step 4 and the offline rules of step 6)."""
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
    block: str | None = None
    day_left: int | None = None
    off = bundle.offline
    if ctx.offline and off is not None:
        if off.max_pending is not None and ctx.pending_count >= off.max_pending:
            block = "max_pending"
            block_text = (f"offline with {ctx.pending_count} events waiting "
                          f"(limit {off.max_pending}): nothing may be redeemed")
        elif (off.max_age_hours is not None and ctx.oldest_pending_age_s is not None
              and ctx.oldest_pending_age_s > off.max_age_hours * 3600):
            block = "max_age_hours"
            block_text = (f"offline and the oldest waiting event is older than "
                          f"{off.max_age_hours} hours: nothing may be redeemed")
        if block is not None:
            held.append(block)
            ex.note("limit", block_text, limit=block)
        if off.max_redeem_value_per_member_day is not None:
            day_left = max(0, off.max_redeem_value_per_member_day - ctx.redeemed_today
                           - ctx.credit_used_today)

    redeemed_points = redeemed_value = 0
    if want_points:
        pc = bundle.points
        if pc is None:
            if not is_max:
                raise refuse("points", "this club's rules do not allow redeeming points")
            ex.note("redeem", "points cannot be redeemed under these rules", limit="points")
        else:
            balance = max(0, active.balances.get("points", 0))
            share_cap, share_name = net, "payable"
            if pc.max_redeem_share_bps is not None:
                capped_share = net * pc.max_redeem_share_bps // 10000
                if capped_share < net:
                    share_cap, share_name = capped_share, "max_redeem_share_bps"
            # (most points allowed, the limit that sets it)
            bounds: list[tuple[int, str]] = [(0, block)] if block is not None else []
            bounds += [(balance, "balance"), (share_cap // pc.value, share_name)]
            if day_left is not None:
                bounds.append((day_left // pc.value, "max_redeem_value_per_member_day"))
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
                                                           pc.value, day_left, ex))
            redeemed_points, redeemed_value = pts, pts * pc.value
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
