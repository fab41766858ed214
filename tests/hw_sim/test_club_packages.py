"""The simulated club and visit packages (1.3): a sale of a package product creates the
buyer's package, a second one renews it; check-ins are applied once each, even past
zero (the visit happened), and a malformed one is rejected by name."""

from __future__ import annotations

import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hw_sim.club.ledger import Ledger

AT = "2026-11-24T10:00:00+01:00"
COMMON = {"at": AT, "terminal_id": "T-1", "merchant_id": "M-7", "staff_id": "c1",
          "offline": False, "recorded_by": "c1"}


def _sale(seq: int, sku: str, qty: int = 1) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "seq": seq, "type": "sale", **COMMON,
            "member_id": "m-1", "identified_by": None,
            "lines": [{"sku": sku, "category": "packages", "qty": qty, "unit_price": 12000}],
            "gross": 12000 * qty, "discounts": [], "redeemed_points": 0, "redeemed_value": 0,
            "credits_used": [], "payable": 12000 * qty, "points_earned": [],
            "credits_earned": [], "lottery_entries": 0, "rules_version": 1, "payment": "cash"}


def _use(seq: int, package_id: Any, units: Any = 1) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "seq": seq, "type": "package_use", **COMMON,
            "member_id": "m-1", "package_id": package_id, "units": units,
            "identified_by": None}


def test_sold_renewed_used_once_and_past_zero() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        ledger = Ledger(Path(tmp) / "club.db",
                        clock=lambda: datetime(2026, 11, 25, tzinfo=UTC))
        ledger.upsert_members([{"member_id": "m-1", "balances": {"points": 0}}])
        ledger.receive_batch("T-1", [_sale(1, "gym-10")])
        rec = ledger.member("m-1")
        assert rec is not None
        (pkg,) = rec["packages"]
        kind = "visits." + pkg["package_id"]
        assert (pkg["sku"], pkg["visits_total"], pkg["starts"], pkg["expires"]) == \
            ("gym-10", 10, "2026-11-24", "2027-02-21")
        assert rec["balances"][kind] == 10
        # A renewal: the same package, 10 more visits, 90 days from the old expiry.
        ledger.receive_batch("T-1", [_sale(2, "gym-10")])
        rec = ledger.member("m-1")
        assert rec is not None and len(rec["packages"]) == 1
        assert rec["packages"][0]["expires"] == "2027-05-22"
        assert rec["balances"][kind] == 20
        uses = [_use(3 + i, pkg["package_id"]) for i in range(21)]
        ledger.receive_batch("T-1", uses)
        ledger.receive_batch("T-1", uses[:5])  # delivered again: applied once
        rec = ledger.member("m-1")
        assert rec is not None and rec["balances"][kind] == -1  # the 21st visit happened
        bad = [_use(24, ["pk"]), _use(25, pkg["package_id"], units=0)]
        result = ledger.receive_batch("T-1", bad)
        assert ledger.event_counts("T-1").get("rejected") == 2, result


def test_a_freeze_is_kept_once_and_moves_the_expiry() -> None:
    from datetime import date

    from agent.rules import packages as pk
    with tempfile.TemporaryDirectory() as tmp:
        ledger = Ledger(Path(tmp) / "club.db",
                        clock=lambda: datetime(2026, 11, 25, tzinfo=UTC))
        ledger.upsert_members([{"member_id": "m-1", "balances": {"points": 0}}])
        ledger.receive_batch("T-1", [_sale(1, "gym-10")])
        rec = ledger.member("m-1")
        assert rec is not None
        package_id = rec["packages"][0]["package_id"]
        freeze = {"id": str(uuid.uuid4()), "seq": 2, "type": "package_freeze", **COMMON,
                  "member_id": "m-1", "package_id": package_id, "from": "2026-12-01",
                  "until": "2026-12-10", "reason": "travel"}
        ledger.receive_batch("T-1", [freeze])
        ledger.receive_batch("T-1", [freeze])
        rec = ledger.member("m-1")
        assert rec is not None
        (pkg,) = rec["packages"]
        assert pkg["frozen"] == [{"from": "2026-12-01", "until": "2026-12-10"}]
        assert pk.expires_on(pkg) == date(2027, 3, 3)
        bad = {**freeze, "id": str(uuid.uuid4()), "seq": 3, "from": "soon"}
        ledger.receive_batch("T-1", [bad])
        assert ledger.event_counts("T-1").get("rejected") == 1


def test_a_demo_pass_sold_again_renews_the_one_the_demo_member_holds() -> None:
    """The demo's packages are of the demo catalogue's products: Sara buying another
    gym pass at the demo till renews hers (17 visits on one pass), she does not end up
    with two passes side by side."""
    from hw_sim.club.__main__ import _demo_packages

    with tempfile.TemporaryDirectory() as tmp:
        ledger = Ledger(Path(tmp) / "club.db",
                        clock=lambda: datetime(2026, 11, 25, tzinfo=UTC))
        sara: dict[str, Any] = {"member_id": "m-1001", "balances": {"points": 0}}
        _demo_packages([sara])
        ledger.upsert_members([{**sara, "member_id": "m-1"}])
        ledger.receive_batch("T-1", [_sale(1, sara["packages"][0]["sku"])])
        rec = ledger.member("m-1")
        assert rec is not None and len(rec["packages"]) == 1
        assert rec["balances"]["visits.pk-demo-gym"] == 17
