"""The store with the real rules engine: worked example B of rules.md end to end."""

import datetime as dt
import json

from agent.offline_queue import Store
from agent.rules import MemberView, QuoteContext, QuoteRequest, lines_from_json, parse_bundle
from agent.rules import quote as compute

from .helpers import member_record

BUNDLE = {
    "club": "acme", "merchant": "M-7", "version": 42,
    "issued_at": "2026-11-20T08:00:00Z", "expires_at": "2026-12-20T08:00:00Z",
    "currency": "EUR", "minor_units": 2, "timezone": "Europe/Berlin",
    "tiers": [{"id": "bronze", "rank": 1}, {"id": "silver", "rank": 2}, {"id": "gold", "rank": 3}],
    "points": {"value": 1, "min_redeem": 100, "max_redeem_share_bps": 5000},
    "credits": {"accepted": ["credit.club", "credit.merchant:M-7"],
                "use_cap_per_invoice": 50000, "use_cap_per_day": 100000},
    "offline": {"max_redeem_value_per_member_day": 2000, "max_pending": 5000,
                "max_age_hours": 72},
    "rules": [
        {"id": "gold10", "kind": "discount", "priority": 100, "when": {"tiers": ["gold"]},
         "then": {"percent_bps": 1000}},
        {"id": "coffee-2", "kind": "discount", "priority": 50,
         "when": {"categories": ["coffee"]}, "then": {"amount": 200}},
        {"id": "base-points", "kind": "points", "priority": 10, "when": {},
         "then": {"per_spend": 100, "points": 1}},
        {"id": "tuesday-x2", "kind": "multiplier", "priority": 10,
         "when": {"weekdays": ["tue"]}, "then": {"bps": 20000}},
        {"id": "cashback", "kind": "credit", "priority": 10, "when": {"min_gross": 5000},
         "then": {"percent_bps": 200, "kind": "credit.club", "expires_days": 90}},
    ],
}
BASKET = [{"sku": "espresso", "category": "coffee", "qty": 2, "unit_price": 250},
          {"sku": "cake", "category": "bakery", "qty": 1, "unit_price": 4550}]


def test_example_b_leaves_266_points_and_counts_toward_the_day(store: Store) -> None:
    store.apply_changes({"from_version": 0, "to_version": 1, "removed": [],
                         "members": [member_record(points=1200, applied={"T-0001": 0})]})
    bundle = parse_bundle(json.dumps(BUNDLE).encode())
    at = dt.datetime.fromisoformat("2026-11-24T10:00:00+01:00")
    day = at.replace(hour=0)
    redeemed, used = store.offline_counters("m-1", day, day + dt.timedelta(days=1))
    stats = store.queue_stats()
    ctx = QuoteContext(at, offline=True, redeemed_today=redeemed, credit_used_today=used,
                       pending_count=stats.pending, oldest_pending_age_s=None)
    view = store.member_view("m-1")
    assert view is not None
    q = compute(bundle, QuoteRequest(lines_from_json(BASKET), token_kind="nfc",
                                     redeem_points=1000), MemberView(view), ctx)
    body = {**q.to_dict(), "member_id": "m-1", "identified_by": "nfc:04A1B2",
            "lines": BASKET, "payment": "cash"}
    body.pop("explain", None)
    store.append("sale", body, at=at, staff_id="s-1", offline=True)
    assert store.usable_balances("m-1")["points"] == 266
    assert store.usable_balances("m-1")["credit.club"] == 66
    assert store.offline_counters("m-1", day, day + dt.timedelta(days=1)) == (1000, 0)
