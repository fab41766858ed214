"""Effects, order, exclusivity, caps and the discount split, by example."""

from __future__ import annotations

from tests.agent.rules.conftest import member
from tests.agent.rules.helpers import bundle_with, entry, run

THREE = [{"sku": "a", "category": "x", "qty": 1, "unit_price": 100},
         {"sku": "b", "category": "x", "qty": 1, "unit_price": 100},
         {"sku": "c", "category": "y", "qty": 1, "unit_price": 100}]


def disc(rid, then, when=None, **extra):
    return {"id": rid, "kind": "discount", "when": when or {}, "then": then, **extra}


def test_percent_discount_capped_by_max_amount():
    q = run(bundle_with([disc("d", {"percent_bps": 5000, "max_amount": 1000})]))
    assert q.discounts == [("d", 1000)]
    assert "capped" in entry(q, "d")["text"]


def test_amount_discount_is_at_most_what_remains():
    q = run(bundle_with([disc("d", {"amount": 999999})]))
    assert q.discounts == [("d", 5050)] and q.net == 0 and q.line_nets == [0, 0]


def test_discount_only_on_target_lines():
    q = run(bundle_with([disc("d", {"percent_bps": 5000}, {"skus": ["a", "b"]})]),
            basket=THREE)
    assert q.discounts == [("d", 100)] and q.line_nets == [50, 50, 100]


def test_split_leftover_goes_to_lines_in_basket_order():
    q = run(bundle_with([disc("d", {"amount": 100})]), basket=THREE)
    assert q.line_nets == [66, 67, 67]


def test_split_skips_lines_with_nothing_remaining():
    rules = [disc("all-a", {"percent_bps": 10000}, {"skus": ["a"]}, priority=9),
             disc("d", {"amount": 101})]
    q = run(bundle_with(rules), basket=THREE)
    # Line a has nothing left; 101 over b and c (100 each): 50 + 50, the 1 left to b.
    assert q.line_nets == [0, 49, 50]


def test_split_in_proportion_to_remaining():
    basket = [{"sku": "a", "qty": 1, "unit_price": 1}, {"sku": "b", "qty": 3, "unit_price": 333}]
    q = run(bundle_with([disc("d", {"amount": 7})]), basket=basket)
    # 7×1/1000 = 0, 7×999/1000 = 6, one left over → line a first.
    assert q.line_nets == [0, 993]


def test_order_is_priority_then_id():
    rules = [disc("b", {"amount": 10}, priority=5), disc("a", {"amount": 10}, priority=5),
             disc("z", {"amount": 10}, priority=7)]
    q = run(bundle_with(rules))
    assert [r for r, _ in q.discounts] == ["z", "a", "b"]


def test_exclusive_stops_later_rules_of_its_kind_only():
    rules = [disc("top", {"amount": 10}, priority=9),
             disc("excl", {"amount": 20}, priority=5, exclusive=True),
             disc("later", {"amount": 30}, priority=1),
             {"id": "pts", "kind": "points", "when": {}, "then": {"per_spend": 100, "points": 1}}]
    q = run(bundle_with(rules))
    assert q.discounts == [("top", 10), ("excl", 20)]
    assert "exclusive rule excl already applies" in entry(q, "later")["reason"]
    assert q.points_earned == [("pts", 50)]


def test_exclusive_rule_whose_conditions_fail_stops_nothing():
    rules = [disc("excl", {"amount": 20}, {"tiers": ["bronze"]}, priority=5, exclusive=True),
             disc("later", {"amount": 30}, priority=1)]
    assert run(bundle_with(rules)).discounts == [("later", 30)]


def test_points_floor_and_max_points():
    rules = [{"id": "p", "kind": "points", "when": {}, "then": {"per_spend": 1000, "points": 3}},
             {"id": "q", "kind": "points", "when": {},
              "then": {"per_spend": 1, "points": 1, "max_points": 500}}]
    q = run(bundle_with(rules))
    assert q.points_earned == [("p", 15), ("q", 500)]


def test_points_on_target_lines_use_payable_share():
    rules = [{"id": "p", "kind": "points", "when": {"categories": ["bakery"]},
              "then": {"per_spend": 1, "points": 1}}]
    q = run(bundle_with(rules), redeem_points=1000)
    # target net 4550 × payable 4050 / net 5050 = 3649.00.. → 3649
    assert q.payable == 4050 and q.points_earned == [("p", 4550 * 4050 // 5050)]


def test_only_first_multiplier_counts():
    rules = [{"id": "p", "kind": "points", "when": {}, "then": {"per_spend": 100, "points": 1}},
             {"id": "m3", "kind": "multiplier", "priority": 5, "when": {"tiers": ["silver"]},
              "then": {"bps": 30000}},
             {"id": "m2", "kind": "multiplier", "priority": 4, "when": {},
              "then": {"bps": 15000}},
             {"id": "m9", "kind": "multiplier", "priority": 1, "when": {},
              "then": {"bps": 90000}}]
    q = run(bundle_with(rules), use_index=False)
    assert q.points_earned == [("p", 50), ("m2", 25)]
    assert "only the first multiplier" in entry(q, "m9")["reason"]
    assert "member is gold" in entry(q, "m3")["reason"]


def test_multiplier_rounds_toward_zero():
    rules = [{"id": "p", "kind": "points", "when": {}, "then": {"per_spend": 1000, "points": 1}},
             {"id": "m", "kind": "multiplier", "when": {}, "then": {"bps": 15000}}]
    assert run(bundle_with(rules)).points_earned == [("p", 5), ("m", 2)]


def test_credit_max_amount_and_no_expiry():
    rules = [{"id": "c", "kind": "credit", "when": {},
              "then": {"percent_bps": 1000, "kind": "credit.merchant:M-7", "max_amount": 300}}]
    q = run(bundle_with(rules))
    assert q.credits_earned == [("c", "credit.merchant:M-7", 300, None)]


def test_credit_expiry_is_local_date_plus_days():
    rules = [{"id": "c", "kind": "credit", "when": {},
              "then": {"percent_bps": 100, "kind": "credit.club", "expires_days": 1}}]
    q = run(bundle_with(rules), when="2026-11-30T23:30:00+00:00")  # 1 Dec in Berlin
    assert q.credits_earned == [("c", "credit.club", 50, "2026-12-02")]


def test_lottery_entries():
    rules = [{"id": "l", "kind": "lottery", "when": {}, "then": {"per_spend": 2000, "entries": 3}},
             {"id": "l2", "kind": "lottery", "when": {"anonymous": True},
              "then": {"per_spend": 5050, "entries": 1}}]
    assert run(bundle_with(rules)).lottery_entries == 7
    assert run(bundle_with(rules), member=None).lottery_entries == 1


def test_net_zero_earns_nothing():
    rules = [disc("all", {"percent_bps": 10000}),
             {"id": "p", "kind": "points", "when": {}, "then": {"per_spend": 1, "points": 1}}]
    q = run(bundle_with(rules))
    assert (q.net, q.payable, q.points_earned) == (0, 0, [])
    assert entry(q, "p")["points"] == 0


def test_zero_amount_rows_are_left_out_of_the_sale_but_explained():
    rules = [disc("all", {"percent_bps": 10000}, priority=9), disc("more", {"amount": 5})]
    q = run(bundle_with(rules))
    assert q.discounts == [("all", 5050)]
    assert entry(q, "more")["applied"] and entry(q, "more")["amount"] == 0


def test_empty_basket():
    q = run(bundle_with([disc("d", {"amount": 5})]), basket=[])
    assert (q.gross, q.net, q.payable, q.discounts) == (0, 0, 0, [])


def test_bare_amount_basket():
    rules = [disc("d", {"percent_bps": 1000}),
             disc("cat", {"amount": 5}, {"categories": ["coffee"]})]
    q = run(bundle_with(rules), basket=[1999])
    assert (q.gross, q.discounts, q.net) == (1999, [("d", 199)], 1800)


def test_expired_bundle_applies_nothing_and_says_so():
    q = run(bundle_with([disc("d", {"amount": 5})]), when="2026-12-20T08:00:00+00:00")
    assert (q.discounts, q.net, q.rules_version) == ([], 5050, 42)
    assert "expired" in q.explain[0]["text"]


def test_no_bundle_applies_nothing_and_says_so():
    q = run(None)
    assert (q.gross, q.net, q.payable, q.rules_version) == (5050, 5050, 5050, None)
    assert "no rule bundle" in q.explain[0]["text"]


def test_member_without_balances_or_stats():
    bare = {"member_id": "m-1", "status": "active", "tier": "gold"}
    rules = [{"id": "p", "kind": "points", "when": {"min_purchase_count": 1},
              "then": {"per_spend": 1, "points": 1}}]
    q = run(bundle_with(rules), member=bare, redeem_points="max", use_index=False)
    assert q.redeemed_points == 0 and q.points_earned == []


def test_gold_member_not_silver_only():
    q = run(bundle_with([disc("s", {"amount": 5}, {"tiers": ["silver"]})]),
            member=member(tier="gold"), use_index=False)
    assert entry(q, "s")["reason"] == "member is gold; rule needs silver"
