"""Redemption, credits, caps and offline limits: what is allowed, what is refused."""

from __future__ import annotations

import pytest

from agent.errors import LimitExceeded
from tests.agent.rules.conftest import SPEC_BUNDLE, member
from tests.agent.rules.helpers import bundle_with, run

RULES = SPEC_BUNDLE["rules"]
# Gold on Tuesday: net 4345; share cap floor(4345 × 5000 / 10000) = 2172.


def spec(**top):
    return bundle_with(RULES, **top)


@pytest.mark.parametrize(("kwargs", "limit"), [
    ({"redeem_points": 1201}, "balance"),
    ({"redeem_points": 99}, "min_redeem"),
    ({"redeem_points": 2173, "member": member(balances={"points": 5000})},
     "max_redeem_share_bps"),
    ({"redeem_points": 100, "member": None}, "member"),
    ({"redeem_points": 100, "member": member(status="blocked")}, "member"),
    ({"use_credit": ["credit.club"], "member": None}, "member"),
    ({"use_credit": ["credit.other"]}, "accepted"),
    ({"redeem_points": 100, "offline": True, "pending": 5000}, "max_pending"),
    ({"redeem_points": 100, "offline": True, "oldest_s": 72 * 3600 + 1}, "max_age_hours"),
    ({"redeem_points": 1002, "offline": True, "redeemed_today": 500, "credit_used_today": 499},
     "max_redeem_value_per_member_day"),
])
def test_request_over_a_limit_names_it(kwargs, limit):
    with pytest.raises(LimitExceeded) as err:
        run(spec(), **kwargs)
    assert err.value.limit == limit


def test_points_within_all_limits():
    q = run(spec(), redeem_points=100)
    assert (q.redeemed_points, q.redeemed_value, q.payable) == (100, 100, 4245)


def test_zero_points_is_no_request():
    assert run(spec(), redeem_points=0, member=None).redeemed_points == 0


def test_points_feature_off():
    b = bundle_with(RULES, points=None)
    with pytest.raises(LimitExceeded) as err:
        run(b, redeem_points=100)
    assert err.value.limit == "points"


def test_points_worth_more_than_one_unit():
    b = spec(points={"value": 5, "min_redeem": 10, "max_redeem_share_bps": 5000})
    q = run(b, redeem_points="max", member=member(balances={"points": 5000}))
    assert (q.redeemed_points, q.redeemed_value) == (434, 2170)  # 2172 // 5 = 434
    assert q.limits_held == ["max_redeem_share_bps"]


def test_no_share_cap_means_up_to_net():
    b = spec(points={"value": 1})
    q = run(b, redeem_points="max", member=member(balances={"points": 99999}))
    assert (q.redeemed_value, q.payable) == (4345, 0)
    assert q.limits_held == ["payable"]
    with pytest.raises(LimitExceeded) as err:
        run(b, redeem_points=4346, member=member(balances={"points": 99999}))
    assert err.value.limit == "payable"


def test_max_below_min_redeem_redeems_nothing():
    q = run(spec(), redeem_points="max", member=member(balances={"points": 99}))
    assert q.redeemed_points == 0 and q.limits_held == ["min_redeem"]


def test_max_without_member_or_bundle_is_zero():
    assert run(spec(), redeem_points="max", member=None).redeemed_points == 0
    q = run(None, redeem_points="max")
    assert q.redeemed_points == 0 and q.limits_held == ["bundle"]


def test_no_bundle_refuses_explicit_redemption():
    with pytest.raises(LimitExceeded) as err:
        run(None, redeem_points=100)
    assert err.value.limit == "bundle"
    with pytest.raises(LimitExceeded):
        run(spec(), when="2027-01-01T00:00:00+00:00", use_credit=["credit.club"])


def test_credits_in_the_order_asked_within_invoice_cap():
    m = member(balances={"points": 0, "credit.club": 3000, "credit.merchant:M-7": 2000})
    b = spec(credits={"accepted": ["credit.club", "credit.merchant:M-7"],
                      "use_cap_per_invoice": 4000})
    q = run(b, member=m, use_credit=["credit.merchant:M-7", "credit.club"])
    assert q.credits_used == [("credit.merchant:M-7", 2000), ("credit.club", 2000)]
    assert q.payable == 4345 - 4000
    assert q.limits_held == ["use_cap_per_invoice"]


def test_credits_limited_by_what_is_payable_after_points():
    q = run(spec(), redeem_points=1000, use_credit=["credit.club"])
    assert q.credits_used == [("credit.club", 3345)] and q.payable == 0
    assert q.limits_held == []


def test_credit_day_cap_counts_what_was_used_today():
    b = spec(credits={"accepted": ["credit.club"], "use_cap_per_day": 1000})
    q = run(b, use_credit=["credit.club"], credit_used_today=800)
    assert q.credits_used == [("credit.club", 200)] and q.limits_held == ["use_cap_per_day"]
    q = run(b, use_credit=["credit.club"], credit_used_today=1000)
    assert q.credits_used == [] and q.payable == 4345


def test_credit_balance_zero_uses_nothing():
    q = run(spec(), member=member(balances={"points": 5}), use_credit=["credit.club"])
    assert q.credits_used == [] and q.payable == 4345


def test_credits_absent_means_none_accepted():
    with pytest.raises(LimitExceeded) as err:
        run(bundle_with(RULES, credits=None), use_credit=["credit.club"])
    assert err.value.limit == "accepted"


def test_offline_day_limit_covers_points_and_credits():
    # 2000 a day; 300 redeemed and 200 of credit used already → 1500 left.
    q = run(spec(), offline=True, redeemed_today=300, credit_used_today=200,
            redeem_points=1000, use_credit=["credit.club"])
    assert q.redeemed_value == 1000 and q.credits_used == [("credit.club", 500)]
    assert q.limits_held == ["max_redeem_value_per_member_day"]


def test_offline_day_limit_with_max():
    q = run(spec(), offline=True, redeemed_today=1500, redeem_points="max")
    assert q.redeemed_points == 500 and q.limits_held == ["max_redeem_value_per_member_day"]


def test_offline_limits_do_not_apply_online():
    q = run(spec(), redeemed_today=5000, pending=99999, redeem_points=1000)
    assert q.redeemed_points == 1000 and q.limits_held == []


@pytest.mark.parametrize(("ctx", "limit"), [
    ({"pending": 5000}, "max_pending"),
    ({"oldest_s": 72 * 3600 + 0.5}, "max_age_hours"),
])
def test_offline_block_redeems_nothing_but_earning_happens(ctx, limit):
    q = run(spec(), offline=True, redeem_points="max", use_credit=["credit.club"], **ctx)
    assert (q.redeemed_points, q.credits_used, q.payable) == (0, [], 4345)
    assert q.limits_held == [limit]
    assert q.points_earned == [("base-points", 43), ("tuesday-x2", 43)]
    assert any(e.get("limit") == limit for e in q.explain)


def test_offline_below_the_block_thresholds():
    q = run(spec(), offline=True, pending=4999, oldest_s=72 * 3600, redeem_points=500)
    assert q.redeemed_points == 500


def test_offline_section_absent_means_no_offline_limit():
    q = run(bundle_with(RULES, offline=None), offline=True, pending=10**6,
            redeemed_today=10**6, redeem_points=1000)
    assert q.redeemed_points == 1000


def test_blocked_member_earns_nothing_member_only():
    q = run(spec(), member=member(status="blocked"))
    assert (q.discounts, q.points_earned, q.credits_earned) == ([], [], [])
    assert q.explain[0]["text"].startswith("member is blocked")
