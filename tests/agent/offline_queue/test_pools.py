"""(1.3) Family pools in the store: a pooled member's sales earn and spend the pool's
balances, exactly offline, and two members of one family cannot overspend it."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from agent.errors import LimitExceeded
from agent.offline_queue import Store
from tests.agent.offline_queue.helpers import AT, member_record, sale_body
from tests.agent.offline_queue.test_accounts import fill


def pool_record(points: int = 500) -> dict[str, Any]:
    return {"member_id": "pl-1", "holder": "pool", "version": 1, "name": "Karimi family",
            "status": "active", "identifiers": [], "balances": {"points": points},
            "applied": {}}


def pooled(member_id: str, **kw: Any) -> dict[str, Any]:
    body = sale_body(member_id, **kw)
    body["pool_id"] = "pl-1"
    return body


@pytest.fixture
def pool_store(tmp_path: Path) -> Store:
    s = Store.open(tmp_path / "s.db", "T-0001", "M-7")
    fill(s, member_record("m-5", points=0, pool="pl-1"),
         member_record("m-6", tokens=("code:CLUB-1006",), points=0, pool="pl-1"),
         pool_record())
    yield s  # type: ignore[misc]
    s.close()


def test_earn_and_spend_go_to_the_pool(pool_store: Store) -> None:
    sale = pool_store.outbox.append("sale", pooled("m-5", earned=(40,)), at=AT,
                                    staff_id=None, offline=True, check_funds=True)
    assert pool_store.members.usable_balances("pl-1")["points"] == 540
    assert pool_store.members.usable_balances("m-5")["points"] == 0
    pool_store.outbox.append("sale", pooled("m-6", redeemed_points=540, earned=()), at=AT,
                             staff_id=None, offline=True, check_funds=True)
    assert pool_store.members.usable_balances("pl-1")["points"] == 0
    with pytest.raises(LimitExceeded):
        pool_store.outbox.append("sale", pooled("m-5", redeemed_points=1, earned=()), at=AT,
                                 staff_id=None, offline=True, check_funds=True)
    pool_store.outbox.append("refund", {"sale_id": sale.id, "reason": None}, at=AT,
                             staff_id=None, offline=True)
    assert pool_store.members.usable_balances("pl-1")["points"] == -40


def test_two_members_of_one_family_cannot_overspend_the_pool(pool_store: Store) -> None:
    barrier = threading.Barrier(6)
    outcomes: list[str] = []

    def spend(member_id: str) -> None:
        barrier.wait(20)
        try:
            pool_store.outbox.append("sale", pooled(member_id, redeemed_points=200, earned=()),
                                     at=AT, staff_id=None, offline=True, check_funds=True)
            outcomes.append("ok")
        except LimitExceeded:
            outcomes.append("refused")

    threads = [threading.Thread(target=spend, args=(m,)) for m in ["m-5", "m-6"] * 3]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    left = pool_store.members.usable_balances("pl-1")["points"]
    print(f"figure: father and son, 6 x 200 points from a pool of 500 -> "
          f"{outcomes.count('ok')} recorded, {left} left")
    assert outcomes.count("ok") == 2 and left == 100
