"""The pure arithmetic of manual adjustments (agent/rules/adjust.py): points from an
amount by the bundle's earning rate (docs/rules.md "Points from an amount", worked
examples to the point), the bundle's ``adjustments`` block, and the limits."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.errors import RulesError
from agent.rules import Bundle, parse_bundle, quote
from agent.rules.adjust import (
    AdjustmentsConfig,
    Allowance,
    CreditAdjust,
    PointsAdjust,
    adjustment_problem,
    parse_adjustments,
    points_for_amount,
)
from agent.rules.model import MemberView, QuoteContext, QuoteRequest, lines_from_json
from hw_sim.club.bundles import encode_bundle, make_bundle

# docs/rules.md "Points from an amount": (amount, per_spend, points) → points.
WORKED = [
    (12345, 100, 1, 123),   # 123.45 EUR at 1 point per 1.00 → 123
    (99, 100, 1, 0),        # under one step: nothing
    (100, 100, 1, 1),
    (250_000, 1000, 3, 750),  # 3 points per 10.00: 2500.00 → 750
    (0, 100, 1, 0),
    (1999, 500, 2, 6),      # 3 whole steps of 5.00 → 6
]


@pytest.mark.parametrize(("amount", "per_spend", "points", "want"), WORKED)
def test_worked_examples(amount: int, per_spend: int, points: int, want: int) -> None:
    assert points_for_amount(amount, per_spend, points) == want


@given(st.integers(0, 10**12), st.integers(1, 10**6), st.integers(0, 1000))
def test_points_never_exceed_the_rate_and_a_step_more_adds_exactly_the_points(
        amount: int, per_spend: int, points: int) -> None:
    got = points_for_amount(amount, per_spend, points)
    assert 0 <= got * per_spend <= amount * points
    assert points_for_amount(amount + per_spend, per_spend, points) == got + points
    # Whole steps only: what is left over earns nothing.
    assert points_for_amount(amount - amount % per_spend, per_spend, points) == got


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 10**9))
def test_the_same_points_as_a_sale_of_that_amount_under_the_base_rule(amount: int) -> None:
    """The arithmetic is the engine's: a bare-amount sale (no discount applies) earns
    what points_from_amount computes from the base-points rule's rate."""
    bundle = _bundle([{"id": "base-points", "kind": "points", "priority": 10, "when": {},
                       "then": {"per_spend": 100, "points": 1}}])
    assert bundle.adjustments is not None and bundle.adjustments.points is not None
    rate = bundle.adjustments.points
    assert (rate.per_spend, rate.points) == (100, 1)
    from datetime import UTC, datetime
    q = quote(bundle, QuoteRequest(lines=lines_from_json(
        [{"sku": None, "category": None, "qty": 1, "unit_price": amount}])),
        MemberView({"member_id": "m", "tier": "bronze", "balances": {}, "status": "active"}),
        QuoteContext(at=datetime(2026, 11, 25, 10, tzinfo=UTC), offline=False))
    assert q.total_points == points_for_amount(amount, 100, 1)


def _bundle(rules: list[dict[str, object]], **adjustments: object) -> Bundle:
    raw = make_bundle("c", "m", 1, rules=rules)
    raw["adjustments"] = {**raw["adjustments"], **adjustments}
    return parse_bundle(encode_bundle(raw))


def test_the_block_parses_and_names_a_bad_key() -> None:
    base = make_bundle("c", "m", 1)
    cfg = parse_adjustments(base, {"base-points": ("points", 100, 1)})
    assert cfg is not None and cfg.require_note and cfg.points is not None
    assert cfg.points.per_spend == 100 and cfg.credit is not None
    assert cfg.credit.kinds == ("credit.club", "units.wash")
    assert cfg.offline_points_per_staff_day == 2000
    assert parse_adjustments({"offline": {}}, {}) is None  # absent: off
    bad = [
        ({"points": {"earn_rule": "nope"}}, "earn_rule"),
        ({"points": {"per_spend": 100}}, "per_spend"),
        ({"points": {"per_spend": 100, "points": 1, "earn_rule": "base-points"}}, "earn_rule"),
        ({"points": {"max_add": 0}}, "max_add"),
        ({"points": {"max_add": True}}, "max_add"),
        ({"points": {"max_add": 2**53}}, "max_add"),
        ({"credit": {"kinds": ["value.gift"]}}, "kinds"),
        ({"credit": {"kinds": ["points"]}}, "kinds"),
        ({"credit": {"kinds": "credit.club"}}, "kinds"),
        ({"require_note": "yes"}, "require_note"),
        ({"points": []}, "points"),
    ]
    for block, key in bad:
        with pytest.raises(RulesError, match=key):
            parse_adjustments({"adjustments": block}, {"base-points": ("points", 100, 1)})


CFG = AdjustmentsConfig(
    points=PointsAdjust(max_add=500, max_deduct=300, max_per_member_day=1000),
    credit=CreditAdjust(kinds=("credit.club",), max_grant=2000, max_deduct=2000,
                        max_per_member_day=None),
    offline_points_per_staff_day=600)
NONE = Allowance()


@pytest.mark.parametrize(("kind", "amount", "offline", "allowance", "want"), [
    ("points", 500, False, NONE, None),
    ("points", 501, False, NONE, "max_add"),
    ("points", -300, False, NONE, None),
    ("points", -301, False, NONE, "max_deduct"),
    ("points", 200, False, Allowance(member_added=800), None),
    ("points", 201, False, Allowance(member_added=800), "member_day"),
    ("points", -300, False, Allowance(member_added=1000), None),  # deductions are free
    ("points", 100, True, Allowance(staff_added_offline=500), None),
    ("points", 101, True, Allowance(staff_added_offline=500), "offline_staff_day"),
    ("points", 101, False, Allowance(staff_added_offline=500), None),  # online: no bound
    ("credit.club", 2000, True, Allowance(staff_added_offline=10**9), None),
    ("credit.other", 1, False, NONE, "kind_not_grantable"),
    ("units.wash", 1, False, NONE, "kind_not_grantable"),
    ("points", 0, False, NONE, "zero"),
])
def test_limits(kind: str, amount: int, offline: bool, allowance: Allowance,
                want: str | None) -> None:
    got = adjustment_problem(CFG, kind, amount, offline=offline, allowance=allowance)
    assert (got[0] if got else None) == want
    assert adjustment_problem(None, kind, amount, offline=offline,
                              allowance=allowance) == ("adjust_off", {})


@given(st.lists(st.integers(1, 400), max_size=30))
def test_the_member_day_limit_is_never_passed_by_a_sequence_of_additions(
        amounts: list[int]) -> None:
    added = 0
    for amount in amounts:
        if adjustment_problem(CFG, "points", amount, offline=False,
                              allowance=Allowance(member_added=added)) is None:
            added += amount
    assert added <= 1000
