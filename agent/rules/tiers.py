"""Progress to the next tier (protocol 1.3, docs/rules.md "Tier progress").

Pure: the bundle's tiers with their ``upgrade`` thresholds and the member's stats in,
what is still needed out. The club decides the upgrade itself (it changes ``tier``
in the member record); the terminal only shows how far the member is.

Which stats count (exactly):

* spend in the window: ``stats.tier_window.spend`` when ``stats.tier_window.days``
  equals the threshold's ``window_days``; else ``stats.spend_30d`` when
  ``window_days`` is 30; else unknown (``spend_needed`` null).
* purchases in the window: ``stats.tier_window.purchases`` when the days match;
  else ``stats.purchase_count`` (all time) when ``window_days`` is 0 (no window);
  else unknown (``purchases_needed`` null).

The caller passes stats already projected over this terminal's own unreflected
sales (``MemberCache.member_view``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: Longest window a bundle may name (ten years of days).
MAX_WINDOW_DAYS = 3660


@dataclass(frozen=True, slots=True)
class TierUpgrade:
    """What a member of the tier below needs to be upgraded into this tier: a spend
    (minor units) **or** a number of purchases within ``window_days`` (0: all time)."""

    min_spend: int | None
    min_purchases: int | None
    window_days: int


@dataclass(frozen=True, slots=True)
class TierProgress:
    """How far a member is from ``next_tier``; a figure is None when the threshold
    has none or the member's stats do not say it. ``met``: the club will upgrade."""

    next_tier: str
    spend_needed: int | None
    purchases_needed: int | None
    window_days: int
    met: bool

    def as_dict(self) -> dict[str, Any]:
        """The local API's ``tier_progress`` object."""
        return {"next_tier": self.next_tier, "spend_needed": self.spend_needed,
                "purchases_needed": self.purchases_needed, "window_days": self.window_days,
                "met": self.met}


def _whole(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def window_figures(stats: Mapping[str, Any], window_days: int) -> tuple[int | None, int | None]:
    """(spend, purchases) of the member in the last ``window_days``, per the module's
    rules, or None where the stats do not say."""
    window = stats.get("tier_window")
    if isinstance(window, Mapping) and _whole(window.get("days")) == window_days:
        return _whole(window.get("spend")), _whole(window.get("purchases"))
    spend = _whole(stats.get("spend_30d")) if window_days == 30 else None
    purchases = _whole(stats.get("purchase_count")) if window_days == 0 else None
    return spend, purchases


def next_tier(tier_ranks: Mapping[str, int], tier: str | None) -> str | None:
    """The tier ranked just above ``tier`` (the lowest tier for a member without one
    or with a tier the bundle does not list), or None at the top."""
    rank = tier_ranks.get(tier) if tier is not None else None
    above = sorted((r, t) for t, r in tier_ranks.items() if rank is None or r > rank)
    return above[0][1] if above else None


def tier_progress(tier_ranks: Mapping[str, int], upgrades: Mapping[str, TierUpgrade],
                  tier: str | None, stats: Mapping[str, Any]) -> TierProgress | None:
    """Progress of a member of ``tier`` to the next tier, or None (top tier, or the
    next tier has no ``upgrade`` in the bundle)."""
    target = next_tier(tier_ranks, tier)
    if target is None or target not in upgrades:
        return None
    rule = upgrades[target]
    spend, purchases = window_figures(stats, rule.window_days)
    spend_needed = (max(0, rule.min_spend - spend)
                    if rule.min_spend is not None and spend is not None else None)
    purchases_needed = (max(0, rule.min_purchases - purchases)
                        if rule.min_purchases is not None and purchases is not None else None)
    return TierProgress(target, spend_needed, purchases_needed, rule.window_days,
                        met=spend_needed == 0 or purchases_needed == 0)
