"""Issue #21: the promotion counts come from an index of each sale's promotions.

``promotion_counts`` used to read every sale body of the outbox through ``LIKE``
at every quote. Schema 4 keeps each sale's ``uses``, ``codes_used`` and
``coupons_issued`` in ``sale_promotions``, written in the sale's own transaction
and back-filled from the events when a v3 store is opened. These tests attack
the index the way the world would: random sales of several members, refunds of
random sales, rejections of sales and of refunds by the club, member records
moving ``applied[T]``, pruning, and a store migrated from schema 3; every time
the counts must equal the old full-scan definition
(:func:`agent.offline_queue.promotions.full_scan_counts`).
"""

from __future__ import annotations

import random
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.errors import LimitExceeded
from agent.offline_queue import Store
from agent.offline_queue.events import format_at
from agent.offline_queue.promotions import full_scan_counts
from agent.offline_queue.schema import SCHEMA_VERSION
from tests.agent.offline_queue.helpers import member_record, sale_body

T = "T-0001"
TEHRAN = ZoneInfo("Asia/Tehran")
START = datetime(2026, 11, 20, 19, 0, tzinfo=UTC)  # near local midnight in Tehran
MEMBERS = ("m-1", "m-2", "m-3", None)
RULES = ("bday", "welcome", "budget-a")


def _promo_sale(rng: random.Random, member: str | None, n: int) -> dict[str, Any]:
    body = sale_body(member, earned=())
    if rng.random() < 0.6:
        body["uses"] = [{"rule": rng.choice(RULES), "amount": rng.randrange(0, 900)}
                        for _ in range(rng.randrange(1, 3))]
    if rng.random() < 0.3:
        body["codes_used"] = [{"rule": "vip", "code": f"VIP-{rng.randrange(5)}",
                               "single_use": rng.random() < 0.7}]
    if rng.random() < 0.2:
        body["coupons_issued"] = [{"rule": "next", "code": f"NX-{n}", "for_rule": "next10",
                                   "expires": "2026-12-31"}]
    if rng.random() < 0.1:
        # Text that looks like the keys inside a note: the old LIKE matched it.
        body["lines"][0]["note"] = 'said "uses" and "codes_used"'
    return body


def _all_counts(store: Store, conn: sqlite3.Connection) -> None:
    for member in MEMBERS:
        assert store.outbox.promotion_counts(member, TEHRAN) == \
            full_scan_counts(conn, member, TEHRAN), member


def _run(store: Store, rng: random.Random, steps: int) -> list[str]:
    """Random sales, refunds, acks (with rejections) and member updates; returns
    the sale ids."""
    conn = sqlite3.connect(str(store.path))
    sales: list[str] = []
    waiting: list[str] = []
    version = 1
    try:
        for n in range(steps):
            at = START + timedelta(hours=3 * n)
            roll = rng.random()
            if roll < 0.6 or not sales:
                e = store.outbox.append("sale", _promo_sale(rng, rng.choice(MEMBERS), n), at=at,
                                        staff_id="s-1", offline=True)
                sales.append(e.id)
                waiting.append(e.id)
            elif roll < 0.75:
                target = rng.choice(sales)
                try:
                    e = store.outbox.append("refund", {"sale_id": target, "reason": "r"}, at=at,
                                            staff_id="s-1", offline=True)
                    waiting.append(e.id)
                except ValueError:
                    pass  # refunded already: refused, nothing recorded
            elif roll < 0.9 and waiting:
                picked = rng.sample(waiting, min(len(waiting), rng.randrange(1, 4)))
                rejected = [(i, "club says no") for i in picked if rng.random() < 0.4]
                accepted = [i for i in picked if i not in dict(rejected)]
                store.outbox.apply_ack(accepted, rejected, store.outbox.last_seq())
                waiting = [i for i in waiting if i not in picked]
            else:
                member = rng.choice(MEMBERS[:3])
                version += 1
                applied = rng.randrange(0, store.outbox.last_seq() + 1)
                store.members.apply_changes({
                    "from_version": version - 1, "to_version": version, "removed": [],
                    "members": [member_record(member, version=version, applied={T: applied})]})
            _all_counts(store, conn)
    finally:
        conn.close()
    return sales


@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), steps=st.integers(1, 40))
def test_counts_equal_the_full_scan_under_random_sales_refunds_and_acks(
        tmp_path_factory: pytest.TempPathFactory, seed: int, steps: int) -> None:
    folder = tmp_path_factory.mktemp("promo")
    store = Store.open(folder / "clubterm.db", T, "M-7", clock=lambda: START)
    try:
        store.members.apply_changes({"from_version": 0, "to_version": 1, "removed": [],
                                     "members": [member_record(m) for m in MEMBERS[:3]]})
        _run(store, random.Random(seed), steps)
    finally:
        store.close()


def _as_v3(path: Path) -> None:
    """Turn a schema-4 file into the file a v3 agent left: no sale_promotions table."""
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE sale_promotions")
        conn.execute("PRAGMA user_version = 3")
    conn.close()


def test_a_store_migrated_from_v3_gives_the_same_counts(tmp_path: Path) -> None:
    path = tmp_path / "clubterm.db"
    store = Store.open(path, T, "M-7", clock=lambda: START)
    store.members.apply_changes({"from_version": 0, "to_version": 1, "removed": [],
                                 "members": [member_record(m) for m in MEMBERS[:3]]})
    _run(store, random.Random(21), 120)
    before = {m: store.outbox.promotion_counts(m, TEHRAN) for m in MEMBERS}
    store.close()
    _as_v3(path)
    with sqlite3.connect(path) as conn:
        # A v3 agent's answer: the full scan, on the v3 file.
        v3 = {m: full_scan_counts(conn, m, TEHRAN) for m in MEMBERS}
    conn.close()
    assert v3 == before
    again = Store.open(path, T, "M-7", clock=lambda: START)
    try:
        assert again.schema_version() == SCHEMA_VERSION >= 4  # v4 and every later step
        assert {m: again.outbox.promotion_counts(m, TEHRAN) for m in MEMBERS} == v3
        assert again.integrity_check() == ["ok"]
    finally:
        again.close()
    assert len(list(tmp_path.glob("clubterm.db.v3-*.bak"))) == 1


def test_a_refused_sale_leaves_no_promotion_row(tmp_path: Path) -> None:
    """The index row is written in the sale's transaction: a sale refused inside it
    (funds) leaves nothing behind, and later counts do not see it."""
    store = Store.open(tmp_path / "clubterm.db", T, "M-7", clock=lambda: START)
    try:
        store.members.apply_changes({"from_version": 0, "to_version": 1, "removed": [],
                                     "members": [member_record("m-1", points=10)]})
        body = {**sale_body("m-1", redeemed_points=500, redeemed_value=500),
                "uses": [{"rule": "bday", "amount": 500}]}
        with pytest.raises(LimitExceeded):
            store.outbox.append("sale", body, at=START, staff_id=None, offline=True,
                                check_funds=True)
        rows = store.db.execute_sql("SELECT count(*) FROM sale_promotions").fetchone()[0]
        assert rows == 0
        assert store.outbox.promotion_counts("m-1", TEHRAN)["budget_used"] == {}
    finally:
        store.close()


def test_pruned_sales_leave_the_index(tmp_path: Path) -> None:
    clock = [START]
    store = Store.open(tmp_path / "clubterm.db", T, "M-7", clock=lambda: clock[0])
    try:
        ids = [store.outbox.append("sale", {**sale_body(None, earned=()),
                                            "uses": [{"rule": "bday", "amount": 1}]},
                                   at=START, staff_id=None, offline=True).id
               for _ in range(5)]
        store.outbox.apply_ack(ids, [], applied_seq=5)
        clock[0] = START + timedelta(days=40)
        assert store.outbox.prune() == 5
        rows = store.db.execute_sql("SELECT count(*) FROM sale_promotions").fetchone()[0]
        assert rows == 0
        assert store.outbox.promotion_counts(None, TEHRAN)["store_uses"] == {}
    finally:
        store.close()


def test_the_index_reads_far_less_than_the_full_scan(tmp_path: Path) -> None:
    """A bounded figure (the bench measures 100k sales): 4,000 sales, 5% with a rule
    use; the indexed counts must equal the scan and not be slower."""
    store = Store.open(tmp_path / "clubterm.db", T, "M-7", clock=lambda: START)
    try:
        with store.db.atomic():  # set-up only: one transaction
            for n in range(4000):
                body = sale_body(f"m-{n % 50}", earned=(), note="x" * 300)
                if n % 20 == 0:
                    body["uses"] = [{"rule": "bday", "amount": 100}]
                store.outbox.append_in_tx("sale", body, START, format_at(START),
                                          None, True)
        conn = store.db.connection()
        timings = {}
        for name, fn in (("scan", full_scan_counts),
                         ("index", lambda c, m, tz: store.outbox.promotion_counts(m, tz))):
            best = float("inf")
            for _ in range(5):
                started = time.perf_counter()
                out = fn(conn, "m-7", TEHRAN)
                best = min(best, time.perf_counter() - started)
            timings[name] = (best, out)
        assert timings["scan"][1] == timings["index"][1]
        print(f"figure: promotion_counts over 4,000 sales (5% with a use): full scan "
              f"{timings['scan'][0] * 1000:.2f} ms, index {timings['index'][0] * 1000:.2f} ms")
        assert timings["index"][0] <= timings["scan"][0]
    finally:
        store.close()


def test_the_backfill_survives_bodies_that_are_not_json_objects(tmp_path: Path) -> None:
    """A v3 file whose sale bodies were damaged by hand or by an old bug (not JSON, a
    JSON list) still upgrades; those sales get no index row, no event is dropped."""
    path = tmp_path / "clubterm.db"
    store = Store.open(path, T, "M-7", clock=lambda: START)
    for _ in range(3):
        store.outbox.append("sale", {**sale_body(None, earned=()),
                                     "uses": [{"rule": "bday", "amount": 7}]},
                            at=START, staff_id=None, offline=True)
    store.close()
    _as_v3(path)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE events SET body = 'not json {' WHERE seq = 1")
        conn.execute("UPDATE events SET body = '[1, 2]' WHERE seq = 2")
    conn.close()
    again = Store.open(path, T, "M-7", clock=lambda: START)
    try:
        assert again.schema_version() == SCHEMA_VERSION
        assert [e for (e,) in again.db.execute_sql("SELECT seq FROM sale_promotions")] == [3]
        assert again.db.execute_sql("SELECT count(*) FROM events").fetchone()[0] == 3
        assert again.outbox.promotion_counts(None, TEHRAN)["budget_used"] == {"bday": 7}
    finally:
        again.close()
