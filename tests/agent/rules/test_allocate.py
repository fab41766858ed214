"""Per-line shares of a sale's benefits (agent/rules/allocate.py): exact sums."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from agent.localapi.demo import example_bundle
from agent.rules import Line, MemberView, QuoteContext, QuoteRequest, line_benefits, quote
from agent.rules.allocate import shares

NOW = datetime(2026, 11, 24, 10, tzinfo=UTC)  # a Tuesday: points are doubled


@given(st.integers(0, 10**9), st.lists(st.integers(0, 10**6), min_size=1, max_size=30))
def test_shares_add_up_and_follow_the_weights(amount: int, weights: list[int]) -> None:
    out = shares(amount, weights)
    assert sum(out) == amount and all(s >= 0 for s in out)
    total = sum(weights) or len(weights)
    for s, w in zip(out, weights if sum(weights) else [1] * len(weights), strict=True):
        assert abs(s * total - amount * w) <= total  # within one unit of the exact share


def test_the_demo_bundle_by_line() -> None:
    bundle = example_bundle(NOW)
    lines = [Line("esp", "coffee", 2, 250), Line("cro", "bakery", 1, 220),
             Line(None, None, 1, 1000)]
    member = MemberView({"member_id": "m-1", "status": "active", "tier": "gold",
                         "balances": {"points": 0}})
    q = quote(bundle, QuoteRequest(lines), member, QuoteContext(at=NOW))
    got = line_benefits(bundle, lines, q)
    assert sum(b.discount for b in got) == q.gross - q.net
    assert sum(b.points for b in got) == sum(p for _, p in q.points_earned)
    assert "bakery-members-10" in got[1].rules and "coffee-2" in got[0].rules
    assert "coffee-2" not in got[1].rules and "bakery-members-10" not in got[2].rules
    assert "tuesday-x2" in got[2].rules  # the multiplier follows each line's points
    # No bundle: nothing, but one share per line.
    none = line_benefits(None, lines, quote(None, QuoteRequest(lines), None,
                                            QuoteContext(at=NOW)))
    assert [b.to_dict() for b in none] == [{"discount": 0, "points": 0, "rules": []}] * 3
