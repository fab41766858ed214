"""Computing a sale from a bundle: the exact arithmetic of ``rules.md``.

Pure: the time, the member and the terminal's counters are passed in. All money is
integers; every division rounds toward zero (all operands are ≥ 0, so ``//``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from agent.errors import LimitExceeded, RulesError
from agent.rules.bundle import WEEKDAYS, Bundle, KindIndex, Rule
from agent.rules.model import Line, MemberView, Quote, QuoteContext, QuoteRequest


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

    __slots__ = ("at", "bin6", "birthday_month_ok", "bundle", "date", "gross", "lines",
                 "member", "member_note", "month_key", "seconds", "token_kind", "weekday")

    def __init__(self, bundle: Bundle, request: QuoteRequest, member: MemberView | None,
                 local: dt.datetime, gross: int):
        self.bundle = bundle
        self.at = local
        self.lines = request.lines
        self.gross = gross
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
        self.month_key = local.year * 12 + local.month - 1
        md = self.member.birth_month_day if self.member is not None else None
        self.birthday_month_ok = md is not None and md[0] == local.month

    def index_values(self) -> dict[str, list[Any]]:
        """The sale's value for each indexed dimension (see ``bundle.index_keys``)."""
        m = self.member
        lines = self.lines
        return {
            "member": [True] if m is not None else [],
            "tier": [m.tier] if m is not None and m.tier is not None else [],
            "group": sorted(m.groups) if m is not None else [],
            "birthday": [True] if self.birthday_month_ok else [],
            "weekday": [self.weekday],
            "hour": [self.seconds // 3600],
            "month": [self.month_key],
            "sku": list({ln.sku for ln in lines if ln.sku is not None}),
            "category": list({ln.category for ln in lines if ln.category is not None}),
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


def _why_not(rule: Rule, f: _Facts) -> str | None:
    """The first reason the rule's conditions do not hold, or None when they all hold."""
    if rule.unknown is not None:
        return rule.unknown
    m = f.member
    if m is None and not rule.anonymous:
        return f"{f.member_note}; the rule is for members only"
    who = f.member_note or "no member"
    if rule.tiers is not None:
        if m is None:
            return f"{who}; rule needs tier {_or_list(list(rule.tiers))}"
        if m.tier not in rule.tiers:
            return (f"member is {m.tier or 'without a tier'}; "
                    f"rule needs {_or_list(list(rule.tiers))}")
    if rule.min_tier is not None:
        if m is None:
            return f"{who}; rule needs tier {rule.min_tier} or higher"
        rank = f.bundle.tier_ranks.get(m.tier) if m.tier is not None else None
        if rank is None or rank < rule.min_tier_rank:
            return f"member is {m.tier or 'without a tier'}; rule needs {rule.min_tier} or higher"
    if rule.groups is not None:
        if m is None:
            return f"{who}; rule needs group {_or_list(list(rule.groups))}"
        if m.groups.isdisjoint(rule.groups):
            return f"member is not in group {_or_list(list(rule.groups))}"
    if rule.birthday is not None:
        if m is None:
            return f"{who}; rule is for the member's birthday {rule.birthday}"
        md = m.birth_month_day
        if md is None:
            return "member's birthday is not known"
        if rule.birthday == "month" and md[0] != f.date.month:
            return "it is not the member's birthday month"
        if rule.birthday == "day" and not _is_birthday(md, f.date):
            return "today is not the member's birthday"
    if rule.min_purchase_count is not None:
        if m is None:
            return f"{who}; rule needs {rule.min_purchase_count} earlier purchases"
        if m.purchase_count is None or m.purchase_count < rule.min_purchase_count:
            return (f"member has {m.purchase_count or 0} purchases; "
                    f"rule needs {rule.min_purchase_count}")
    if rule.min_spend_30d is not None:
        if m is None:
            return f"{who}; rule needs a spend over the last 30 days"
        if m.spend_30d is None or m.spend_30d < rule.min_spend_30d:
            b = f.bundle
            return (f"member spent {format_money(m.spend_30d or 0, b.minor_units)} in 30 days; "
                    f"rule needs {format_money(rule.min_spend_30d, b.minor_units)}")
    if rule.min_days_since_last_purchase is not None:
        if m is None:
            return f"{who}; rule is for members who have not bought for a while"
        if m.last_purchase is None:
            return "member has no last purchase on record"
        days = (f.date - m.last_purchase).days
        if days < rule.min_days_since_last_purchase:
            return (f"member last bought {days} days ago; rule needs "
                    f"{rule.min_days_since_last_purchase} days or more")
    if rule.identified_by is not None and f.token_kind not in rule.identified_by:
        how = f"identified by {f.token_kind}" if f.token_kind else "not identified by a card"
        return f"customer is {how}; rule needs {_or_list(list(rule.identified_by))}"
    if rule.bins is not None and f.bin6 not in rule.bins:
        if f.bin6 is None:
            return "no bank card was read; rule is for certain bank cards"
        return f"bank card {f.bin6} is not one of the rule's banks"
    if rule.weekdays is not None and f.weekday not in rule.weekdays:
        return (f"today is {WEEKDAYS[f.weekday]}; rule is for "
                f"{_or_list([WEEKDAYS[d] for d in sorted(rule.weekdays)])}")
    if rule.hours is not None:
        s = f.seconds
        ok = False
        for start, end in rule.hours:
            if (start <= s < end) if start < end else (s >= start or s < end):
                ok = True
                break
        if not ok:
            spans = ", ".join(f"{a // 3600:02d}:{a % 3600 // 60:02d}-{b // 3600:02d}:"
                              f"{b % 3600 // 60:02d}" for a, b in rule.hours)
            return f"local time is {f.at:%H:%M}; rule is for {spans}"
    if rule.dates is not None and not any(a <= f.date <= b for a, b in rule.dates):
        spans = ", ".join(f"{a} to {b}" for a, b in rule.dates)
        return f"today is {f.date}; rule runs {spans}"
    if rule.min_gross is not None and f.gross < rule.min_gross:
        b = f.bundle
        return (f"basket is {format_money(f.gross, b.minor_units)}; rule needs at least "
                f"{format_money(rule.min_gross, b.minor_units)}")
    if rule.targets_lines and not _targets(rule, f.lines):
        parts = []
        if rule.skus is not None:
            parts.append(f"product {_or_list(list(rule.skus))}")
        if rule.categories is not None:
            parts.append(f"category {_or_list(list(rule.categories))}")
        return "no basket line is " + " in ".join(parts)
    return None


def _targets(rule: Rule, lines: Sequence[Line]) -> list[int]:
    """Indexes of the rule's target lines (a line must match every line key present)."""
    skus, cats = rule.skus, rule.categories
    return [i for i, ln in enumerate(lines)
            if (skus is None or ln.sku in skus) and (cats is None or ln.category in cats)]


def _split(amount: int, targets: Sequence[int], remaining: list[int]) -> None:
    """Take ``amount`` off the target lines in proportion to their remaining.

    Each share rounds toward zero; the minor units left over go one at a time to the
    target lines in basket order, skipping lines with nothing remaining.
    """
    total = sum(remaining[i] for i in targets)
    if amount <= 0 or total <= 0:
        return
    shares = [amount * remaining[i] // total for i in targets]
    left = amount - sum(shares)
    for j, i in enumerate(targets):
        remaining[i] -= shares[j]
    # left < number of target lines with something remaining, and each such line
    # still has ≥ 1 after its share unless amount == total (then left == 0).
    for i in targets:
        if left <= 0:
            break
        if remaining[i] > 0:
            remaining[i] -= 1
            left -= 1
    if left:
        raise AssertionError("discount split left minor units over")  # pragma: no cover


def _candidates(index: KindIndex, values: dict[str, list[Any]], use_index: bool) -> int:
    if not use_index:
        return index.full
    mask = index.full
    for dim in index.dims:
        allowed = dim.any_mask
        buckets = dim.buckets
        for v in values[dim.name]:
            allowed |= buckets.get(v, 0)
        mask &= allowed
        if not mask:
            break
    return mask | index.always


def _in_order(index: KindIndex, mask: int) -> list[Rule]:
    rules = index.rules
    out = []
    while mask:
        low = mask & -mask
        out.append(rules[low.bit_length() - 1])
        mask ^= low
    return out


class _Explainer:
    __slots__ = ("bundle", "entries", "listed")

    def __init__(self, bundle: Bundle | None):
        self.bundle = bundle
        self.entries: list[dict[str, Any]] = []
        self.listed = 0

    def money(self, amount: int) -> str:
        b = self.bundle
        return format_money(amount, b.minor_units, b.currency) if b else str(amount)

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

    def __init__(self, bundle: Bundle, kind: str, facts: _Facts, values: dict[str, list[Any]],
                 use_index: bool, ex: _Explainer):
        self.index = bundle.by_kind[kind]
        self.facts = facts
        self.ex = ex
        self.rules = _in_order(self.index, _candidates(self.index, values, use_index))

    def holding(self, *, first_only: bool = False) -> list[tuple[Rule, list[int] | None]]:
        """The rules whose conditions hold, in order, stopping after an exclusive one
        (or after the first one with ``first_only``); the rest are explained."""
        out: list[tuple[Rule, list[int] | None]] = []
        stopper: Rule | None = None
        for rule in self.rules:
            if stopper is not None:
                why = ("only the first multiplier that applies counts" if first_only
                       and not stopper.exclusive else "exclusive rule")
                self.ex.skipped(rule, f"{why} {stopper.id} already applies")
                continue
            reason = _why_not(rule, self.facts)
            if reason is not None:
                self.ex.skipped(rule, reason)
                continue
            targets = _targets(rule, self.facts.lines) if rule.targets_lines else None
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
    values: dict[str, list[Any]] = {}

    if bundle is None:
        ex.note("rules", "no rule bundle on this terminal; no rule applies")
    elif not valid:
        ex.note("rules", f"the rules (version {bundle.version}) expired at "
                         f"{bundle.expires_at.isoformat()}; no rule applies")
    else:
        local = ctx.at.astimezone(bundle.tz)
        facts = _Facts(bundle, request, member, local, gross)
        values = facts.index_values()
        if facts.member_note:
            ex.note("member", f"{facts.member_note}: only rules for everyone apply")
        # 2. Discounts.
        for rule, targets in _Kind(bundle, "discount", facts, values, use_index, ex).holding():
            tl = targets if targets is not None else range(len(lines))
            r_sum = sum(remaining[i] for i in tl)
            if rule.percent_bps is not None:
                amount = r_sum * rule.percent_bps // 10000
            else:
                amount = min(rule.amount or 0, r_sum)
            capped = rule.max_amount is not None and amount > rule.max_amount
            if capped and rule.max_amount is not None:
                amount = rule.max_amount
            _split(amount, list(tl), remaining)
            if amount:
                discounts.append((rule.id, amount))
            text = f"{ex.money(amount)} off"
            if rule.percent_bps is not None:
                text += f" ({format_money(rule.percent_bps, 2)} % of {ex.money(r_sum)})"
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
        for rule, targets in _Kind(bundle, "points", facts, values, use_index, ex).holding():
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
        for rule, _ in _Kind(bundle, "multiplier", facts, values, use_index,
                             ex).holding(first_only=True):
            extra = total_points * rule.bps // 10000 - total_points
            if extra:
                points_earned.append((rule.id, extra))
            ex.applied(rule, f"{extra} extra points (×{_factor(rule.bps)} on "
                             f"{total_points})", points=extra)
        expires_base = facts.date
        for rule, targets in _Kind(bundle, "credit", facts, values, use_index, ex).holding():
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
        for rule, targets in _Kind(bundle, "lottery", facts, values, use_index, ex).holding():
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
            share_cap = net
            if pc.max_redeem_share_bps is not None:
                share_cap = min(net, net * pc.max_redeem_share_bps // 10000)
            # (most points allowed, the limit that sets it)
            bounds: list[tuple[int, str]] = [(0, block)] if block is not None else []
            bounds += [(balance, "balance"), (share_cap // pc.value, "max_redeem_share_bps")]
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
