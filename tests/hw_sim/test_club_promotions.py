"""Issue 21 at the simulated club: the terminal's quote, applied by the club, gives
the referrer their share, the rewards' points, the rule uses and coupons; a second
use of a single-use code (another terminal, offline) is rejected."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path
from typing import Any

from agent.rules import MemberView, QuoteContext, QuoteRequest, lines_from_json, parse_bundle
from agent.rules import quote as rules_quote
from hw_sim.club.ledger import Ledger
from tests.agent.rules.conftest import SPEC_BASKET, spec_bundle

RULES = [
    {"id": "ref-5", "kind": "referral", "when": {},
     "then": {"percent_bps": 500, "kind": "credit.club"}},
    {"id": "welcome", "kind": "discount", "when": {"once_per_member": True},
     "then": {"amount": 500}},
    {"id": "vip", "kind": "discount", "when": {"codes": ["VIP-1"], "single_use": True},
     "then": {"amount": 300}},
    {"id": "next", "kind": "coupon", "when": {}, "then": {"for_rule": "welcome",
                                                          "prefix": "NX-"}},
    {"id": "club-fee", "kind": "fee", "when": {}, "then": {"amount": 10}},
    {"id": "coffee", "kind": "reward", "when": {"categories": ["coffee"]},
     "then": {"cost_points": 300}},
]
AT = "2026-11-24T10:00:00+01:00"


def sale_event(terminal: str, seq: int, record: dict[str, Any], **request: Any) -> dict[str, Any]:
    bundle = parse_bundle(json.dumps(spec_bundle(rules=RULES)))
    q = rules_quote(bundle, QuoteRequest(lines_from_json(SPEC_BASKET), **request),
                    MemberView(record), QuoteContext(dt.datetime.fromisoformat(AT),
                                                     coupon_seed=f"{terminal}-{seq}"))
    body = q.to_dict()
    body.pop("explain")
    return {"id": str(uuid.uuid4()), "seq": seq, "at": AT, "terminal_id": terminal,
            "merchant_id": "M-7", "staff_id": None, "offline": True, "type": "sale",
            "member_id": record["member_id"], **body}


def test_club_applies_referral_rewards_uses_coupons_and_refuses_a_reused_code(
        tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "club.db")
    ledger.upsert_members([
        {"member_id": "m-1", "balances": {"points": 1200}, "referred_by": "m-77"},
        {"member_id": "m-77", "balances": {"credit.club": 100}},
        {"member_id": "m-2", "balances": {"points": 0}}])
    sara = ledger.member("m-1")
    assert sara is not None
    sale = sale_event("T-1", 1, sara, codes=["VIP-1"], rewards=["coffee"])
    assert sale["fees"] == [{"rule": "club-fee", "amount": 10}]
    r = ledger.receive_batch("T-1", [sale])
    assert r.accepted == [sale["id"]] and r.applied_seq == 1
    sara, ref = ledger.member("m-1"), ledger.member("m-77")
    assert sara is not None and ref is not None
    # The referrer gets 5 % of what was paid; the reward's 300 points leave Sara.
    share = sale["referral_rewards"][0]["amount"]
    assert share == sale["payable"] * 500 // 10000
    assert ref["balances"]["credit.club"] == 100 + share
    earned = sum(p["points"] for p in sale["points_earned"])
    assert sara["balances"]["points"] == 1200 - 300 + earned
    assert sara["rule_uses"] == {"welcome": ["2026-11-24"]}
    assert sara["used_codes"] == ["VIP-1"]
    (coupon,) = sara["coupons"]
    assert coupon["rule"] == "welcome" and coupon["code"] == sale["coupons_issued"][0]["code"]
    # The same single-use code at another terminal that was offline: rejected.
    other = sale_event("T-2", 1, {"member_id": "m-2", "status": "active", "balances": {}},
                       codes=["VIP-1"])
    r2 = ledger.receive_batch("T-2", [other])
    assert r2.rejected == [{"id": other["id"], "reason": "code_used: VIP-1"}]
    # The terminal's next quote with the club's record: welcome used, code used.
    sara = ledger.member("m-1")
    assert sara is not None
    again = sale_event("T-1", 2, sara, codes=["VIP-1"])
    assert again["discounts"] == []
    # A refund gives the use and the referrer's share back.
    refund = {"id": str(uuid.uuid4()), "seq": 2, "at": AT, "terminal_id": "T-1",
              "merchant_id": "M-7", "staff_id": None, "offline": False, "type": "refund",
              "sale_id": sale["id"], "reason": "r"}
    ledger.receive_batch("T-1", [refund])
    sara, ref = ledger.member("m-1"), ledger.member("m-77")
    assert sara is not None and ref is not None
    assert sara["rule_uses"] == {"welcome": []}
    assert ref["balances"]["credit.club"] == 100
    assert sara["balances"]["points"] == 1200


def test_expiring_credit_and_points_become_lots_the_terminal_enforces(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "club.db", points_expire_days=365)
    ledger.upsert_members([{"member_id": "m-1", "balances": {"points": 1200}}])
    bundle = parse_bundle(json.dumps(spec_bundle()))  # cashback: credit.club, 90 days
    rec = ledger.member("m-1")
    assert rec is not None
    q = rules_quote(bundle, QuoteRequest(lines_from_json(SPEC_BASKET), redeem_points=1000),
                    MemberView(rec), QuoteContext(dt.datetime.fromisoformat(AT)))
    body = q.to_dict()
    body.pop("explain")
    ev = {"id": str(uuid.uuid4()), "seq": 1, "at": AT, "terminal_id": "T-1",
          "merchant_id": "M-7", "staff_id": None, "offline": False, "type": "sale",
          "member_id": "m-1", **body}
    ledger.receive_batch("T-1", [ev])
    rec = ledger.member("m-1")
    assert rec is not None
    # A bronze member: net 48.50, 1000 points redeemed, payable 38.50: cashback 77 of
    # credit.club until 2027-02-22; 38 + 38 (Tuesday) points until a year later.
    assert rec["balance_lots"] == {
        "credit.club": [{"amount": 77, "expires": "2027-02-22"}],
        "points": [{"amount": 76, "expires": "2027-11-24"}]}
    # The terminal refuses the expired credit once its last day has passed.
    view = MemberView(rec)
    later = dt.datetime(2027, 2, 23, 10, tzinfo=dt.UTC)
    late = rules_quote(parse_bundle(json.dumps(spec_bundle(expires_at="2027-06-01T00:00:00Z"))),
                       QuoteRequest(lines_from_json(SPEC_BASKET), use_credit=["credit.club"]),
                       view, QuoteContext(later))
    assert late.credits_used == []
