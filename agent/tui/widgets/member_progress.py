"""Tier progress and referrals of a member (protocol 1.3): one short line each, for
the sale screen's member panel and the member page. Pure rendering of the agent's
``tier_progress`` and ``referrals`` keys; compact enough for 60 columns.

Each line is one translated sentence filled once (a filled sentence is never a value
of another: its bidi isolates would show as text)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agent.tui.i18n import fill, filln, number
from agent.tui.labels import credit_name, tier_name
from agent.tui.widgets.bidi import BidiText


def _progress_line(progress: dict[str, Any], fmt: Callable[[int], str]) -> BidiText | None:
    target = tier_name(str(progress["next_tier"]))
    if progress.get("met"):
        return BidiText(fill("{tier} reached: the club upgrades soon", tier=target), "green")
    spend, count = progress.get("spend_needed"), progress.get("purchases_needed")
    days = int(progress.get("window_days") or 0)
    has_spend, has_count = isinstance(spend, int), isinstance(count, int)
    if not (has_spend or has_count):
        return None
    values = {"tier": target, "days": number(days),
              "amount": fmt(spend) if isinstance(spend, int) else ""}
    n = count if isinstance(count, int) else 0
    if has_spend and has_count:
        text = (filln("To {tier}: {amount} or {n} purchase more in {days} days",
                      "To {tier}: {amount} or {n} purchases more in {days} days", n, **values)
                if days else
                filln("To {tier}: {amount} or {n} purchase more", "To {tier}: {amount} or {n} "
                      "purchases more", n, **values))
    elif has_spend:
        text = (fill("To {tier}: {amount} more in {days} days", **values) if days
                else fill("To {tier}: {amount} more", **values))
    else:
        text = (filln("To {tier}: {n} purchase more in {days} days",
                      "To {tier}: {n} purchases more in {days} days", n, **values) if days
                else filln("To {tier}: {n} purchase more", "To {tier}: {n} purchases more",
                           n, **values))
    return BidiText(text)


def _referral_lines(referrals: dict[str, Any], fmt: Callable[[int], str]) -> list[BidiText]:
    count = int(referrals.get("count") or 0)
    earned = {k: v for k, v in dict(referrals.get("earned") or {}).items()
              if isinstance(v, int) and v > 0}
    if count <= 0 and not earned:
        return []
    if len(earned) == 1:
        (kind, amount), = earned.items()
        if kind == "points":
            return [BidiText(filln("Referred {n} member, earned {points} points",
                                   "Referred {n} members, earned {points} points", count,
                                   points=number(amount)))]
        if kind.startswith("credit."):
            return [BidiText(filln("Referred {n} member, earned {amount} {kind}",
                                   "Referred {n} members, earned {amount} {kind}", count,
                                   amount=fmt(amount), kind=credit_name(kind)))]
    lines = [BidiText(filln("Referred {n} member", "Referred {n} members", count))]
    for kind, amount in sorted(earned.items()):
        shown = fmt(amount) if kind.startswith("credit.") else number(amount)
        name = credit_name(kind) if kind.startswith("credit.") else kind
        lines.append(BidiText(fill("Earned from referrals: {amount} {kind}", amount=shown,
                                   kind=name)))
    return lines


def progress_lines(member: dict[str, Any], fmt: Callable[[int], str]) -> list[BidiText]:
    """The member's way to the next tier and their referrals, when the agent says them."""
    lines: list[BidiText] = []
    progress = member.get("tier_progress")
    if isinstance(progress, dict) and progress.get("next_tier"):
        line = _progress_line(progress, fmt)
        if line is not None:
            lines.append(line)
    referrals = member.get("referrals")
    if isinstance(referrals, dict):
        lines.extend(_referral_lines(referrals, fmt))
    return lines
