"""The effects of each kind of rule on a sale (``rules.md`` steps 2 and 5).

Discounts take amounts off the lines (what each line has left is ``remaining``);
earning rules give points, credit, draw entries, fees, referral shares and coupons
on what is paid. All money is integers; every division rounds toward zero.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

from agent.rules.conditions import holding
from agent.rules.explain import Explainer, factor
from agent.rules.facts import Facts
from agent.rules.limits import coupon_for
from agent.rules.model import Line, QuoteContext
from agent.rules.rule import Rule


def split(amount: int, targets: Sequence[int] | None, remaining: list[int]) -> None:
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


def take(rule: Rule, targets: list[int] | None, lines: Sequence[Any],
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
            split(cap, [i for i, a in shares if a] or None, remaining)
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
    split(amount, targets, remaining)
    return amount, r_sum, capped


def budget(rule: Rule, ctx: QuoteContext, amount: int) -> tuple[int, bool]:
    """``amount`` within what is left of the rule's budget at this terminal."""
    if rule.budget is None:
        return amount, False
    left = max(0, rule.budget - ctx.budget_used.get(rule.id, 0))
    return (left, True) if amount > left else (amount, False)


def coupon_code(seed: str, rule: Rule) -> str:
    digest = hashlib.sha256(f"{seed}\x00{rule.id}".encode()).hexdigest()[:10].upper()
    return f"{rule.prefix}{digest}"


class Rows:
    """The rows of issue 21's effects a quote collects (see :class:`Quote`)."""

    __slots__ = ("codes_used", "coupons_issued", "fees", "referral_rewards", "rewards", "uses")

    def __init__(self) -> None:
        self.fees: list[tuple[str, int]] = []
        self.referral_rewards: list[tuple[str, str, str, int, str | None]] = []
        self.coupons_issued: list[tuple[str, str, str, str | None]] = []
        self.codes_used: list[tuple[str, str, bool]] = []
        self.rewards: list[tuple[str, int]] = []
        self.uses: list[tuple[str, int]] = []


class Effects:
    """One quote's lines, what they have left, and the rows its rules emit."""

    __slots__ = ("ctx", "ex", "expires", "extra", "facts", "lines", "net", "payable",
                 "remaining")

    def __init__(self, facts: Facts, ctx: QuoteContext, lines: Sequence[Line],
                 remaining: list[int], extra: Rows, ex: Explainer):
        self.facts = facts
        self.ctx = ctx
        self.lines = lines
        self.remaining = remaining
        # The rows of issue 21 (fees, referral shares, coupons, codes, uses).
        self.extra = extra
        self.ex = ex
        self.net = self.payable = 0
        self.expires: dict[int, str] = {}  # expires_days -> the date, once per quote

    def used(self, rule: Rule, amount: int) -> None:
        """Record a use of a limited rule (emitted with the sale) and the code or
        coupon the rule took, if any."""
        if rule.limited and amount > 0:
            self.extra.uses.append((rule.id, amount))
        if rule.takes_code:
            self.code_used(rule)

    def code_used(self, rule: Rule) -> None:
        """Record the code or coupon the rule took, if any."""
        f = self.facts
        if rule.coupon:
            code = coupon_for(rule, f)[0]
            if code is not None:
                self.extra.codes_used.append((rule.id, code, True))
        elif rule.codes is not None:
            code = next((c for c in f.codes if c in rule.codes), None)
            if code is not None:
                self.extra.codes_used.append((rule.id, code, rule.single_use))

    def discounts(self, rules: list[Rule], out: list[tuple[str, int]]) -> None:
        """Step 2: the discounts that hold, in order, off ``remaining``."""
        if not rules:
            return
        ex, ctx = self.ex, self.ctx
        for rule, targets in holding(rules, self.facts, ex):
            budget_left = (None if rule.budget is None
                           else max(0, rule.budget - ctx.budget_used.get(rule.id, 0)))
            amount, r_sum, capped = take(rule, targets, self.lines, self.remaining,
                                         budget_left)
            if amount:
                out.append((rule.id, amount))
            self.used(rule, amount)
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
            if rule.percent_bps is not None and not (rule.per_unit or rule.buy is not None
                                                     or rule.cheapest is not None):
                ex.applied(rule, text, amount=amount, percent_bps=rule.percent_bps)
            else:
                ex.applied(rule, text, amount=amount)

    # ------------------------------------------------------------ step 5: earning

    def base_of(self, targets: list[int] | None) -> int:
        """What the target lines (None: all) pay after redemption, pro rata."""
        net = self.net
        if net == 0:
            return 0
        target_net = net if targets is None else sum(self.remaining[i] for i in targets)
        return target_net * self.payable // net

    def expiry(self, rule: Rule) -> str | None:
        """The last valid local date of what the rule gives, or None."""
        days = rule.expires_days
        if days is None:
            return None
        date = self.expires.get(days)
        if date is None:
            date = self.expires[days] = (self.facts.date + dt.timedelta(days=days)).isoformat()
        return date

    def credit_amount(self, rule: Rule, base: int) -> tuple[int, str]:
        """(credit a credit or referral rule gives on ``base``, how, for the text)."""
        if rule.amount is not None:
            amount, how = rule.amount, ""
        else:
            amount, how = base * (rule.percent_bps or 0) // 10000, \
                f" on {self.ex.money(base)}"
        note = ""
        if rule.max_amount is not None and amount > rule.max_amount:
            amount, note = rule.max_amount, ", capped by the rule's maximum"
        amount, over = budget(rule, self.ctx, amount)
        return amount, how + note + (", capped by the rule's budget" if over else "")

    def points(self, rules: list[Rule], multipliers: list[Rule],
               out: list[tuple[str, int]]) -> None:
        """Points per spend, unit or visit, then the first multiplier that holds."""
        if not rules and not multipliers:
            return
        ex, f, lines = self.ex, self.facts, self.lines
        total_points = 0
        for rule, targets in holding(rules, f, ex):
            numbers_base: int | None = None
            if rule.per_visit is not None:
                pts, how = rule.per_visit, "for the visit"
            elif rule.per_unit is not None:
                n = sum(ln.qty for ln in lines) if targets is None else \
                    sum(lines[i].qty for i in targets)
                pts, how = int(rule.per_unit) * n, f"for {n} units"
            else:
                base = self.base_of(targets)
                pts, how = base // rule.per_spend * rule.points, f"on {ex.money(base)}"
                numbers_base = base
            at_max = rule.max_points is not None and pts > rule.max_points
            if at_max and rule.max_points is not None:
                pts = rule.max_points
            pts, over = budget(rule, self.ctx, pts)
            total_points += pts
            if pts:
                out.append((rule.id, pts))
            self.used(rule, pts)
            if numbers_base is not None:
                ex.applied(rule, f"{pts} points {how}"
                           + (", capped by the rule's maximum" if at_max else "")
                           + (", capped by the rule's budget" if over else ""),
                           points=pts, base=numbers_base)
            else:
                ex.applied(rule, f"{pts} points {how}"
                           + (", capped by the rule's maximum" if at_max else "")
                           + (", capped by the rule's budget" if over else ""), points=pts)
        for rule, _ in holding(multipliers, f, ex, first_only=True):
            extra_pts = total_points * rule.bps // 10000 - total_points
            if extra_pts:
                out.append((rule.id, extra_pts))
            ex.applied(rule, f"{extra_pts} extra points (×{factor(rule.bps)} on "
                             f"{total_points})", points=extra_pts)

    def credits(self, rules: list[Rule], out: list[tuple[str, str, int, str | None]]) -> None:
        """Credit on what is paid (or a fixed amount), with its expiry."""
        if not rules:
            return
        ex = self.ex
        for rule, targets in holding(rules, self.facts, ex):
            base = self.base_of(targets)
            amount, how = self.credit_amount(rule, base)
            expires = self.expiry(rule)
            if amount:
                out.append((rule.id, rule.credit_kind, amount, expires))
            self.used(rule, amount)
            ex.applied(rule, f"{ex.money(amount)} of {rule.credit_kind}"
                       + how.split(",")[0] + (f", expires {expires}" if expires else "")
                       + ("," + how.split(",", 1)[1] if "," in how else ""),
                       amount=amount, credit_kind=rule.credit_kind, expires=expires, base=base)

    def lottery(self, rules: list[Rule]) -> int:
        """Draw entries per spend; returns their number."""
        if not rules:
            return 0
        ex, entries_total = self.ex, 0
        for rule, targets in holding(rules, self.facts, ex):
            base = self.base_of(targets)
            entries = base // rule.per_spend * rule.entries
            entries_total += entries
            ex.applied(rule, f"{entries} draw entries on {ex.money(base)}", entries=entries,
                       base=base)
        return entries_total

    def fees(self, rules: list[Rule]) -> None:
        """The club's fee per transaction (on the net of the target lines)."""
        if not rules:
            return
        ex, extra = self.ex, self.extra
        for rule, targets in holding(rules, self.facts, ex):
            on = self.net if targets is None else sum(self.remaining[i] for i in targets)
            amount = (rule.amount or 0) + on * (rule.percent_bps or 0) // 10000
            capped = rule.max_amount is not None and amount > rule.max_amount
            if capped and rule.max_amount is not None:
                amount = rule.max_amount
            amount, over = budget(rule, self.ctx, amount)
            if amount:
                extra.fees.append((rule.id, amount))
            self.used(rule, amount)
            ex.applied(rule, f"fee {ex.money(amount)} on {ex.money(on)}"
                       + (", capped by the rule's maximum" if capped else "")
                       + (", capped by the rule's budget" if over else ""),
                       amount=amount, base=on)

    def referrals(self, rules: list[Rule]) -> None:
        """The referrer's share of what this member pays."""
        if not rules:
            return
        ex, f = self.ex, self.facts
        for rule, targets in holding(rules, f, ex):
            assert f.member is not None and f.member.referred_by is not None
            referrer = f.member.referred_by
            base = self.base_of(targets)
            amount, how = self.credit_amount(rule, base)
            expires = self.expiry(rule)
            if amount:
                self.extra.referral_rewards.append((rule.id, referrer, rule.credit_kind,
                                                    amount, expires))
            self.used(rule, amount)
            what = "points" if rule.credit_kind == "points" else ex.money(amount)
            ex.applied(rule, f"{amount if what == 'points' else what}"
                       f"{' points' if what == 'points' else ' of ' + rule.credit_kind} "
                       f"for referrer {referrer}{how}", amount=amount,
                       credit_kind=rule.credit_kind, referrer=referrer, expires=expires,
                       base=base)

    def coupons(self, rules: list[Rule]) -> None:
        """Next-order coupons issued by this sale (codes made from the quote's seed)."""
        if not rules:
            return
        ex, ctx = self.ex, self.ctx
        for rule, _ in holding(rules, self.facts, ex):
            expires = self.expiry(rule)
            if ctx.coupon_seed is None:
                ex.applied(rule, "no coupon issued: the sale has no reference to make a "
                                 "code from (quote it through the agent)", amount=0)
                continue
            amount, _over = budget(rule, ctx, 1)
            if not amount:
                ex.applied(rule, "no coupon issued: the rule's budget is spent", amount=0)
                continue
            code = coupon_code(ctx.coupon_seed, rule)
            self.extra.coupons_issued.append((rule.id, code, rule.for_rule or "", expires))
            self.used(rule, 1)
            ex.applied(rule, f"coupon {code} for {rule.for_rule}"
                       + (f", valid until {expires}" if expires else ""), amount=1, code=code,
                       for_rule=rule.for_rule, expires=expires)
