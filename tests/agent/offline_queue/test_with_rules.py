"""The store with the real rules engine: worked example B of rules.md end to end."""

import datetime as dt
import json

from agent.offline_queue import Store
from agent.rules import MemberView, QuoteContext, QuoteRequest, lines_from_json, parse_bundle
from agent.rules import quote as compute
from tests.agent.rules.conftest import SPEC_BASKET as BASKET
from tests.agent.rules.conftest import SPEC_BUNDLE as BUNDLE

from .helpers import member_record


def test_example_b_leaves_266_points_and_counts_toward_the_day(store: Store) -> None:
    store.members.apply_changes({"from_version": 0, "to_version": 1, "removed": [],
                         "members": [member_record(points=1200, applied={"T-0001": 0})]})
    bundle = parse_bundle(json.dumps(BUNDLE).encode())
    at = dt.datetime.fromisoformat("2026-11-24T10:00:00+01:00")
    day = at.replace(hour=0)
    redeemed, used = store.members.offline_counters("m-1", day, day + dt.timedelta(days=1))
    stats = store.outbox.queue_stats()
    ctx = QuoteContext(at, offline=True, redeemed_today=redeemed, credit_used_today=used,
                       pending_count=stats.pending, oldest_pending_age_s=None)
    view = store.members.member_view("m-1")
    assert view is not None
    q = compute(bundle, QuoteRequest(lines_from_json(BASKET), token_kind="nfc",
                                     redeem_points=1000), MemberView(view), ctx)
    body = {**q.to_dict(), "member_id": "m-1", "identified_by": "nfc:04A1B2",
            "lines": BASKET, "payment": "cash"}
    body.pop("explain", None)
    store.outbox.append("sale", body, at=at, staff_id="s-1", offline=True)
    assert store.members.usable_balances("m-1")["points"] == 266
    assert store.members.usable_balances("m-1")["credit.club"] == 66
    assert store.members.offline_counters("m-1", day, day + dt.timedelta(days=1)) == (1000, 0)
