"""Earn only (issue #20): another merchant's member whose record the club has not
confirmed lately earns as usual and redeems nothing, online or offline."""

from __future__ import annotations

from typing import Any

import pytest

from agent.errors import LimitExceeded
from agent.rules import Line, MemberView, QuoteContext, QuoteRequest, quote
from agent.rules.model import lines_from_json
from tests.agent.rules.conftest import SPEC_BUNDLE, member
from tests.agent.rules.helpers import SPEC_BASKET, TUE_10, at, bundle_with

BUNDLE = bundle_with(SPEC_BUNDLE["rules"])


def priced(earn_only: bool, *, offline: bool = False, **request: Any) -> Any:
    lines: list[Line] = lines_from_json(SPEC_BASKET)
    ctx = QuoteContext(at(TUE_10), offline=offline, earn_only=earn_only)
    return quote(BUNDLE, QuoteRequest(lines, **request), MemberView(member()), ctx)


@pytest.mark.parametrize("offline", [False, True])
@pytest.mark.parametrize("request_", [{"redeem_points": 100},
                                      {"use_credit": ["credit.club"]}])
def test_a_redemption_is_refused_by_name(offline: bool, request_: dict[str, Any]) -> None:
    if "use_credit" in request_:
        q = priced(True, offline=offline, **request_)  # credit is bounded, not refused
        assert q.credits_used == () or all(a == 0 for _, a in q.credits_used)
        assert "earn_only" in q.limits_held
        return
    with pytest.raises(LimitExceeded) as err:
        priced(True, offline=offline, **request_)
    assert err.value.limit == "earn_only"


def test_max_redeems_nothing_and_says_why() -> None:
    q = priced(True, redeem_points="max")
    assert q.redeemed_points == 0 and "earn_only" in q.limits_held


def test_earning_is_what_any_member_earns() -> None:
    full, earn = priced(False), priced(True)
    assert earn.points_earned == full.points_earned and earn.points_earned
    assert earn.payable == full.payable and earn.discounts == full.discounts
