"""Properties of quotes over random bundles, baskets, members and times (hypothesis)."""

from __future__ import annotations

import datetime as dt
import json
import random
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from agent.errors import LimitExceeded
from agent.rules import Line, MemberView, QuoteContext, QuoteRequest, parse_bundle, quote
from agent.rules.engine import _split
from tests.agent.rules.conftest import spec_bundle

SKUS = ["a", "b", "c", "d"]
CATS = ["x", "y", "z"]
TIERS = ["bronze", "silver", "gold"]
DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]

hhmm = st.builds(lambda h, m: f"{h:02d}:{m:02d}", st.integers(0, 23), st.sampled_from([0, 30]))
day = st.dates(dt.date(2026, 10, 1), dt.date(2027, 3, 31))
conditions = st.fixed_dictionaries({}, optional={
    "anonymous": st.booleans(),
    "tiers": st.lists(st.sampled_from(TIERS), max_size=2),
    "min_tier": st.sampled_from(TIERS),
    "groups": st.lists(st.sampled_from(["vip", "staff"]), max_size=2),
    "weekdays": st.lists(st.sampled_from(DAYS), min_size=1, max_size=4),
    "hours": st.lists(st.lists(hhmm, min_size=2, max_size=2), min_size=1, max_size=2),
    "dates": st.lists(st.lists(day, min_size=2, max_size=2).map(
        lambda p: sorted(d.isoformat() for d in p)), min_size=1, max_size=2),
    "birthday": st.sampled_from(["day", "month"]),
    "min_gross": st.integers(0, 3000),
    "skus": st.lists(st.sampled_from(SKUS), min_size=1, max_size=2),
    "categories": st.lists(st.sampled_from(CATS), min_size=1, max_size=2),
    "identified_by": st.lists(st.sampled_from(["pan", "nfc", "tel"]), min_size=1, max_size=2),
    "bins": st.lists(st.sampled_from(["411111", "522222"]), min_size=1, max_size=2),
    "min_purchase_count": st.integers(0, 5),
    "min_spend_30d": st.integers(0, 5000),
    "min_days_since_last_purchase": st.integers(0, 60),
})
effects = {
    "discount": st.one_of(
        st.fixed_dictionaries({"percent_bps": st.integers(0, 10000)},
                              optional={"max_amount": st.integers(0, 2000)}),
        st.fixed_dictionaries({"amount": st.integers(0, 3000)},
                              optional={"max_amount": st.integers(0, 2000)})),
    "points": st.fixed_dictionaries({"per_spend": st.integers(1, 500),
                                     "points": st.integers(0, 5)},
                                    optional={"max_points": st.integers(0, 50)}),
    "multiplier": st.fixed_dictionaries({"bps": st.integers(10000, 40000)}),
    "credit": st.fixed_dictionaries({"percent_bps": st.integers(0, 2000),
                                     "kind": st.just("credit.club")},
                                    optional={"expires_days": st.integers(0, 90),
                                              "max_amount": st.integers(0, 500)}),
    "lottery": st.fixed_dictionaries({"per_spend": st.integers(1, 1000),
                                      "entries": st.integers(0, 3)}),
}


@st.composite
def rules(draw: Any) -> list[dict[str, Any]]:
    n = draw(st.integers(0, 12))
    out = []
    for i in range(n):
        kind = draw(st.sampled_from(sorted(effects)))
        out.append({"id": f"r{i}", "kind": kind, "priority": draw(st.integers(0, 3)),
                     "exclusive": draw(st.booleans()), "when": draw(conditions),
                     "then": draw(effects[kind])})
    return out


lines = st.lists(st.builds(
    Line, st.one_of(st.none(), st.sampled_from(SKUS)), st.one_of(st.none(), st.sampled_from(CATS)),
    st.integers(0, 5), st.integers(0, 2000)), max_size=8)
members = st.one_of(st.none(), st.fixed_dictionaries({
    "member_id": st.just("m-1"),
    "status": st.sampled_from(["active", "active", "blocked"]),
    "tier": st.sampled_from([*TIERS, "platinum"]),
    "groups": st.lists(st.sampled_from(["vip", "staff"]), max_size=2),
    "birthday": st.sampled_from(["1990-11-24", "2000-02-29", "1985-03-01"]),
    "balances": st.fixed_dictionaries({"points": st.integers(0, 3000),
                                       "credit.club": st.integers(0, 3000)}),
    "stats": st.fixed_dictionaries({"purchase_count": st.integers(0, 9),
                                    "spend_30d": st.integers(0, 9000),
                                    "last_purchase": day.map(str)}),
}))
times = st.datetimes(dt.datetime(2026, 10, 1), dt.datetime(2026, 12, 25),
                     timezones=st.just(dt.UTC))
requests = st.fixed_dictionaries({
    "token_kind": st.sampled_from([None, "pan", "nfc", "tel"]),
    "bin6": st.sampled_from([None, "411111", "522222"]),
    "redeem_points": st.sampled_from([None, "max", 0, 100, 500]),
    "use_credit": st.sampled_from([[], ["credit.club"]]),
})
contexts = st.fixed_dictionaries({
    "offline": st.booleans(), "redeemed_today": st.integers(0, 2500),
    "credit_used_today": st.integers(0, 2500), "pending_count": st.integers(0, 6000),
    "oldest_pending_age_s": st.one_of(st.none(), st.floats(0, 400000)),
})


def compute(rule_list, basket, record, at, req, ctx, *, use_index=True):
    bundle = parse_bundle(json.dumps(spec_bundle(rules=rule_list,
                                                 expires_at="2027-06-01T00:00:00Z")))
    member = MemberView(record) if record is not None else None
    try:
        return quote(bundle, QuoteRequest(basket, **req), member, QuoteContext(at, **ctx),
                     use_index=use_index)
    except LimitExceeded as exc:
        return exc.limit


def numbers(q):
    if isinstance(q, str):
        return q
    d = q.to_dict()
    d.pop("explain")
    return d, q.line_nets, q.limits_held


@given(rules(), lines, members, times, requests, contexts)
def test_sale_invariants(rule_list, basket, record, at, req, ctx):
    q = compute(rule_list, basket, record, at, req, ctx)
    if isinstance(q, str):
        return
    total_discount = sum(a for _, a in q.discounts)
    assert 0 <= total_discount <= q.gross
    assert all(n >= 0 for n in q.line_nets)
    assert all(n <= ln.total for n, ln in zip(q.line_nets, basket, strict=True))
    assert q.net == q.gross - total_discount == sum(q.line_nets)
    credits = sum(a for _, a in q.credits_used)
    assert q.payable == q.net - q.redeemed_value - credits
    assert q.payable >= 0 and q.redeemed_value >= 0 and credits >= 0
    assert all(p > 0 for _, p in q.points_earned)
    assert q.lottery_entries >= 0


@given(rules(), lines, members, times, requests, contexts, st.randoms())
def test_deterministic_and_order_of_rules_list_does_not_matter(rule_list, basket, record, at,
                                                              req, ctx, rnd: random.Random):
    first = compute(rule_list, basket, record, at, req, ctx)
    again = compute(rule_list, basket, record, at, req, ctx)
    shuffled = list(rule_list)
    rnd.shuffle(shuffled)
    other = compute(shuffled, basket, record, at, req, ctx)
    assert numbers(first) == numbers(again) == numbers(other)
    if not isinstance(first, str):
        assert first.explain == again.explain == other.explain


@given(rules(), lines, members, times, requests, contexts)
def test_indexed_equals_full_scan(rule_list, basket, record, at, req, ctx):
    fast = compute(rule_list, basket, record, at, req, ctx)
    full = compute(rule_list, basket, record, at, req, ctx, use_index=False)
    assert numbers(fast) == numbers(full)
    if isinstance(fast, str):
        return
    # Every rule the indexed quote lists is listed identically by the full scan, in the
    # same order; the rules it leaves out are not applied, and it counts them.
    fast_rules = [e for e in fast.explain if "rule" in e]
    full_rules = [e for e in full.explain if "rule" in e]
    it = iter(full_rules)
    for e in fast_rules:
        assert e in it
    listed = {e["rule"] for e in fast_rules}
    left_out = [e for e in full_rules if e["rule"] not in listed]
    assert all(not e["applied"] for e in left_out)
    counted = sum(e.get("rules", 0) for e in fast.explain if e.get("step") == "index")
    assert counted == len(left_out)


@given(st.lists(st.integers(0, 10**6), min_size=1, max_size=20), st.data())
def test_split_sums_to_the_discount(remaining, data):
    targets = sorted(data.draw(st.sets(st.integers(0, len(remaining) - 1), min_size=1)))
    total = sum(remaining[i] for i in targets)
    amount = data.draw(st.integers(0, total))
    after = list(remaining)
    _split(amount, targets, after)
    assert sum(remaining) - sum(after) == amount
    assert all(a >= 0 for a in after)
    assert all(after[i] == remaining[i] for i in range(len(remaining)) if i not in targets)
    # Each line's share is within one minor unit of its exact proportional share.
    if total:
        for i in targets:
            share = remaining[i] - after[i]
            assert amount * remaining[i] // total <= share <= amount * remaining[i] // total + 1
    # The all-lines fast path gives the same split as naming every line.
    if targets == list(range(len(remaining))):
        fast = list(remaining)
        _split(amount, None, fast)
        assert fast == after


@given(st.lists(st.integers(0, 10**6), min_size=1, max_size=20), st.data())
def test_split_over_all_lines_equals_split_over_every_index(remaining, data):
    amount = data.draw(st.integers(0, sum(remaining)))
    named, fast = list(remaining), list(remaining)
    _split(amount, list(range(len(remaining))), named)
    _split(amount, None, fast)
    assert fast == named and sum(remaining) - sum(fast) == amount
