"""Tier progress (protocol 1.3, docs/rules.md "Tier progress"): worked examples and a
property: what is still needed is never negative and is zero exactly when met."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from agent.rules.tiers import TierUpgrade, next_tier, tier_progress

RANKS = {"bronze": 1, "silver": 2, "gold": 3}
GOLD = {"gold": TierUpgrade(min_spend=50000, min_purchases=10, window_days=30)}


def test_worked_examples() -> None:
    # Silver, 450.00 and 8 purchases in the club's 30-day window: 50.00 or 2 more.
    stats = {"tier_window": {"days": 30, "spend": 45000, "purchases": 8}}
    p = tier_progress(RANKS, GOLD, "silver", stats)
    assert p is not None and p.as_dict() == {"next_tier": "gold", "spend_needed": 5000,
                                             "purchases_needed": 2, "window_days": 30,
                                             "met": False}
    # The window the club reported is another one: spend_30d counts for 30 days,
    # purchases are unknown (purchase_count is all time).
    p = tier_progress(RANKS, GOLD, "silver", {"tier_window": {"days": 7, "spend": 1},
                                              "spend_30d": 51000, "purchase_count": 99})
    assert p is not None and (p.spend_needed, p.purchases_needed, p.met) == (0, None, True)
    # All-time thresholds read purchase_count.
    ever = {"gold": TierUpgrade(min_spend=None, min_purchases=40, window_days=0)}
    p = tier_progress(RANKS, ever, "silver", {"purchase_count": 37})
    assert p is not None and (p.spend_needed, p.purchases_needed) == (None, 3)
    # Gold is the top; bronze's next is silver, which has no threshold.
    assert tier_progress(RANKS, GOLD, "gold", {}) is None
    assert tier_progress(RANKS, GOLD, "bronze", {}) is None
    # No tier (enrolled offline): the lowest tier is next.
    assert next_tier(RANKS, None) == "bronze" and next_tier(RANKS, "vip") == "bronze"


@given(spend=st.integers(0, 10**12), purchases=st.integers(0, 10**6),
       min_spend=st.integers(1, 10**12), min_purchases=st.integers(1, 10**6),
       days=st.integers(0, 3660))
def test_needed_is_never_negative_and_zero_exactly_when_met(
        spend: int, purchases: int, min_spend: int, min_purchases: int, days: int) -> None:
    ups = {"gold": TierUpgrade(min_spend, min_purchases, days)}
    stats = {"tier_window": {"days": days, "spend": spend, "purchases": purchases}}
    p = tier_progress(RANKS, ups, "silver", stats)
    assert p is not None
    assert p.spend_needed == max(0, min_spend - spend)
    assert p.purchases_needed == max(0, min_purchases - purchases)
    assert p.met == (spend >= min_spend or purchases >= min_purchases)
