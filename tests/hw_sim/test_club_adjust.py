"""The simulated club applies ``balance_adjust`` (1.3) exactly once, in any delivery
order, and rejects a malformed one by name (hw_sim/club/effects.py ``adjust_problem``)."""

from __future__ import annotations

import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from hw_sim.club.ledger import Ledger

AT = "2026-11-24T10:00:00+01:00"


def _adjust(seq: int, kind: str, amount: Any, **extra: Any) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "seq": seq, "type": "balance_adjust", "at": AT,
            "terminal_id": "T-1", "merchant_id": "M-7", "staff_id": "mg", "offline": False,
            "recorded_by": "mg", "member_id": "m-1", "kind": kind, "amount": amount,
            "reason": "goodwill", "note": "n", **extra}


def _ledger(tmp: str) -> Ledger:
    ledger = Ledger(Path(tmp) / "club.db", clock=lambda: datetime(2026, 11, 25, tzinfo=UTC))
    ledger.upsert_members([{"member_id": "m-1", "balances": {"points": 100},
                            "stats": {"purchase_count": 5}}])
    return ledger


@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_adjustments_apply_once_in_any_order(data: st.DataObject) -> None:
    events = [_adjust(1, "points", 50), _adjust(2, "points", -30),
              _adjust(3, "units.wash", 4), _adjust(4, "credit.club", 700)]
    deliveries = data.draw(st.lists(st.tuples(st.integers(0, 3), st.integers(1, 3)),
                                    max_size=6))
    batches = [events[i:i + n] for i, n in deliveries] + [events]
    order = data.draw(st.permutations(range(len(batches))))
    with tempfile.TemporaryDirectory() as tmp:
        ledger = _ledger(tmp)
        for i in order:
            ledger.receive_batch("T-1", batches[i])
        assert ledger.event_counts("T-1") == {"applied": 4}
        rec = ledger.member("m-1")
        assert rec is not None
        assert rec["balances"] == {"points": 120, "units.wash": 4, "credit.club": 700}
        assert rec["stats"]["purchase_count"] == 5  # no purchase
        assert rec["applied"]["T-1"] == 4
        ledger.close()


def test_malformed_adjustments_are_rejected_by_name_and_change_nothing() -> None:
    bad = [(_adjust(1, "points", 0), "malformed: balance_adjust.amount"),
           (_adjust(2, "points", True), "malformed: balance_adjust.amount"),
           (_adjust(3, "points", 2**53), "out_of_range"),
           (_adjust(4, "value.gift", 5), "malformed: balance_adjust.kind"),
           (_adjust(5, "credit.", 5), "malformed: balance_adjust.kind"),
           (_adjust(6, "points", 5, reason="because"), "malformed: balance_adjust.reason"),
           (_adjust(7, "points", 5, member_id=7), "malformed: balance_adjust.member_id")]
    with tempfile.TemporaryDirectory() as tmp:
        ledger = _ledger(tmp)
        result = ledger.receive_batch("T-1", [e for e, _ in bad])
        reasons = {r["id"]: r["reason"] for r in result.rejected}
        for event, want in bad:
            assert reasons[event["id"]].startswith(want), (reasons[event["id"]], want)
        rec = ledger.member("m-1")
        assert rec is not None and rec["balances"] == {"points": 100}
        ledger.close()
