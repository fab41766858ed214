"""Redeeming points and credit, and rewards taken for points (``rules.md`` step 4).

Every limit of the bundle holds: the balance (less expired lots), the share of the
sale points may pay, the credit caps per invoice and day, and offline the allowance
per member and day and the pending-events limits. A request over a limit raises
:class:`LimitExceeded` naming it; ``"max"`` takes the most allowed and says what
held it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from operator import itemgetter
from typing import Any

from agent.errors import LimitExceeded, RulesError
from agent.rules.bundle import Bundle
from agent.rules.conditions import targets, why_not, why_not_coded
from agent.rules.effects import Rows, take
from agent.rules.explain import Explainer
from agent.rules.facts import Facts, spendable
from agent.rules.model import MemberView, QuoteContext, QuoteRequest
from agent.rules.rule import Rule

_FIRST = itemgetter(0)  # the lowest bound; on a tie, the first listed


def _limit(name: str, message: str) -> LimitExceeded:
    return LimitExceeded(name, message)



def offline_block(bundle: Bundle, ctx: QuoteContext) -> tuple[str | None, str]:
    """The offline limit that forbids redeeming anything now, with its text."""
    if ctx.earn_only:
        return "earn_only", ("this member belongs to another merchant and the club has not "
                             "confirmed the balances just now: points are earned, nothing "
                             "may be redeemed")
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



def rewards(bundle: Bundle, request: QuoteRequest, active: MemberView | None,
            ctx: QuoteContext, facts: Facts, listed: list[Rule], lines: Sequence[Any],
            remaining: list[int], discounts: list[tuple[str, int]], extra: Rows,
            ex: Explainer) -> tuple[int, int]:
    """Rewards asked for (points → a named reward); the others listed as available.

    Returns (points they cost, discount they give).
    """
    asked = list(dict.fromkeys(request.rewards))
    if not asked:
        for rule in listed:
            reason, code = why_not_coded(rule, facts)
            if reason is not None:
                ex.skipped(rule, reason, code)
            else:
                ex.skipped(rule, f"not asked for: {rule.name} for {rule.cost_points} points",
                           "not_requested", available=facts.points_balance >= rule.cost_points,
                           cost_points=rule.cost_points, name=rule.name)
        return 0, 0
    if active is None:
        raise _limit("member", "only an active member can take a reward for points")
    block, text = offline_block(bundle, ctx)
    if block is not None:
        raise _limit(block, text)
    left = facts.points_balance
    total_points = total_value = 0
    for rid in asked:
        found = bundle.rule(rid)
        if found is None or found.kind != "reward":
            raise RulesError(f"{rid!r} is not a reward of these rules")
        rule = found
        reason = why_not(rule, facts)
        if reason is not None:
            raise _limit("reward", f"reward {rid} cannot be taken: {reason}")
        if rule.cost_points > left:
            raise _limit("balance", f"reward {rid} costs {rule.cost_points} points; the "
                                     f"member has {left}")
        on_lines = targets(rule, facts) if rule.targets_lines else None
        amount, _, _ = take(rule, on_lines, lines, remaining)
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


def redeem(bundle: Bundle | None, request: QuoteRequest, member: MemberView | None,
           active: MemberView | None, ctx: QuoteContext, net: int,
           ex: Explainer, *, reward_points: int = 0, reward_value: int = 0,
           today: dt.date | None = None, balances: Mapping[str, int] | None = None,
           ) -> tuple[int, int, list[tuple[str, int]], list[str]]:
    """Points then credits, within every limit (step 4 and the offline rules of step 6).

    ``reward_points`` were already taken by rewards (and ``reward_value`` counts in the
    offline day allowance); lots of ``balance_lots`` that expired before ``today`` are
    not spendable. ``balances``: the spendable balances today when already known
    (``Facts.balances``).
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
            ex.note("redeem", "nothing redeemed: no valid rule bundle", why="limit_held",
                    limit="bundle")
            return 0, 0, [], ["bundle"]
        raise refuse("bundle", "nothing can be redeemed without a valid rule bundle")
    if active is None:
        why = ("no member identified" if member is None
               else f"the member is {member.status.replace('_', ' ')}")
        if is_max and not request.use_credit:
            ex.note("redeem", f"nothing redeemed: {why}", why="limit_held", limit="member")
            return 0, 0, [], ["member"]
        raise refuse("member", f"{why}; only an active member can redeem")

    # Offline: what may be redeemed at all, and how much today.
    day_left: int | None = None
    off = bundle.offline
    block, block_text = offline_block(bundle, ctx)
    if block is not None:  # offline limits, or earn only
        held.append(block)
        ex.note("limit", block_text, why="limit_held", limit=block)
    if ctx.offline and off is not None:
        if off.max_redeem_value_per_member_day is not None:
            day_left = max(0, off.max_redeem_value_per_member_day - ctx.redeemed_today
                           - ctx.credit_used_today - reward_value)

    redeemed_points = redeemed_value = 0
    if want_points:
        pc = bundle.points
        if pc is None:
            if not is_max:
                raise refuse("points", "this club's rules do not allow redeeming points")
            ex.note("redeem", "points cannot be redeemed under these rules", why="limit_held",
                    limit="points")
        else:
            if balances is not None:
                balance = balances.get("points", 0)
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
            most, bound_by = min(bounds, key=_FIRST)
            if is_max:
                pts = most
                if 0 < pts < pc.min_redeem:
                    ex.note("redeem", f"at most {pts} points could be redeemed ({bound_by}), "
                                      f"fewer than the minimum {pc.min_redeem}; none redeemed",
                            why="limit_held", limit="min_redeem", points=pts,
                            min_redeem=pc.min_redeem)
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
                    why="points_redeemed", points=pts, value=redeemed_value)

    credits_used: list[tuple[str, int]] = []
    if request.use_credit:
        cc = bundle.credits
        still = net - redeemed_value
        spent = 0
        left_bal = dict(active.balances if balances is None else balances)
        if balances is None and today is not None and active.balance_lots:
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
            amount, bound_by = min(bounds, key=_FIRST)
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
                    why="credit_used", credit_kind=kind, amount=amount, limit=bound_by)
    return redeemed_points, redeemed_value, credits_used, held


def _note_expiring(member: MemberView, today: dt.date, ex: Explainer) -> None:
    """List the member's dated balance lots: expired (not spendable) or expiring."""
    day = today.isoformat()
    for kind in sorted(k for k in member.balance_lots if isinstance(k, str)):
        for expires, amount in member.expiring(kind):
            shown = str(amount) + " points" if kind == "points" else \
                f"{ex.money(amount)} of {kind}"
            if expires < day:
                ex.note("expiry", f"{shown} expired after {expires}; not spendable",
                        why="balance_expired", balance_kind=kind, amount=amount,
                        expires=expires, expired=True)
            else:
                ex.note("expiry", f"{shown} expire after {expires}", why="balance_expires",
                        balance_kind=kind,
                        amount=amount, expires=expires, expired=False)


def _points_limit_text(limit: str, pts: int, balance: int, share_cap: int, value: int,
                       day_left: int | None, ex: Explainer) -> str:
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
    if limit == "earn_only":
        return ("this member belongs to another merchant and the club has not confirmed the "
                "balances just now: nothing may be redeemed")
    raise RulesError(f"unknown limit {limit}")  # pragma: no cover
