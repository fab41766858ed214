"""Computing a sale from a bundle: the exact arithmetic of ``rules.md``.

Pure: the time, the member and the terminal's counters are passed in. All money is
integers; every division rounds toward zero (all operands are ≥ 0, so ``//``).

The steps live beside this module: the sale's facts (``facts``), the conditions
(``conditions``, ``limits``), the rules a sale can match (``index``), the effects of
each kind (``effects``), redemption and rewards (``redeem``) and the explanation
(``explain``).
"""

from __future__ import annotations

from itertools import starmap
from operator import attrgetter, mul

from agent.rules.bundle import Bundle
from agent.rules.effects import Effects, Rows, split
from agent.rules.explain import Explainer, format_money
from agent.rules.facts import Facts, spendable
from agent.rules.index import considered
from agent.rules.model import MemberView, Quote, QuoteContext, QuoteRequest
from agent.rules.redeem import redeem, rewards

__all__ = ["considered", "format_money", "quote", "spendable", "split"]
_split = split  # the name the property tests know
_QTY_PRICE = attrgetter("qty", "unit_price")


def quote(bundle: Bundle | None, request: QuoteRequest, member: MemberView | None,
          ctx: QuoteContext, *, use_index: bool = True) -> Quote:
    """Compute a sale (``rules.md``, "Computing a sale"; docs/rules.md for the kinds
    and conditions of issue 21).

    ``use_index=False`` scans every rule (tests compare it with the index). Raises
    :class:`LimitExceeded` for a redemption, credit or reward request over a limit,
    and :class:`RulesError` for an invalid request.
    """
    lines = request.lines
    totals = list(starmap(mul, map(_QTY_PRICE, lines)))  # qty × unit_price, in C
    gross = sum(totals)
    remaining = list(totals)
    ex = Explainer(bundle)
    valid = bundle is not None and ctx.at < bundle.expires_at
    active = member if member is not None and member.active else None
    discounts: list[tuple[str, int]] = []
    points_earned: list[tuple[str, int]] = []
    credits_earned: list[tuple[str, str, int, str | None]] = []
    lottery = 0
    effects: Effects | None = None
    extra = Rows()  # issue 21's rows
    reward_points = reward_value = 0

    if bundle is None:
        ex.note("rules", "no rule bundle on this terminal; no rule applies", why="no_bundle")
    elif not valid:
        ex.note("rules", f"the rules (version {bundle.version}) expired at "
                         f"{bundle.expires_at.isoformat()}; no rule applies",
                why="rules_expired", version=bundle.version,
                expires_at=bundle.expires_at.isoformat())
    else:
        local = ctx.at.astimezone(bundle.tz)
        facts = Facts(bundle, request, member, local, gross, ctx)
        looked_at = considered(bundle, facts.index_values(), use_index)
        if facts.member_note:
            ex.note("member", f"{facts.member_note}: only rules for everyone apply",
                    why="anonymous_only")
        effects = Effects(facts, ctx, lines, remaining, extra, ex)
        # 2. Discounts.
        effects.discounts(looked_at["discount"], discounts)
        # 2b. Rewards the customer takes for points (a reward catalogue).
        reward_points, reward_value = rewards(bundle, request, active, ctx, facts,
                                              looked_at["reward"], lines, remaining,
                                              discounts, extra, ex)

    net = sum(remaining)
    # 4. Redemption.
    redeemed_points, redeemed_value, credits_used, limits_held = redeem(
        bundle if valid else None, request, member, active, ctx, net, ex,
        reward_points=reward_points, reward_value=reward_value,
        today=effects.facts.date if effects is not None else None,
        balances=effects.facts.balances if effects is not None else None)
    payable = net - redeemed_value - sum(a for _, a in credits_used)

    # 5. Earning.
    if bundle is not None and effects is not None:
        effects.net, effects.payable = net, payable
        effects.points(looked_at["points"], looked_at["multiplier"], points_earned)
        effects.credits(looked_at["credit"], credits_earned)
        lottery = effects.lottery(looked_at["lottery"])
        # Issue 21's earning kinds come after every earning rule of version 1.
        effects.fees(looked_at["fee"])
        effects.referrals(looked_at["referral"])
        effects.coupons(looked_at["coupon"])
        for rule in bundle.unknown_kind:
            ex.skipped(rule, rule.unknown or "unknown kind", "unknown")
        left_out = len(bundle.rules) - ex.listed
        if left_out > 0:
            ex.note("index", f"{left_out} other rules do not fit this sale (another tier, "
                             f"day, time, product, card or member) and were not looked at",
                    why="not_looked_at", rules=left_out)
    # Positional, in the order of Quote's fields (keywords cost a quote a few µs).
    return Quote(
        gross, discounts, net, redeemed_points, redeemed_value, credits_used, payable,
        points_earned, credits_earned, lottery, bundle.version if bundle is not None else None,
        ex.entries, remaining, limits_held, extra.fees, extra.referral_rewards,
        extra.coupons_issued, extra.codes_used, extra.rewards, extra.uses,
    )
