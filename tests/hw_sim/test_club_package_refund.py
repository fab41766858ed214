"""(1.3) A refund of a package sale takes the package back at the club: a package the
sale created is revoked (ended, its visits 0), a renewal is rolled back (its visits and
days off); exactly once, whether the refund is redelivered or arrives in the same batch
as its sale."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from agent.rules import packages as pk
from hw_sim.club.ledger import Ledger
from tests.hw_sim.test_club_packages import COMMON, _sale, _use

DAY = date(2026, 11, 24)


def _refund(seq: int, sale_id: str) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "seq": seq, "type": "refund", **COMMON,
            "sale_id": sale_id, "reason": "changed mind"}


def _refund_lines(seq: int, sale: dict[str, Any], qty: int) -> dict[str, Any]:
    price = sale["lines"][0]["unit_price"]
    return {"id": str(uuid.uuid4()), "seq": seq, "type": "refund_lines", **COMMON,
            "sale_id": sale["id"], "reason": "changed mind",
            "lines": [{"line": 0, "qty": qty}], "gross": price * qty, "payable": price * qty,
            "discounts": [], "redeemed_points": 0, "redeemed_value": 0, "credits_used": [],
            "points_earned": [], "credits_earned": [], "completes": qty == sale["lines"][0]["qty"]}


@pytest.fixture
def ledger() -> Iterator[Ledger]:
    with tempfile.TemporaryDirectory() as tmp:
        club = Ledger(Path(tmp) / "club.db", clock=lambda: datetime(2026, 11, 25, tzinfo=UTC))
        club.upsert_members([{"member_id": "m-1", "balances": {"points": 0}}])
        yield club


def _member(ledger: Ledger) -> dict[str, Any]:
    rec = ledger.member("m-1")
    assert rec is not None
    return rec


def test_a_refunded_sale_revokes_its_package_once(ledger: Ledger) -> None:
    sale = _sale(1, "gym-10")
    ledger.receive_batch("T-1", [sale])
    (pkg,) = _member(ledger)["packages"]
    kind = pk.visits_kind(pkg["package_id"])
    ledger.receive_batch("T-1", [_use(2, pkg["package_id"])])
    refund = _refund(3, sale["id"])
    ledger.receive_batch("T-1", [refund])
    ledger.receive_batch("T-1", [refund])  # redelivered: no second effect
    rec = _member(ledger)
    (pkg,) = rec["packages"]  # the entry stays, ended
    assert rec["balances"][kind] == 0 and pkg["revoked"] == "2026-11-24"
    assert pk.state_on(pkg, DAY).state == "expired"
    assert pk.usable_ids(rec["packages"], rec["balances"], DAY) == []
    assert pkg["sold_by"] == []
    # A new sale of the product gives a new package, not a renewal of the revoked one.
    ledger.receive_batch("T-1", [_sale(4, "gym-10")])
    rec = _member(ledger)
    assert len(rec["packages"]) == 2
    assert pk.usable_ids(rec["packages"], rec["balances"], DAY) == \
        [rec["packages"][1]["package_id"]]


def test_a_refunded_renewal_is_rolled_back(ledger: Ledger) -> None:
    first, second = _sale(1, "gym-10"), _sale(2, "gym-10")
    ledger.receive_batch("T-1", [first, second])
    (pkg,) = _member(ledger)["packages"]
    kind = pk.visits_kind(pkg["package_id"])
    assert (pkg["expires"], pkg["visits_total"]) == ("2027-05-22", 20)
    ledger.receive_batch("T-1", [_use(3, pkg["package_id"]) for _ in range(1)]
                         + [_use(4, pkg["package_id"])])
    refund = _refund(5, second["id"])
    ledger.receive_batch("T-1", [refund, refund])
    rec = _member(ledger)
    (pkg,) = rec["packages"]
    assert (pkg["expires"], pkg["visits_total"], rec["balances"][kind]) == \
        ("2027-02-21", 10, 8)
    assert "revoked" not in pkg and pk.state_on(pkg, DAY).usable
    # Refunding the first sale as well ends the package.
    ledger.receive_batch("T-1", [_refund(6, first["id"])])
    rec = _member(ledger)
    assert rec["balances"][kind] == 0 and pk.state_on(rec["packages"][0], DAY).state == \
        "expired"


def test_a_renewal_refund_takes_visits_off_not_below_zero(ledger: Ledger) -> None:
    first, second = _sale(1, "gym-10"), _sale(2, "gym-10")
    ledger.receive_batch("T-1", [first, second])
    (pkg,) = _member(ledger)["packages"]
    kind = pk.visits_kind(pkg["package_id"])
    ledger.receive_batch("T-1", [_use(3 + i, pkg["package_id"]) for i in range(15)])
    ledger.receive_batch("T-1", [_refund(18, second["id"])])
    assert _member(ledger)["balances"][kind] == 0


def test_sale_and_refund_in_one_batch(ledger: Ledger) -> None:
    sale = _sale(1, "wash-5", qty=2)
    ledger.receive_batch("T-1", [sale, _refund_lines(2, sale, 1)])
    rec = _member(ledger)
    (pkg,) = rec["packages"]  # unit 0 created it, unit 1 renewed it: the renewal is undone
    kind = pk.visits_kind(pkg["package_id"])
    assert (pkg["visits_total"], rec["balances"][kind], len(pkg["sold_by"])) == (5, 5, 1)
    last = _refund_lines(3, sale, 1)
    ledger.receive_batch("T-1", [last, last])
    rec = _member(ledger)
    assert rec["balances"][kind] == 0 and rec["packages"][0]["revoked"]
    whole = _sale(4, "gym-month")
    ledger.receive_batch("T-1", [whole, _refund(5, whole["id"])])
    rec = _member(ledger)
    month = rec["packages"][-1]
    assert month["sku"] == "gym-month" and month["revoked"] == "2026-11-24"
    assert pk.usable_ids(rec["packages"], rec["balances"], DAY) == []


def test_a_refund_of_another_sale_leaves_the_package(ledger: Ledger) -> None:
    sale = _sale(1, "gym-10")
    other = {**_sale(2, "gym-10"), "lines": [{"sku": "coffee", "qty": 1, "unit_price": 300}],
             "gross": 300, "payable": 300}
    ledger.receive_batch("T-1", [sale, other, _refund(3, other["id"])])
    rec = _member(ledger)
    (pkg,) = rec["packages"]
    assert rec["balances"][pk.visits_kind(pkg["package_id"])] == 10 and "revoked" not in pkg
