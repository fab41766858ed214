"""rules.md's worked examples A, B and C, to the minor unit."""

from __future__ import annotations

import json

from agent.rules import parse_bundle
from tests.agent.rules.conftest import SPEC_BUNDLE, member
from tests.agent.rules.helpers import entry, run


def sale(q):  # the numbers only
    d = q.to_dict()
    d.pop("explain")
    return d


def test_example_a_gold_tuesday_nothing_redeemed():
    b = parse_bundle(json.dumps(SPEC_BUNDLE).encode())
    q = run(b, when="2026-11-24T10:00:00+01:00")
    assert sale(q) == {
        "gross": 5050,
        "discounts": [{"rule": "gold10", "amount": 505}, {"rule": "coffee-2", "amount": 200}],
        "net": 4345, "redeemed_points": 0, "redeemed_value": 0, "credits_used": [],
        "payable": 4345,
        "points_earned": [{"rule": "base-points", "points": 43},
                          {"rule": "tuesday-x2", "points": 43}],
        "credits_earned": [{"rule": "cashback", "kind": "credit.club", "amount": 86,
                            "expires": "2027-02-22"}],
        "lottery_entries": 0, "rules_version": 42,
    }
    # gold10 split 50 (espresso) + 455 (cake); coffee-2 then takes 200 off espresso.
    assert q.line_nets == [500 - 50 - 200, 4550 - 455]


def test_example_b_redeeming_1000_points():
    b = parse_bundle(json.dumps(SPEC_BUNDLE).encode())
    q = run(b, redeem_points=1000)
    assert (q.net, q.redeemed_points, q.redeemed_value, q.payable) == (4345, 1000, 1000, 3345)
    assert q.points_earned == [("base-points", 33), ("tuesday-x2", 33)]
    assert q.credits_earned == [("cashback", "credit.club", 66, "2027-02-22")]
    assert 1200 - q.redeemed_points + q.total_points == 266


def test_example_b_cap_is_2172():
    b = parse_bundle(json.dumps(SPEC_BUNDLE).encode())
    # balance 1200 < cap 2172, so "max" takes the balance; with 3000 points, the cap.
    assert run(b, redeem_points="max").redeemed_points == 1200
    rich = member(balances={"points": 3000})
    assert run(b, member=rich, redeem_points="max").redeemed_points == 2172


def test_example_c_silver_wednesday_evening():
    b = parse_bundle(json.dumps(SPEC_BUNDLE).encode())
    q = run(b, member=member(tier="silver"), when="2026-11-25T21:30:00+01:00",
            use_index=False)
    assert q.discounts == [("coffee-2", 200)]
    assert (q.net, q.payable) == (4850, 4850)
    assert q.points_earned == [("base-points", 48)]
    assert q.credits_earned == [("cashback", "credit.club", 97, "2027-02-23")]
    gold = entry(q, "gold10")
    assert gold is not None and not gold["applied"]
    assert gold["reason"] == "member is silver; rule needs gold"
    tue = entry(q, "tuesday-x2")
    assert tue is not None and not tue["applied"] and "today is wed" in tue["reason"]
    # The indexed quote has the same numbers and summarises the two rules it skipped.
    qi = run(b, member=member(tier="silver"), when="2026-11-25T21:30:00+01:00")
    assert sale(qi) == sale(q)
    assert qi.explain[-1]["step"] == "index" and qi.explain[-1]["rules"] == 2
