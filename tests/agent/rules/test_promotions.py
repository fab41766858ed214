"""Issue 21's worked examples (docs/rules.md, "Promotions"), to the minor unit."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from agent.errors import LimitExceeded, RulesError
from agent.rules import MemberView, QuoteContext, QuoteRequest, lines_from_json, parse_bundle
from agent.rules import quote as rules_quote
from tests.agent.rules.conftest import member, spec_bundle

TUE_10 = "2026-11-24T10:00:00+01:00"
BASKET = [{"sku": "espresso", "category": "coffee", "qty": 2, "unit_price": 250},
          {"sku": "cake", "category": "bakery", "qty": 1, "unit_price": 4550}]
FOUR_CUPS = [{"sku": "espresso", "category": "coffee", "qty": 4, "unit_price": 250},
             {"sku": "cake", "category": "bakery", "qty": 1, "unit_price": 4550}]
MIXED = [{"sku": "espresso", "category": "coffee", "qty": 3, "unit_price": 250},
         {"sku": "latte", "category": "coffee", "qty": 2, "unit_price": 400},
         {"sku": "cake", "category": "bakery", "qty": 1, "unit_price": 4550}]
GOLD10 = {"id": "gold10", "kind": "discount", "priority": 100, "when": {"tiers": ["gold"]},
          "then": {"percent_bps": 1000}}
COFFEE2 = {"id": "coffee-2", "kind": "discount", "priority": 50,
           "when": {"categories": ["coffee"]}, "then": {"amount": 200}}
BASE = {"id": "base-points", "kind": "points", "priority": 10, "when": {},
        "then": {"per_spend": 100, "points": 1}}


def bundle(rules: list[dict[str, Any]], **top: Any) -> Any:
    return parse_bundle(json.dumps(spec_bundle(rules=rules, **top)))


def quote(b: Any, basket: Any = BASKET, record: dict[str, Any] | None = None, *,
          at: str = TUE_10, use_index: bool = True, request: dict[str, Any] | None = None,
          **ctx: Any) -> Any:
    rec = member() if record is None else record
    view = MemberView(rec) if rec else None
    return rules_quote(b, QuoteRequest(lines_from_json(basket), **(request or {})), view,
                       QuoteContext(dt.datetime.fromisoformat(at), **ctx),
                       use_index=use_index)


def explained(q: Any, rule_id: str) -> dict[str, Any]:
    return next(e for e in q.explain if e.get("rule") == rule_id)


# ---------------------------------------------------------------- per unit, per item


def test_p1_per_unit_discount_and_points_multiply_by_quantity():
    b = bundle([
        {"id": "esp-50", "kind": "discount", "when": {"skus": ["espresso"]},
         "then": {"amount": 50, "per_unit": True}},
        {"id": "cup-10", "kind": "points", "when": {"categories": ["coffee"]},
         "then": {"per_unit": 10}},
        {"id": "visit-5", "kind": "points", "when": {}, "then": {"per_visit": 5}}, BASE])
    q = quote(b, FOUR_CUPS)
    # 0.50 off each of four espressos is 2.00, not 0.50; 10 points per cup is 40.
    assert q.discounts == [("esp-50", 200)]
    assert (q.gross, q.net, q.payable) == (5550, 5350, 5350)
    assert q.points_earned == [("base-points", 53), ("cup-10", 40), ("visit-5", 5)]
    assert q.line_nets == [800, 4550]
    # Redeeming lowers the spend base, not the points per cup or per visit.
    r = quote(b, FOUR_CUPS, request={"redeem_points": "max"})
    assert (r.redeemed_points, r.payable) == (1200, 4150)
    assert r.points_earned == [("base-points", 41), ("cup-10", 40), ("visit-5", 5)]


def test_p2_buy_two_get_one_and_cheapest_unit():
    b = bundle([
        {"id": "coffee-3for2", "kind": "discount", "priority": 20,
         "when": {"categories": ["coffee"]}, "then": {"buy": 2, "get": 1}},
        {"id": "cheapest-half", "kind": "discount", "priority": 10, "when": {},
         "then": {"cheapest": 1, "percent_bps": 5000}}])
    q = quote(b, MIXED)
    # 5 coffee units: floor(5 / 3) × 1 = 1 free, the cheapest (an espresso, 2.50).
    # Then half off the cheapest unit of the basket: an espresso, now worth
    # 5.00 / 3 each: floor(500 × 1 × 5000 / (3 × 10000)) = 83.
    assert q.discounts == [("coffee-3for2", 250), ("cheapest-half", 83)]
    assert q.line_nets == [750 - 250 - 83, 800, 4550]
    assert q.net == 5767


def test_p2_free_product_is_one_unit_of_it_free():
    b = bundle([{"id": "free-cake", "kind": "discount",
                 "when": {"skus": ["cake"], "birthday": "month"}, "then": {"cheapest": 1}}])
    q = quote(b, BASKET, member(birthday="1990-11-03"))
    assert q.discounts == [("free-cake", 4550)] and q.net == 500


def test_p2_buy_get_needs_enough_units():
    b = bundle([{"id": "b2g1", "kind": "discount", "when": {"skus": ["espresso"]},
                 "then": {"buy": 2, "get": 1}}])
    q = quote(b)  # two espressos: no third one to give
    e = explained(q, "b2g1")
    assert e["applied"] and e["amount"] == 0 and q.discounts == []


# ---------------------------------------------------------------- credit, every Nth, first


def test_p3_fixed_credit_every_fifth_purchase_and_welcome_points():
    b = bundle([
        {"id": "fifth-5", "kind": "credit", "when": {"purchase_count_every": 5},
         "then": {"amount": 500, "kind": "credit.club", "expires_days": 30}},
        {"id": "welcome", "kind": "points", "when": {"first_purchase": True},
         "then": {"per_visit": 100}}])
    q = quote(b, FOUR_CUPS, member(stats={"purchase_count": 39}))
    assert q.credits_earned == [("fifth-5", "credit.club", 500, "2026-12-24")]
    assert q.points_earned == []
    assert explained(q, "welcome")["why"] == "first_purchase"
    q = quote(b, FOUR_CUPS, member(stats={"purchase_count": 38}))
    assert q.credits_earned == []
    assert explained(q, "fifth-5")["reason"] == \
        "this is the member's purchase 39; rule is for every 5th"
    # A member with no statistics counts 0 purchases: this is the first.
    q = quote(b, FOUR_CUPS, member(stats={}))
    assert q.points_earned == [("welcome", 100)]
    # ... unless this terminal already sold to them (its pending events count).
    q = quote(b, FOUR_CUPS, member(stats={}), pending_purchases=1)
    assert q.points_earned == []
    # The fifth purchase with four at this terminal not yet in the record.
    q = quote(b, FOUR_CUPS, member(stats={"purchase_count": 0}), pending_purchases=4)
    assert q.credits_earned == [("fifth-5", "credit.club", 500, "2026-12-24")]


def test_p3_credit_amount_was_rejected_before():
    # "'then.percent_bps' is required" used to reject the whole bundle.
    b = bundle([{"id": "c", "kind": "credit", "when": {},
                 "then": {"amount": 300, "kind": "credit.club"}}])
    assert quote(b).credits_earned == [("c", "credit.club", 300, None)]
    with pytest.raises(RulesError, match="exactly one of 'percent_bps' and 'amount'"):
        bundle([{"id": "c", "kind": "credit", "when": {},
                 "then": {"amount": 300, "percent_bps": 100, "kind": "credit.club"}}])


# ---------------------------------------------------------------- fee and referral


FEE_REF = [
    GOLD10, COFFEE2,
    {"id": "club-fee", "kind": "fee", "when": {"anonymous": True},
     "then": {"percent_bps": 150, "amount": 10}},
    {"id": "ref-5", "kind": "referral", "when": {},
     "then": {"percent_bps": 500, "kind": "credit.club", "max_amount": 1000}},
    {"id": "ref-signup", "kind": "referral", "when": {"first_purchase": True},
     "then": {"amount": 1000, "kind": "points"}},
]


def test_p4_fee_and_referrer_share():
    b = bundle(FEE_REF)
    q = quote(b, BASKET, member(referred_by="m-77"))
    assert q.net == 4345
    # fee: 10 + floor(4345 × 150 / 10000) = 10 + 65; referrer: floor(4345 × 500 / 10000).
    assert q.to_dict()["fees"] == [{"rule": "club-fee", "amount": 75}]
    assert q.to_dict()["referral_rewards"] == [
        {"rule": "ref-5", "member_id": "m-77", "kind": "credit.club", "amount": 217,
         "expires": None}]
    assert q.payable == 4345  # a fee is owed by the merchant, not paid by the customer
    # The share follows what the member pays: redeeming 1000 points, base 3345 → 167.
    r = quote(b, BASKET, member(referred_by="m-77"), request={"redeem_points": 1000})
    assert r.referral_rewards == [("ref-5", "m-77", "credit.club", 167, None)]
    assert r.fees == [("club-fee", 75)]
    # The referrer's sign-up bonus comes with the new member's first purchase.
    s = quote(b, BASKET, member(referred_by="m-77", stats={"purchase_count": 0}))
    assert s.referral_rewards[-1] == ("ref-signup", "m-77", "points", 1000, None)
    # Not referred: no referral row, and the explanation says why.
    n = quote(b, BASKET)
    assert n.referral_rewards == [] and explained(n, "ref-5")["why"] == "referred"
    # Walk-in: the fee still applies (anonymous), on 50.50: 10 + 75.
    w = quote(b, BASKET, record={})
    assert w.fees == [("club-fee", 85)]


# ---------------------------------------------------------------- segments


@pytest.mark.parametrize(("when", "rec", "applies", "why"), [
    ({"min_points": 1000}, member(), True, ""),
    ({"min_points": 1201}, member(), False, "min_points"),
    # Expired lots do not count toward the balance.
    ({"min_points": 1000}, member(balance_lots={"points": [
        {"amount": 300, "expires": "2026-11-23"}]}), False, "min_points"),
    ({"min_spend_days": {"days": 90, "amount": 50000}},
     member(stats={"spend_90d": 50000}), True, ""),
    ({"min_spend_days": {"days": 90, "amount": 50000}},
     member(stats={"spend_30d": 99999}), False, "min_spend_days"),
    # A missing statistic counts as 0, so a 0 threshold holds (0 ≥ 0).
    ({"min_spend_days": {"days": 365, "amount": 0}}, member(stats={}), True, ""),
    ({"bought_within_days": 7}, member(), True, ""),  # last purchase 2026-11-20
    ({"bought_within_days": 3}, member(), False, "bought_within_days"),
    ({"referred": True}, member(referred_by="m-9"), True, ""),
    ({"referred": False}, member(referred_by="m-9"), False, "referred"),
])
def test_p5_segments(when, rec, applies, why):
    b = bundle([{"id": "seg", "kind": "discount", "when": when, "then": {"amount": 100}}])
    e = explained(quote(b, BASKET, rec, use_index=False), "seg")
    assert e["applied"] is applies
    # #17: every explanation row carries a code; an applied rule's is "applied".
    assert e["why"] == (why or "applied")


def test_p5_point_value_per_tier():
    top = spec_bundle(rules=[])
    top["points"]["value_by_tier"] = {"gold": 2}
    b = parse_bundle(json.dumps(top))
    q = quote(b, BASKET, request={"redeem_points": 1000})
    assert (q.redeemed_points, q.redeemed_value, q.payable) == (1000, 2000, 3050)
    s = quote(b, BASKET, member(tier="silver"), request={"redeem_points": 1000})
    assert s.redeemed_value == 1000
    # "max": the share cap floor(5050 × 5000 / 10000) = 2525 at 2 per point → 1200 (balance)
    assert quote(b, BASKET, request={"redeem_points": "max"}).redeemed_value == 2400


# ---------------------------------------------------------------- limits and budgets


LIMITED = [
    {"id": "bday-coffee", "kind": "discount",
     "when": {"birthday": "day", "skus": ["espresso"],
              "max_per_member": {"count": 1, "period": "year"}},
     "then": {"cheapest": 1}},
    {"id": "welcome-10", "kind": "discount", "when": {"once_per_member": True},
     "then": {"percent_bps": 1000}},
    {"id": "happy", "kind": "discount",
     "when": {"anonymous": True, "max_per_store": {"count": 2, "period": "day"},
              "budget": 500},
     "then": {"amount": 300}},
]
BIRTHDAY = "2026-03-21T10:00:00+01:00"


def test_p6_once_per_member_per_year_per_store_and_budget():
    b = bundle(LIMITED)
    q = quote(b, BASKET, at=BIRTHDAY)
    # Same priority, so by id: bday-coffee: one espresso free (250); happy: 300
    # (budget 500 not yet used); welcome-10: 10 % of 5050 − 550 = 450.
    assert q.discounts == [("bday-coffee", 250), ("happy", 300), ("welcome-10", 450)]
    assert q.to_dict()["uses"] == [{"rule": "bday-coffee", "amount": 250},
                                   {"rule": "happy", "amount": 300},
                                   {"rule": "welcome-10", "amount": 450}]
    # A second sale the same day at this terminal: the store passes the uses it holds.
    again = quote(b, BASKET, at=BIRTHDAY,
                  member_uses={"bday-coffee": ["2026-03-21"], "welcome-10": ["2026-03-21"]},
                  store_uses={"happy": ["2026-03-21"]}, budget_used={"happy": 300})
    # happy: only 200 of its budget left.
    assert again.discounts == [("happy", 200)]
    assert explained(again, "bday-coffee")["why"] == "max_per_member"
    assert explained(again, "welcome-10")["reason"] == \
        "member has used this rule 1 times; at most 1 in all"
    # The club's record of uses counts the same way (another terminal's sale).
    rec = member(rule_uses={"bday-coffee": ["2026-03-21"]})
    assert ("bday-coffee", 250) not in quote(b, BASKET, rec, at=BIRTHDAY).discounts
    # Last year's birthday use does not count this year.
    rec = member(rule_uses={"bday-coffee": ["2025-03-21"]})
    assert ("bday-coffee", 250) in quote(b, BASKET, rec, at=BIRTHDAY).discounts
    # Per store and per day: two uses today stop it; yesterday's do not.
    full = quote(b, BASKET, at=BIRTHDAY, store_uses={"happy": ["2026-03-21"] * 2})
    assert explained(full, "happy")["why"] == "max_per_store"
    other_day = quote(b, BASKET, at=BIRTHDAY, store_uses={"happy": ["2026-03-20"] * 2})
    assert ("happy", 300) in other_day.discounts
    spent = quote(b, BASKET, at=BIRTHDAY, budget_used={"happy": 500})
    assert explained(spent, "happy")["why"] == "budget"


@pytest.mark.parametrize(("period", "used", "holds"), [
    ("day", "2026-11-24", False), ("day", "2026-11-23", True),
    ("week", "2026-11-23", False), ("week", "2026-11-22", True),  # ISO week from Monday
    ("month", "2026-11-01", False), ("month", "2026-10-31", True),
    ("year", "2026-01-01", False), ("year", "2025-12-31", True),
    ("ever", "2001-01-01", False),
])
def test_p6_periods(period, used, holds):
    b = bundle([{"id": "lim", "kind": "discount",
                 "when": {"max_per_member": {"count": 1, "period": period}},
                 "then": {"amount": 100}}])
    assert explained(quote(b, member_uses={"lim": [used]}), "lim")["applied"] is holds


def test_p6_a_use_is_counted_only_when_the_rule_gave_something():
    b = bundle([{"id": "lim", "kind": "discount", "when": {"once_per_member": True,
                                                            "skus": ["espresso"]},
                 "then": {"buy": 2, "get": 1}}])
    q = quote(b)  # only two espressos: nothing given
    assert q.uses == [] and explained(q, "lim")["applied"]


# ---------------------------------------------------------------- codes and coupons


CODES = [
    {"id": "summer10", "kind": "discount", "when": {"anonymous": True, "codes": ["SUMMER10"]},
     "then": {"percent_bps": 1000}},
    {"id": "vip-once", "kind": "discount",
     "when": {"codes": ["VIP-7F3A", "VIP-91C2"], "single_use": True},
     "then": {"amount": 500}},
    {"id": "next-order", "kind": "coupon", "when": {"min_gross": 5000},
     "then": {"for_rule": "next10", "prefix": "NX-", "expires_days": 30}},
    {"id": "next10", "kind": "discount", "when": {"coupon": True},
     "then": {"percent_bps": 1000}},
]


def test_p7_promo_codes_single_and_multi_use():
    b = bundle(CODES)
    q = quote(b, BASKET, record={}, request={"codes": [" summer10 "]})
    assert q.discounts == [("summer10", 505)]
    assert q.to_dict()["codes_used"] == [{"rule": "summer10", "code": "SUMMER10",
                                          "single_use": False}]
    assert explained(quote(b, BASKET, record={}, use_index=False), "summer10")["why"] == \
        "codes"
    v = quote(b, BASKET, request={"codes": ["vip-7f3a"]})
    assert ("vip-once", 500) in v.discounts
    assert ("vip-once", "VIP-7F3A", True) in v.codes_used
    # Used: known from this terminal's events or the club's member record.
    used = quote(b, BASKET, request={"codes": ["VIP-7F3A"]},
                 used_codes=frozenset({"VIP-7F3A"}))
    assert explained(used, "vip-once")["reason"] == "code VIP-7F3A was already used"
    rec_used = quote(b, BASKET, member(used_codes=["vip-7f3a"]),
                     request={"codes": ["VIP-7F3A"]})
    assert explained(rec_used, "vip-once")["why"] == "codes"
    # Offline: refused unless the bundle accepts the risk (docs: the risk rule).
    off = quote(b, BASKET, request={"codes": ["VIP-91C2"]}, offline=True)
    assert "offline: single-use code VIP-91C2" in explained(off, "vip-once")["reason"]
    top = spec_bundle(rules=CODES)
    top["offline"]["accept_single_use_codes"] = True
    risky = quote(parse_bundle(json.dumps(top)), BASKET, request={"codes": ["VIP-91C2"]},
                  offline=True)
    assert ("vip-once", 500) in risky.discounts


def test_p7_next_order_coupon_issued_then_taken_once():
    b = bundle(CODES)
    q = quote(b, BASKET, coupon_seed="q-1")
    (rule, code, for_rule, expires), = q.coupons_issued
    assert (rule, for_rule, expires) == ("next-order", "next10", "2026-12-24")
    assert code.startswith("NX-") and len(code) == 13
    assert quote(b, BASKET, coupon_seed="q-1").coupons_issued[0][1] == code  # pure
    assert quote(b, BASKET, coupon_seed="q-2").coupons_issued[0][1] != code
    # Without a seed (rules quote without --coupon-seed), nothing is issued.
    assert quote(b, BASKET).coupons_issued == []
    # Next visit: the coupon is on the member record (the club) or in this
    # terminal's own events (ctx.coupons).
    coupon = {"code": code, "rule": "next10", "expires": expires, "member_id": "m-123"}
    nxt = quote(b, BASKET, member(coupons=[coupon]), at="2026-12-01T10:00:00+01:00",
                request={"codes": [code.lower()]})
    assert ("next10", 505) in nxt.discounts and ("next10", code, True) in nxt.codes_used
    here = quote(b, BASKET, coupons=[coupon], request={"codes": [code]},
                 at="2026-12-01T10:00:00+01:00")
    assert ("next10", 505) in here.discounts
    spent = quote(b, BASKET, member(coupons=[coupon]), request={"codes": [code]},
                  used_codes=frozenset({code}), at="2026-12-01T10:00:00+01:00")
    assert explained(spent, "next10")["reason"] == f"code {code} was already used"
    top = spec_bundle(rules=CODES, expires_at="2027-06-01T00:00:00Z")
    late = quote(parse_bundle(json.dumps(top)), BASKET, member(coupons=[coupon]),
                 request={"codes": [code]}, at="2026-12-25T10:00:00+01:00")
    assert explained(late, "next10")["reason"] == f"coupon {code} expired on 2026-12-24"
    other = quote(b, BASKET, member(member_id="m-9"), coupons=[coupon],
                  request={"codes": [code]}, at="2026-12-01T10:00:00+01:00")
    assert explained(other, "next10")["why"] == "coupon"


# ---------------------------------------------------------------- rewards for points


REWARDS = [
    {"id": "free-coffee", "kind": "reward", "when": {"categories": ["coffee"]},
     "then": {"cost_points": 300, "name": "A free coffee"}},
    {"id": "free-cake", "kind": "reward", "when": {"skus": ["cake"]},
     "then": {"cost_points": 2000, "name": "A free cake"}},
]


def test_p8_reward_catalogue():
    b = bundle([GOLD10, *REWARDS])
    q = quote(b)
    coffee, cake = explained(q, "free-coffee"), explained(q, "free-cake")
    assert (coffee["why"], coffee["available"], coffee["cost_points"]) == \
        ("not_requested", True, 300)
    assert cake["available"] is False  # 1200 points < 2000
    t = quote(b, request={"rewards": ["free-coffee"], "redeem_points": "max"})
    # gold10 takes 25 off each espresso; the reward then takes the cheaper espresso's
    # 225 left; 300 points for it; "max" redeems from the 900 points left.
    assert t.discounts == [("gold10", 505), ("free-coffee", 225)]
    assert t.rewards == [("free-coffee", 300)]
    assert (t.net, t.redeemed_points, t.payable) == (4320, 900, 3420)
    with pytest.raises(LimitExceeded) as exc:
        quote(b, request={"rewards": ["free-cake"]})
    assert exc.value.limit == "balance"
    with pytest.raises(RulesError, match="not a reward"):
        quote(b, request={"rewards": ["gold10"]})


# ---------------------------------------------------------------- expiry


def test_p9_expired_lots_are_not_spent():
    lots = {"points": [{"amount": 500, "expires": "2026-11-23"},
                       {"amount": 300, "expires": "2026-12-31"}],
            "credit.club": [{"amount": 49000, "expires": "2026-11-01"}]}
    rec = member(balance_lots=lots)
    b = bundle([])
    q = quote(b, BASKET, rec, request={"redeem_points": "max", "use_credit": ["credit.club"]})
    # points: 1200 − 500 expired = 700; credit.club: 50000 − 49000 = 1000.
    assert q.redeemed_points == 700
    assert q.credits_used == [("credit.club", 1000)]
    notes = [e for e in q.explain if e.get("step") == "expiry"]
    assert [(n["balance_kind"], n["amount"], n["expires"], n["expired"]) for n in notes] == [
        ("credit.club", 49000, "2026-11-01", True), ("points", 500, "2026-11-23", True),
        ("points", 300, "2026-12-31", False)]
    with pytest.raises(LimitExceeded) as exc:
        quote(b, BASKET, rec, request={"redeem_points": 1000})
    assert exc.value.limit == "balance"
    # The last valid day is still valid.
    assert quote(b, BASKET, rec, at="2026-11-23T23:59:00+01:00",
                 request={"redeem_points": "max"}).redeemed_points == 1200


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(("rule", "message"), [
    ({"id": "x", "kind": "discount", "when": {"single_use": True}, "then": {"amount": 1}},
     "'single_use' needs 'codes'"),
    ({"id": "x", "kind": "discount", "when": {"max_per_member": {"count": 1,
                                                                  "period": "fortnight"}},
      "then": {"amount": 1}}, "'max_per_member' must be"),
    ({"id": "x", "kind": "discount", "when": {"min_spend_days": 90}, "then": {"amount": 1}},
     "'min_spend_days' must be an object"),
    ({"id": "x", "kind": "discount", "when": {}, "then": {"percent_bps": 10, "per_unit": True}},
     "'then.per_unit' needs 'amount'"),
    ({"id": "x", "kind": "points", "when": {}, "then": {"per_visit": 5, "points": 1}},
     "'then.points' goes with 'per_spend'"),
    ({"id": "x", "kind": "coupon", "when": {}, "then": {"for_rule": "nope"}},
     "names rule 'nope'"),
    ({"id": "x", "kind": "fee", "when": {}, "then": {}}, "'percent_bps', 'amount' or both"),
    ({"id": "x", "kind": "discount", "when": {"purchase_count_every": 0},
      "then": {"amount": 1}}, "must be at least 1"),
])
def test_bad_new_keys_reject_the_bundle(rule, message):
    with pytest.raises(RulesError, match=message):
        bundle([rule])


def test_version_1_sales_keep_their_shape():
    # No issue-21 key appears in a sale that has none of its rows.
    q = quote(bundle([GOLD10, COFFEE2, BASE]))
    assert set(q.to_dict()) == {"gross", "discounts", "net", "redeemed_points",
                                "redeemed_value", "credits_used", "payable", "points_earned",
                                "credits_earned", "lottery_entries", "rules_version",
                                "explain"}
