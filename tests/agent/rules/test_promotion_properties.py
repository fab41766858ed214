"""Properties of issue 21's kinds and conditions (hypothesis): the index equals a full
scan, limits and budgets are never exceeded under any order of sales and refunds,
and the counts give the same answer wherever they are kept (club record or this
terminal's pending events)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.errors import LimitExceeded
from agent.rules import Line, MemberView, QuoteContext, QuoteRequest, parse_bundle, quote
from tests.agent.rules.conftest import spec_bundle
from tests.agent.rules.test_properties import conditions, lines, members, times

CODES = ["SUMMER", "VIP-1", "VIP-2"]
limit = st.fixed_dictionaries({"count": st.integers(0, 3),
                               "period": st.sampled_from(["day", "week", "month", "year",
                                                          "ever"])})
new_conditions = st.fixed_dictionaries({}, optional={
    "min_points": st.integers(0, 3000),
    "min_spend_days": st.fixed_dictionaries({"days": st.sampled_from([7, 30, 90]),
                                             "amount": st.integers(0, 9000)}),
    "bought_within_days": st.integers(0, 60),
    "first_purchase": st.booleans(),
    "purchase_count_every": st.integers(1, 4),
    "referred": st.booleans(),
    "codes": st.lists(st.sampled_from(CODES), min_size=1, max_size=2),
    "max_per_member": limit, "max_per_store": limit, "once_per_member": st.booleans(),
    "budget": st.integers(0, 3000),
})
new_effects = {
    "discount": st.one_of(
        st.fixed_dictionaries({"amount": st.integers(0, 300), "per_unit": st.just(True)},
                              optional={"max_amount": st.integers(0, 2000)}),
        st.fixed_dictionaries({"buy": st.integers(1, 3), "get": st.integers(1, 2)},
                              optional={"percent_bps": st.integers(0, 10000),
                                        "max_amount": st.integers(0, 2000)}),
        st.fixed_dictionaries({"cheapest": st.integers(1, 3)},
                              optional={"percent_bps": st.integers(0, 10000)})),
    "points": st.one_of(st.fixed_dictionaries({"per_unit": st.integers(0, 10)}),
                        st.fixed_dictionaries({"per_visit": st.integers(0, 50)},
                                              optional={"max_points": st.integers(0, 30)})),
    "credit": st.fixed_dictionaries({"amount": st.integers(0, 500),
                                     "kind": st.just("credit.club")}),
    "fee": st.fixed_dictionaries({"percent_bps": st.integers(0, 500)},
                                 optional={"amount": st.integers(0, 50),
                                           "max_amount": st.integers(0, 100)}),
    "referral": st.fixed_dictionaries({"percent_bps": st.integers(0, 1000),
                                       "kind": st.sampled_from(["credit.club", "points"])}),
    "reward": st.fixed_dictionaries({"cost_points": st.integers(1, 1500)}),
}


@st.composite
def promo_rules(draw: Any) -> list[dict[str, Any]]:
    out = []
    for i in range(draw(st.integers(0, 10))):
        kind = draw(st.sampled_from(sorted(new_effects)))
        when = {**draw(conditions), **draw(new_conditions)}
        out.append({"id": f"r{i}", "kind": kind, "priority": draw(st.integers(0, 3)),
                    "exclusive": draw(st.booleans()), "when": when,
                    "then": draw(new_effects[kind])})
    return out


extras = st.fixed_dictionaries({
    "referred_by": st.sampled_from([None, "m-9"]),
    "used_codes": st.lists(st.sampled_from(CODES), max_size=1),
    "rule_uses": st.dictionaries(st.sampled_from(["r0", "r1", "r2"]),
                                 st.lists(st.sampled_from(["2026-11-24", "2026-10-01"]),
                                          max_size=3), max_size=2),
})
requests = st.fixed_dictionaries({
    "codes": st.lists(st.sampled_from([*CODES, "summer", "NOPE"]), max_size=2),
    "redeem_points": st.sampled_from([None, "max", 100]),
})
counts = st.fixed_dictionaries({
    "offline": st.booleans(), "pending_purchases": st.integers(0, 3),
    "store_uses": st.dictionaries(st.sampled_from(["r0", "r1"]),
                                  st.lists(st.just("2026-11-24"), max_size=3), max_size=2),
    "budget_used": st.dictionaries(st.sampled_from(["r0", "r1"]), st.integers(0, 3000),
                                   max_size=2),
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


@given(promo_rules(), lines, members, extras, times, requests, counts)
@settings(max_examples=150)
def test_indexed_equals_full_scan_with_new_kinds(rule_list, basket, record, extra, at, req,
                                                  ctx):
    if record is not None:
        record = {**record, **{k: v for k, v in extra.items() if v is not None}}
    fast = compute(rule_list, basket, record, at, req, ctx)
    full = compute(rule_list, basket, record, at, req, ctx, use_index=False)
    assert numbers(fast) == numbers(full)
    if isinstance(fast, str):
        return
    listed = {e["rule"] for e in fast.explain if "rule" in e}
    assert all(not e["applied"] for e in full.explain
               if "rule" in e and e["rule"] not in listed)
    # Invariants of a sale hold with the new kinds too.
    assert 0 <= sum(a for _, a in fast.discounts) <= fast.gross
    assert all(n >= 0 for n in fast.line_nets)
    assert fast.net == sum(fast.line_nets)
    assert all(a > 0 for _, a in fast.fees)
    assert all(row[3] > 0 for row in fast.referral_rewards)
    # Every skipped rule says why, for machines too.
    assert all(e.get("why") for e in full.explain if "rule" in e and not e["applied"])


LIMITED = [
    {"id": "once", "kind": "discount", "when": {"once_per_member": True},
     "then": {"amount": 100}},
    {"id": "daily2", "kind": "points", "when": {"max_per_member": {"count": 2,
                                                                   "period": "day"}},
     "then": {"per_visit": 10}},
    {"id": "store3", "kind": "discount", "when": {"anonymous": True,
                                                  "max_per_store": {"count": 3,
                                                                    "period": "week"}},
     "then": {"amount": 50}},
    {"id": "budget", "kind": "credit", "when": {"budget": 700},
     "then": {"amount": 300, "kind": "credit.club"}},
]
BASKET = [Line("espresso", "coffee", 2, 250)]
MEMBER = {"member_id": "m-1", "status": "active", "tier": "gold",
          "balances": {"points": 0}, "stats": {"purchase_count": 5}}


def _ctx_from(events: list[dict[str, Any]], at: dt.datetime, member_id: str | None,
              club_has: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """What a store passes: the first ``club_has`` events are in the member record
    (applied at the club), the rest are this terminal's pending events. Refunded
    sales give their uses back."""
    live = [e for e in events if not e["refunded"]]
    record = dict(MEMBER, rule_uses={})
    member_uses: dict[str, list[str]] = {}
    store_uses: dict[str, list[str]] = {}
    budget: dict[str, int] = {}
    for n, e in enumerate(live):
        for rule, amount in e["uses"]:
            store_uses.setdefault(rule, []).append(e["day"])
            budget[rule] = budget.get(rule, 0) + amount
            if e["member"] == member_id and member_id is not None:
                where = record["rule_uses"] if n < club_has else member_uses
                where.setdefault(rule, []).append(e["day"])
    ctx = {"member_uses": member_uses, "store_uses": store_uses, "budget_used": budget}
    return record, ctx


@given(st.lists(st.tuples(st.sampled_from(["sale", "anon", "refund"]), st.integers(0, 20),
                          st.integers(0, 10)), max_size=25))
@settings(max_examples=120)
def test_limits_never_exceeded_under_any_order_of_sales_and_refunds(steps):
    bundle = parse_bundle(json.dumps(spec_bundle(rules=LIMITED,
                                                 expires_at="2027-06-01T00:00:00Z")))
    events: list[dict[str, Any]] = []
    start = dt.datetime(2026, 11, 2, 9, tzinfo=dt.UTC)  # a Monday
    for kind, hours, pick in steps:
        at = start + dt.timedelta(hours=hours * 5)
        if kind == "refund":
            live = [e for e in events if not e["refunded"]]
            if live:
                live[pick % len(live)]["refunded"] = True
            continue
        member_id = "m-1" if kind == "sale" else None
        record, ctx = _ctx_from(events, at, "m-1", club_has=pick % (len(events) + 1))
        q = quote(bundle, QuoteRequest(BASKET), MemberView(record) if member_id else None,
                  QuoteContext(at, **ctx))
        day = at.astimezone(bundle.tz).date().isoformat()
        events.append({"member": member_id, "day": day, "uses": list(q.uses),
                       "refunded": False})
        live = [e for e in events if not e["refunded"]]
        mine = [u for e in live if e["member"] == "m-1" for u in e["uses"]]
        assert sum(1 for r, _ in mine if r == "once") <= 1
        per_day: dict[str, int] = {}
        for e in live:
            if e["member"] == "m-1":
                for r, _ in e["uses"]:
                    if r == "daily2":
                        per_day[e["day"]] = per_day.get(e["day"], 0) + 1
        assert all(v <= 2 for v in per_day.values())
        per_week: dict[tuple[int, int], int] = {}
        for e in live:
            for r, _ in e["uses"]:
                if r == "store3":
                    wk = dt.date.fromisoformat(e["day"]).isocalendar()[:2]
                    per_week[wk] = per_week.get(wk, 0) + 1
        assert all(v <= 3 for v in per_week.values())
        assert sum(a for e in live for r, a in e["uses"] if r == "budget") <= 700


@given(st.lists(st.sampled_from(["2026-11-24", "2026-11-23", "2026-10-01"]), max_size=6),
       st.integers(0, 6))
def test_offline_exactness_counts_give_one_answer_wherever_they_are_kept(days, split):
    """Uses in the club's record or in this terminal's pending events count alike."""
    bundle = parse_bundle(json.dumps(spec_bundle(rules=LIMITED,
                                                 expires_at="2027-06-01T00:00:00Z")))
    at = dt.datetime(2026, 11, 24, 10, tzinfo=dt.UTC)
    uses = {"once": days, "daily2": days}
    club = {r: d[:split] for r, d in uses.items()}
    here = {r: d[split:] for r, d in uses.items()}
    a = quote(bundle, QuoteRequest(BASKET), MemberView(dict(MEMBER, rule_uses=uses)),
              QuoteContext(at))
    b = quote(bundle, QuoteRequest(BASKET), MemberView(dict(MEMBER, rule_uses=club)),
              QuoteContext(at, member_uses=here))
    c = quote(bundle, QuoteRequest(BASKET), MemberView(MEMBER), QuoteContext(at,
                                                                             member_uses=uses))
    assert numbers(a) == numbers(b) == numbers(c)


def test_a_referral_rule_saying_referred_false_never_applies_to_an_unreferred_member() -> None:
    """Found by the property above: `referred: false` on a referral rule made it hold for
    a member nobody referred, and the engine then failed on the missing referrer."""
    from datetime import UTC, datetime
    rule = {"id": "r0", "kind": "referral", "priority": 0, "exclusive": False,
            "when": {"referred": False}, "then": {"percent_bps": 500, "kind": "credit.club"}}
    record = {"member_id": "m-1", "status": "active", "tier": "bronze", "groups": [],
              "balances": {"points": 0}, "stats": {}, "referred_by": None}
    q = compute([rule], [], record, datetime(2026, 10, 1, tzinfo=UTC),
                {"codes": [], "redeem_points": None},
                {"offline": False, "pending_purchases": 0, "store_uses": {},
                 "budget_used": {}})
    assert not isinstance(q, str)
    assert not any(e.get("applied") for e in q.explain if e.get("rule") == "r0")
