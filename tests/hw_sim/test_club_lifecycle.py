"""#19 at the simulated club: referrals counted and credited in the referrer's record
(refunds taken back), and the tier upgraded when the bundle's threshold is met."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hw_sim.club.ledger import Ledger
from tests.hw_sim.test_club_promotions import AT, sale_event

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def _enrol(terminal: str, seq: int, referred_by: str) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "seq": seq, "at": AT, "terminal_id": terminal,
            "merchant_id": "M-7", "staff_id": "1", "offline": False, "type": "member_enrol",
            "member_id": f"local:{uuid.uuid4()}", "name": "New", "identifiers": [],
            "referred_by": referred_by}


def test_referrals_are_counted_and_credited_and_refunds_take_the_credit_back(
        tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "club.db", clock=lambda: NOW)
    ledger.upsert_members([{"member_id": "m-77", "balances": {}},
                           {"member_id": "m-1", "balances": {}, "referred_by": "m-77"}])
    ledger.receive_batch("T-1", [_enrol("T-1", 1, "m-77"), _enrol("T-1", 2, "m-77")])
    assert ledger.member("m-77")["referrals"] == {"count": 2, "earned": {}}
    sale = sale_event("T-1", 3, ledger.member("m-1"))
    ledger.receive_batch("T-1", [sale])
    share = sale["referral_rewards"][0]["amount"]
    assert ledger.member("m-77")["referrals"] == {"count": 2, "earned": {"credit.club": share}}
    refund = {"id": str(uuid.uuid4()), "seq": 4, "at": AT, "terminal_id": "T-1",
              "merchant_id": "M-7", "staff_id": None, "offline": False, "type": "refund",
              "sale_id": sale["id"], "reason": "r"}
    ledger.receive_batch("T-1", [refund])
    assert ledger.member("m-77")["referrals"]["earned"] == {"credit.club": 0}


def test_the_club_upgrades_silver_to_gold_at_the_threshold_and_reports_the_window(
        tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "club.db", clock=lambda: NOW,
                    tiers=[{"id": "silver", "rank": 2},
                           {"id": "gold", "rank": 3,
                            "upgrade": {"min_purchases": 3, "window_days": 30}}])
    ledger.upsert_members([{"member_id": "m-1", "tier": "silver", "balances": {}}])
    for seq in (1, 2):
        ledger.receive_batch("T-1", [sale_event("T-1", seq, ledger.member("m-1"))])
    rec = ledger.member("m-1")
    assert rec["tier"] == "silver"
    assert rec["stats"]["tier_window"]["days"] == 30
    assert rec["stats"]["tier_window"]["purchases"] == 2
    ledger.receive_batch("T-1", [sale_event("T-1", 3, rec)])
    rec = ledger.member("m-1")
    assert rec["tier"] == "gold" and "tier_window" not in rec["stats"]  # top tier
