"""The agent's explanation of a price, in the UI's language (#15 item 11).

The rules engine explains every rule in English for logs and the club
(``text``), and adds machine-readable codes: a rule not applied carries
``why`` (the failing check, ``agent/rules/conditions.py``), a limit note
``limit`` (``docs/rules.md``). The UI translates by code, filling in what it
knows from the quote (the member's tier, the basket's total) in the locale's
digits; an unknown code falls back to the agent's sentence, never to nothing.
English keeps the agent's own sentences: they carry the specifics (which tier,
which amount) and are written for cashiers.

Pure: no Textual import.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from agent.tui.i18n import N_, current, fill, isolate, plain
from agent.tui.labels import tier_name

# Why a rule was not applied, by the engine's check name. Each may use
# {tier} (the member's tier) and {gross} (the basket's total).
WHY_NOT = {
    "unknown": N_("this terminal does not know this kind of rule yet"),
    "member": N_("for members only"),
    "tiers": N_("not for this member's tier ({tier})"),
    "min_tier": N_("needs a higher tier than {tier}"),
    "groups": N_("for another member group"),
    "birthday": N_("only around the member's birthday"),
    "min_purchase_count": N_("the member has too few earlier purchases"),
    "min_spend_30d": N_("the member spent too little in the last 30 days"),
    "min_days_since_last_purchase": N_("for members who have not bought for a while"),
    "identified_by": N_("needs another way of identifying the member"),
    "bins": N_("not for this bank card"),
    "weekdays": N_("not on this day of the week"),
    "hours": N_("not at this time of day"),
    "dates": N_("not on this date"),
    "min_gross": N_("the basket ({gross}) is under the minimum"),
    "lines": N_("no item in the basket it is for"),
    "min_points": N_("the member has too few points"),
    "min_spend_days": N_("the member has not spent enough recently"),
    "bought_within_days": N_("the member has not bought recently"),
    "first_purchase": N_("for a first purchase only"),
    "purchase_count_every": N_("not this purchase (every n-th only)"),
    "referred": N_("for referred members only"),
    "codes": N_("needs a coupon code"),
    "coupon": N_("the coupon code does not fit"),
    "max_per_member": N_("the member has used it up"),
    "max_per_store": N_("used up at this shop"),
    "budget": N_("its budget is spent"),
    "exclusive": N_("another rule already applies and excludes it"),
    "not_requested": N_("not asked for"),
}

# Why the agent lets less be redeemed than the member has (redeem_limits'
# held_by, the engine's limit names: docs/rules.md).
LIMIT_REASONS = {
    "max_redeem_value_per_member_day": N_("offline limit per member and day"),
    "max_pending": N_("offline with too many unsent sales"),
    "max_age_hours": N_("offline for too long"),
    "max_redeem_share_bps": N_("only part of a sale may be paid with points"),
    "min_redeem": N_("fewer than the minimum to redeem"),
    "use_cap_per_invoice": N_("credit limit per sale"),
    "use_cap_per_day": N_("credit limit per day"),
    "payable": N_("nothing left to pay"),
    "member": N_("no member"),
    "bundle": N_("no valid rules"),
    "points": N_("points are not redeemed here"),
}


def english() -> bool:
    """The agent's own sentences are shown as they are."""
    return current().code == "en"


def limit_reason(code: object) -> str:
    """A limit the agent names, as a cashier reads it (the code if unknown).

    Logical order: it is a value filled into a translated sentence.
    """
    text = LIMIT_REASONS.get(str(code))
    return current().gettext(text) if text else str(code)


def why_not(item: Mapping[str, Any], quote: Mapping[str, Any],
            fmt: Callable[[int], str]) -> str:
    """One rule not applied, and why: ``gold10: not applied, …`` (logical order)."""
    agent_text = str(plain(str(item.get("text") or item.get("rule") or "")))
    rule = str(item.get("rule") or "")
    if item.get("name") and agent_text.startswith(f"{plain(rule)}: "):
        # The bundle's name of the rule instead of its id.
        agent_text = f"{rule_name(item)}: {agent_text[len(str(plain(rule))) + 2:]}"
    code = str(item.get("why") or "")
    if english() or code not in WHY_NOT:
        return agent_text
    member = quote.get("member") or {}
    tier = member.get("tier")
    reason = current().gettext(WHY_NOT[code]).format(
        tier=tier_name(str(tier)) if tier else current().gettext("no tier"),
        # Isolated: a money value is never wrapped away from its sign.
        gross=isolate(fmt(int(quote.get("gross") or 0))))
    # Filled in here, not by fill(): the reason is translated text, and the
    # panel isolates the whole line as one value.
    return current().gettext(N_("{rule}: not applied, {why}")).format(
        rule=rule_name(item), why=reason)


def rule_name(item: Mapping[str, Any]) -> str:
    """What a cashier calls a rule: the bundle's ``name``, else its id (plain text)."""
    return str(plain(str(item.get("name") or item.get("rule") or "")))


def percent(bps: int) -> str:
    """1000 → ``10``, 1250 → ``12.5`` (the locale's digits and decimal sign)."""
    if bps % 100 == 0:
        return current().number(bps // 100)
    return current().money(bps, None, 2).rstrip(current().digits("0"))


def discount_label(item: Mapping[str, Any]) -> str:
    """An applied discount's label (logical order), in every language: its name
    and what it is (``Gold members: 10 % off``); the amount goes beside it, so the
    label does not repeat it (#15 item 15)."""
    if item.get("percent_bps") is not None:
        return current().gettext(N_("{rule}: {percent} % off")).format(
            rule=rule_name(item), percent=isolate(percent(int(item["percent_bps"]))))
    return current().gettext(N_("{rule}: discount")).format(rule=rule_name(item))


def note_text(item: Mapping[str, Any], quote: Mapping[str, Any]) -> str:
    """An agent's note above the totals (stale rules, an offline limit, an
    inactive member), translated by its step and limit code (logical order)."""
    agent_text = str(plain(str(item.get("text") or "")))
    if english():
        return agent_text
    step = item.get("step")
    if step == "rules":
        return fill("No valid rules on this terminal: no discount applies.")
    if step == "limit" and item.get("limit") in LIMIT_REASONS:
        return fill("Offline: {why}.", why=limit_reason(item["limit"]))
    if step == "member":
        return fill("No active member: only rules for everyone apply.")
    return agent_text


__all__ = ["LIMIT_REASONS", "WHY_NOT", "discount_label", "limit_reason", "note_text",
           "percent", "rule_name", "why_not"]
