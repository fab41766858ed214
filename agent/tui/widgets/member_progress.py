"""Tier progress and referrals of a member (protocol 1.3): one short line each, for
the sale screen's member panel and the member page. Pure rendering of the agent's
``tier_progress`` and ``referrals`` keys; compact enough for 60 columns."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agent.tui.i18n import fill, filln, number
from agent.tui.labels import credit_name, tier_name
from agent.tui.widgets.bidi import BidiText


def earned_text(earned: dict[str, Any], fmt: Callable[[int], str]) -> str:
    """What referrals earned, by kind: points as a number, credit as money."""
    parts = []
    for kind, amount in sorted(earned.items()):
        if not isinstance(amount, int):
            continue
        if kind == "points":
            parts.append(filln("{n} point", "{n} points", amount))
        elif kind.startswith("credit."):
            parts.append(fill("{amount} {kind}", amount=fmt(amount), kind=credit_name(kind)))
        else:
            parts.append(f"{number(amount)} {kind}")
    return ", ".join(parts)


def progress_lines(member: dict[str, Any], fmt: Callable[[int], str]) -> list[BidiText]:
    """The member's way to the next tier and their referrals, when the agent says them."""
    lines: list[BidiText] = []
    progress = member.get("tier_progress")
    if isinstance(progress, dict) and progress.get("next_tier"):
        target = tier_name(str(progress["next_tier"]))
        spend, count = progress.get("spend_needed"), progress.get("purchases_needed")
        if progress.get("met"):
            lines.append(BidiText(fill("{tier} reached: the club upgrades soon", tier=target),
                                  "green"))
        else:
            wants = []
            if isinstance(spend, int):
                wants.append(fill("{amount} more", amount=fmt(spend)))
            if isinstance(count, int):
                wants.append(filln("{n} more purchase", "{n} more purchases", count))
            if wants:
                days = int(progress.get("window_days") or 0)
                within = (filln("in {n} day", "in {n} days", days) if days
                          else fill("in all"))
                either = (fill("{a} or {b}", a=wants[0], b=wants[1]) if len(wants) > 1
                          else wants[0])
                lines.append(BidiText(fill("To {tier}: {wants} ({within})", tier=target,
                                           wants=either, within=within)))
    referrals = member.get("referrals")
    if isinstance(referrals, dict) and int(referrals.get("count") or 0) > 0:
        count = int(referrals["count"])
        earned = earned_text(dict(referrals.get("earned") or {}), fmt)
        lines.append(BidiText(
            filln("Referred {n} member, earned {earned}", "Referred {n} members, earned {earned}",
                  count, earned=earned) if earned
            else filln("Referred {n} member", "Referred {n} members", count)))
    return lines
