"""(1.3) Attack: two tills (here two processes on one store, and many threads) charging one
house account at the same moment cannot pass its credit limit; only the charges that
fit are recorded, each with its sale (docs/protocol/club.md "House accounts")."""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path
from typing import Any

from agent.offline_queue import AccountRefused, Store
from tests.agent.offline_queue.helpers import AT, member_record, sale_body
from tests.agent.offline_queue.test_accounts import account_record, fill, on_account


def _charge(path: str, amount: int, start: Any, out: Any) -> None:
    store = Store.open(Path(path), "T-0001", "M-7")
    start.wait(20)
    try:
        store.outbox.append("sale", on_account(sale_body(payable=amount), amount), at=AT,
                            staff_id=None, offline=False)
        out.put("ok")
    except AccountRefused as exc:
        out.put(exc.reason)
    finally:
        store.close()


def test_two_processes_cannot_pass_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = Store.open(path, "T-0001", "M-7")
    fill(store, member_record("m-1"), account_record(limit=1000))
    store.close()
    ctx = multiprocessing.get_context("fork")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_charge, args=(str(path), 600, start, out)) for _ in range(2)]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(30)
    outcomes = sorted(out.get(timeout=5) for _ in procs)
    store = Store.open(path, "T-0001", "M-7")
    rows = store.db.execute_sql("SELECT type FROM events ORDER BY seq").fetchall()
    owed = store.members.usable_balances("ac-1").get("owed", 0)
    store.close()
    print(f"figure: 2 processes x 600 on a limit of 1000 -> {outcomes}, owed {owed}")
    assert outcomes == ["account_limit", "ok"]
    assert [r[0] for r in rows] == ["sale", "account_charge"]
    assert owed == 600


def test_many_threads_fill_the_limit_exactly(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "s.db", "T-0001", "M-7")
    fill(store, member_record("m-1"), account_record(limit=1000))
    barrier = threading.Barrier(12)
    outcomes: list[str] = []

    def charge() -> None:
        barrier.wait(20)
        try:
            store.outbox.append("sale", on_account(sale_body(payable=300), 300), at=AT,
                                staff_id=None, offline=False)
            outcomes.append("ok")
        except AccountRefused as exc:
            outcomes.append(exc.reason)

    threads = [threading.Thread(target=charge) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    charges = store.db.execute_sql(
        "SELECT count(*) FROM events WHERE type = 'account_charge'").fetchone()[0]
    sales = store.db.execute_sql("SELECT count(*) FROM events WHERE type = 'sale'").fetchone()[0]
    owed = store.members.usable_balances("ac-1")["owed"]
    print(f"figure: 12 threads x 300 on a limit of 1000 -> {outcomes.count('ok')} recorded, "
          f"owed {owed}")
    assert outcomes.count("ok") == 3 and outcomes.count("account_limit") == 9
    assert charges == sales == 3 and owed == 900
    store.close()


def test_hostile_account_fields_refused_whole(tmp_path: Path) -> None:
    """A huge, negative or nested amount, or an account id that is not text, records nothing."""
    from agent.offline_queue import InvalidEvent

    store = Store.open(tmp_path / "s.db", "T-0001", "M-7")
    fill(store, member_record("m-1"), account_record())
    bad: list[dict[str, Any]] = [
        {"account_id": "ac-1", "amount": -5, "method": "cash"},
        {"account_id": "ac-1", "amount": 2**60, "method": "cash"},
        {"account_id": {"$ne": 1}, "amount": 5, "method": "cash"},
        {"account_id": "ac-1", "amount": 5, "method": "bitcoin"},
        {"account_id": "ac-1", "amount": [5], "method": "cash"},
    ]
    refused = 0
    for body in bad:
        try:
            store.outbox.append("account_payment", body, at=AT, staff_id=None, offline=False)
        except InvalidEvent:
            refused += 1
    assert refused == len(bad)
    assert store.db.execute_sql("SELECT count(*) FROM events").fetchone()[0] == 0
    print(f"figure: {refused}/{len(bad)} hostile account_payment bodies refused")
    store.close()
