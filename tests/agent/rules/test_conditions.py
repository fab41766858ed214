"""One table row per condition: does a rule apply, and if not, what does it say."""

from __future__ import annotations

from typing import Any

import pytest

from tests.agent.rules.conftest import member
from tests.agent.rules.helpers import bundle_with, entry, run

BASKET = [
    {"sku": "espresso", "category": "coffee", "qty": 2, "unit_price": 250},
    {"sku": "cake", "category": "bakery", "qty": 1, "unit_price": 4550},
]
ANON = None
TUE_10 = "2026-11-24T10:00:00+01:00"

# (name, when, member record (or None), time, request kwargs, applies, reason contains)
CASES: list[tuple[str, dict[str, Any], dict[str, Any] | None, str, dict[str, Any], bool, str]] = [
    ("no conditions, member", {}, member(), TUE_10, {}, True, ""),
    ("no conditions, anonymous", {}, ANON, TUE_10, {}, False, "rule is for members only"),
    ("anonymous rule, no member", {"anonymous": True}, ANON, TUE_10, {}, True, ""),
    ("anonymous rule, member", {"anonymous": True}, member(), TUE_10, {}, True, ""),
    ("blocked member is no member", {}, member(status="blocked"), TUE_10, {}, False,
     "member is blocked, not active"),
    ("blocked member gets anonymous rules", {"anonymous": True}, member(status="lost_card"),
     TUE_10, {}, True, ""),
    ("anonymous with tier, no member", {"anonymous": True, "tiers": ["gold"]}, ANON, TUE_10,
     {}, False, "rule needs tier gold"),
    ("tiers hold", {"tiers": ["silver", "gold"]}, member(), TUE_10, {}, True, ""),
    ("tiers fail", {"tiers": ["gold"]}, member(tier="silver"), TUE_10, {}, False,
     "member is silver; rule needs gold"),
    ("min_tier equal", {"min_tier": "silver"}, member(tier="silver"), TUE_10, {}, True, ""),
    ("min_tier higher", {"min_tier": "silver"}, member(tier="gold"), TUE_10, {}, True, ""),
    ("min_tier lower", {"min_tier": "silver"}, member(tier="bronze"), TUE_10, {}, False,
     "member is bronze; rule needs silver or higher"),
    ("min_tier unknown member tier", {"min_tier": "bronze"}, member(tier="platinum"), TUE_10,
     {}, False, "rule needs bronze or higher"),
    ("groups hold", {"groups": ["staff", "vip"]}, member(), TUE_10, {}, True, ""),
    ("groups fail", {"groups": ["staff"]}, member(), TUE_10, {}, False,
     "member is not in group staff"),
    ("weekday holds", {"weekdays": ["tue"]}, member(), TUE_10, {}, True, ""),
    ("weekday fails", {"weekdays": ["sat", "sun"]}, member(), TUE_10, {}, False,
     "today is tue; rule is for sat or sun"),
    # 23:30 UTC on Monday is already Tuesday 00:30 in Berlin.
    ("weekday is local", {"weekdays": ["tue"]}, member(), "2026-11-23T23:30:00+00:00", {},
     True, ""),
    ("hours start included", {"hours": [["10:00", "12:00"]]}, member(), TUE_10, {}, True, ""),
    ("hours end excluded", {"hours": [["08:00", "10:00"]]}, member(), TUE_10, {}, False,
     "local time is 10:00; rule is for 08:00-10:00"),
    ("hours second range", {"hours": [["07:00", "08:00"], ["09:59", "10:01"]]}, member(),
     TUE_10, {}, True, ""),
    ("hours wrap, late", {"hours": [["22:00", "02:00"]]}, member(),
     "2026-11-24T23:15:00+01:00", {}, True, ""),
    ("hours wrap, early", {"hours": [["22:00", "02:00"]]}, member(),
     "2026-11-25T01:59:00+01:00", {}, True, ""),
    ("hours wrap, end excluded", {"hours": [["22:00", "02:00"]]}, member(),
     "2026-11-25T02:00:00+01:00", {}, False, "local time is 02:00"),
    ("hours wrap, midday", {"hours": [["22:00", "02:00"]]}, member(), TUE_10, {}, False,
     "rule is for 22:00-02:00"),
    ("hours equal ends is all day", {"hours": [["06:00", "06:00"]]}, member(), TUE_10, {},
     True, ""),
    ("hours to 24:00", {"hours": [["09:00", "24:00"]]}, member(),
     "2026-11-24T23:59:59+01:00", {}, True, ""),
    # DST: 2026-03-29 01:30 UTC is 03:30 CEST (summer time), not 02:30.
    ("hours after spring forward", {"hours": [["03:00", "04:00"]]}, member(),
     "2026-03-29T01:30:00+00:00", {}, True, ""),
    ("hours before spring forward", {"hours": [["01:00", "02:00"]]}, member(),
     "2026-03-29T00:30:00+00:00", {}, True, ""),
    # 2026-10-25 00:30 UTC is 02:30 CEST; 01:30 UTC is 02:30 CET (the hour repeats).
    ("hours in the repeated hour (1st)", {"hours": [["02:00", "03:00"]]}, member(),
     "2026-10-25T00:30:00+00:00", {}, True, ""),
    ("hours in the repeated hour (2nd)", {"hours": [["02:00", "03:00"]]}, member(),
     "2026-10-25T01:30:00+00:00", {}, True, ""),
    ("hours after fall back", {"hours": [["02:00", "03:00"]]}, member(),
     "2026-10-25T02:30:00+00:00", {}, False, "local time is 03:30"),
    ("dates inside", {"dates": [["2026-11-01", "2026-11-30"]]}, member(), TUE_10, {}, True, ""),
    ("dates both ends included", {"dates": [["2026-11-24", "2026-11-24"]]}, member(), TUE_10,
     {}, True, ""),
    ("dates outside", {"dates": [["2026-12-01", "2026-12-24"]]}, member(), TUE_10, {}, False,
     "today is 2026-11-24; rule runs 2026-12-01 to 2026-12-24"),
    # Protocol v1 writes one range as a bare pair; 1.1 accepts it as a list of one pair.
    ("dates, a v1 single pair, inside", {"dates": ["2026-11-01", "2026-11-30"]}, member(),
     TUE_10, {}, True, ""),
    ("dates, a v1 single pair, outside", {"dates": ["2026-12-01", "2026-12-24"]}, member(),
     TUE_10, {}, False, "today is 2026-11-24; rule runs 2026-12-01 to 2026-12-24"),
    ("hours, a v1 single pair", {"hours": ["09:00", "11:00"]}, member(), TUE_10, {}, True, ""),
    ("dates local day", {"dates": [["2026-11-25", "2026-11-25"]]}, member(),
     "2026-11-24T23:30:00+00:00", {}, True, ""),
    ("dates long range", {"dates": [["2000-01-01", "2099-12-31"]]}, member(), TUE_10, {},
     True, ""),
    ("birthday day", {"birthday": "day"}, member(birthday="1990-11-24"), TUE_10, {}, True, ""),
    ("birthday day, other day", {"birthday": "day"}, member(birthday="1990-11-23"), TUE_10,
     {}, False, "today is not the member's birthday"),
    ("birthday month", {"birthday": "month"}, member(birthday="1990-11-02"), TUE_10, {}, True,
     ""),
    ("birthday month, other month", {"birthday": "month"}, member(), TUE_10, {}, False,
     "not the member's birthday month"),
    ("29 Feb on 28 Feb, common year", {"birthday": "day"}, member(birthday="2000-02-29"),
     "2027-02-28T12:00:00+01:00", {}, True, ""),
    ("29 Feb not on 28 Feb, leap year", {"birthday": "day"}, member(birthday="2000-02-29"),
     "2028-02-28T12:00:00+01:00", {}, False, "not the member's birthday"),
    ("29 Feb on 29 Feb, leap year", {"birthday": "day"}, member(birthday="2000-02-29"),
     "2028-02-29T12:00:00+01:00", {}, True, ""),
    ("28 Feb birthday not on 1 Mar", {"birthday": "day"}, member(birthday="2001-02-28"),
     "2027-03-01T12:00:00+01:00", {}, False, "not the member's birthday"),
    ("birthday unknown", {"birthday": "month"}, member(birthday=None), TUE_10, {}, False,
     "birthday is not known"),
    ("min_gross met", {"min_gross": 5050}, member(), TUE_10, {}, True, ""),
    ("min_gross not met", {"min_gross": 5051}, member(), TUE_10, {}, False,
     "basket is 50.50; rule needs at least 50.51"),
    ("skus match", {"skus": ["cake", "tea"]}, member(), TUE_10, {}, True, ""),
    ("skus no match", {"skus": ["tea"]}, member(), TUE_10, {}, False,
     "no basket line is product tea"),
    ("categories match", {"categories": ["bakery"]}, member(), TUE_10, {}, True, ""),
    ("categories no match", {"categories": ["tea"]}, member(), TUE_10, {}, False,
     "no basket line is category tea"),
    ("skus and categories on one line", {"skus": ["cake"], "categories": ["bakery"]},
     member(), TUE_10, {}, True, ""),
    ("skus and categories on different lines", {"skus": ["cake"], "categories": ["coffee"]},
     member(), TUE_10, {}, False, "no basket line is product cake in category coffee"),
    ("identified_by holds", {"identified_by": ["nfc", "tel"]}, member(), TUE_10,
     {"token_kind": "nfc"}, True, ""),
    ("identified_by fails", {"identified_by": ["pan"]}, member(), TUE_10,
     {"token_kind": "nfc"}, False, "customer is identified by nfc; rule needs pan"),
    ("identified_by, no token", {"identified_by": ["pan"]}, member(), TUE_10, {}, False,
     "not identified by a card"),
    ("bins hold", {"bins": ["411111"]}, member(), TUE_10, {"bin6": "411111"}, True, ""),
    ("bins hold anonymously", {"bins": ["411111"], "anonymous": True}, ANON, TUE_10,
     {"bin6": "411111"}, True, ""),
    ("bins fail", {"bins": ["411111"]}, member(), TUE_10, {"bin6": "522222"}, False,
     "bank card 522222 is not one of the rule's banks"),
    ("bins, no card", {"bins": ["411111"]}, member(), TUE_10, {}, False,
     "no bank card was read"),
    ("min_purchase_count met", {"min_purchase_count": 37}, member(), TUE_10, {}, True, ""),
    ("min_purchase_count not met", {"min_purchase_count": 38}, member(), TUE_10, {}, False,
     "member has 37 purchases; rule needs 38"),
    ("min_spend_30d met", {"min_spend_30d": 1250000}, member(), TUE_10, {}, True, ""),
    ("min_spend_30d not met", {"min_spend_30d": 1250001}, member(), TUE_10, {}, False,
     "member spent 12500.00 in 30 days; rule needs 12500.01"),
    ("win-back met", {"min_days_since_last_purchase": 4}, member(), TUE_10, {}, True, ""),
    ("win-back not met", {"min_days_since_last_purchase": 5}, member(), TUE_10, {}, False,
     "member last bought 4 days ago; rule needs 5 days or more"),
    ("win-back, local day", {"min_days_since_last_purchase": 5}, member(),
     "2026-11-24T23:30:00+00:00", {}, True, ""),
    ("win-back, no purchase", {"min_days_since_last_purchase": 1},
     member(stats={"purchase_count": 0}), TUE_10, {}, False, "no last purchase on record"),
    # #22.3: a statistic the record lacks counts as 0, and 0 ≥ 0.
    ("min_purchase_count 0, no stats", {"min_purchase_count": 0}, member(stats={}), TUE_10,
     {}, True, ""),
    ("min_purchase_count 0, no stats key", {"min_purchase_count": 0},
     {k: v for k, v in member().items() if k != "stats"}, TUE_10, {}, True, ""),
    ("min_purchase_count 0, null count", {"min_purchase_count": 0},
     member(stats={"purchase_count": None}), TUE_10, {}, True, ""),
    ("min_purchase_count 0, zero", {"min_purchase_count": 0},
     member(stats={"purchase_count": 0}), TUE_10, {}, True, ""),
    ("min_purchase_count 1, no stats", {"min_purchase_count": 1}, member(stats={}), TUE_10,
     {}, False, "member has 0 purchases; rule needs 1"),
    ("min_spend_30d 0, no stats", {"min_spend_30d": 0}, member(stats={}), TUE_10, {}, True,
     ""),
    ("min_spend_30d 0, spend not a number", {"min_spend_30d": 0},
     member(stats={"spend_30d": "lots"}), TUE_10, {}, True, ""),
    ("min_spend_30d 1, no stats", {"min_spend_30d": 1}, member(stats={}), TUE_10, {}, False,
     "member spent 0.00 in 30 days; rule needs 0.01"),
    ("win-back 0, no purchase", {"min_days_since_last_purchase": 0}, member(stats={}),
     TUE_10, {}, True, ""),
    ("win-back 0, bought today", {"min_days_since_last_purchase": 0},
     member(stats={"last_purchase": "2026-11-24"}), TUE_10, {}, True, ""),
    ("thresholds 0 together, no stats", {"min_purchase_count": 0, "min_spend_30d": 0,
                                         "min_days_since_last_purchase": 0},
     member(stats={}), TUE_10, {}, True, ""),
    ("thresholds 0 still need a member", {"min_purchase_count": 0}, ANON, TUE_10, {}, False,
     "rule is for members only"),
    ("unknown condition key", {"tiers": ["gold"], "moon_phase": "full"}, member(), TUE_10, {},
     False, "condition this terminal does not know: 'moon_phase'"),
    ("all conditions must hold", {"tiers": ["gold"], "weekdays": ["wed"]}, member(), TUE_10,
     {}, False, "today is tue"),
]


@pytest.mark.parametrize("use_index", [True, False], ids=["indexed", "full-scan"])
@pytest.mark.parametrize(("name", "when", "record", "time", "req", "applies", "reason"),
                         CASES, ids=[c[0] for c in CASES])
def test_condition(name, when, record, time, req, applies, reason, use_index):
    bundle = bundle_with([{"id": "r", "kind": "discount", "when": when,
                           "then": {"amount": 100}}], expires_at="2030-01-01T00:00:00Z")
    q = run(bundle, member=record, when=time, basket=BASKET, use_index=use_index, **req)
    assert (q.discounts == [("r", 100)]) is applies
    e = entry(q, "r")
    if applies:
        assert e is not None and e["applied"]
    elif e is not None:
        assert not e["applied"]
        assert reason in e["reason"]
    else:
        # Only the index may leave a rule out, and only one that does not apply.
        assert use_index
    if not use_index:
        assert e is not None


def test_unknown_kind_is_listed_and_never_applied():
    bundle = bundle_with([{"id": "s", "kind": "stamp", "when": {}, "then": {"n": 1}},
                          {"id": "r", "kind": "discount", "when": {}, "then": {"amount": 1}}])
    q = run(bundle)
    e = entry(q, "s")
    assert e is not None and not e["applied"] and "'stamp' is unknown" in e["reason"]
    assert q.discounts == [("r", 1)]


def test_unknown_effect_key_is_never_applied():
    bundle = bundle_with([{"id": "r", "kind": "discount", "when": {},
                           "then": {"amount": 100, "per_item": True}}])
    q = run(bundle)
    assert q.discounts == []
    e = entry(q, "r")
    assert e is not None and "'per_item'" in e["reason"]
