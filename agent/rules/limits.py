"""The conditions about codes, coupons, use limits and budgets (issue 21).

Checks in the shape of :mod:`agent.rules.conditions`; the counts they read are the
member record's and this terminal's (``QuoteContext``), passed in.
"""

from __future__ import annotations

from agent.rules.facts import Facts, uses_in_period
from agent.rules.rule import Rule, normalise_code


def _who(f: Facts) -> str:
    return f.member_note or "no member"


def c_codes(rule: Rule, f: Facts) -> str | None:
    codes = rule.codes
    assert codes is not None
    code = next((c for c in f.codes if c in codes), None)
    if code is None:
        return "no matching code was given" if not f.codes else \
            "the code given is not one of the rule's codes"
    if rule.single_use:
        return single_use(f, code)
    return None


def single_use(f: Facts, code: str) -> str | None:
    if code in f.used_codes:
        return f"code {code} was already used"
    off = f.bundle.offline
    if f.ctx.offline and not (off is not None and off.accept_single_use_codes):
        return f"offline: single-use code {code} cannot be checked with the club"
    return None


def coupon_for(rule: Rule, f: Facts) -> tuple[str | None, str | None]:
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
        reason = single_use(f, code)
        if reason is not None:
            why = reason
            continue
        return code, None
    return None, why


def c_coupon(rule: Rule, f: Facts) -> str | None:
    return coupon_for(rule, f)[1]


def c_max_per_member(rule: Rule, f: Facts) -> str | None:
    assert rule.max_per_member is not None
    count, period = rule.max_per_member
    m = f.member
    if m is None:
        return f"{_who(f)}; rule is limited per member"
    used = (uses_in_period(m.rule_uses.get(rule.id), f.date, period)
            + uses_in_period(f.ctx.member_uses.get(rule.id), f.date, period))
    if used >= count:
        span = "in all" if period == "ever" else f"per {period}"
        return f"member has used this rule {used} times; at most {count} {span}"
    return None


def c_max_per_store(rule: Rule, f: Facts) -> str | None:
    assert rule.max_per_store is not None
    count, period = rule.max_per_store
    used = uses_in_period(f.ctx.store_uses.get(rule.id), f.date, period)
    if used >= count:
        span = "in all" if period == "ever" else f"per {period}"
        return f"this terminal has used this rule {used} times; at most {count} {span}"
    return None


def c_budget(rule: Rule, f: Facts) -> str | None:
    assert rule.budget is not None
    used = f.ctx.budget_used.get(rule.id, 0)
    if used >= rule.budget:
        return f"the rule's budget at this terminal ({rule.budget}) is spent"
    return None
