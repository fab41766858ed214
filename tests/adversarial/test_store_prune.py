"""Bounded outbox: pruning under load never loses a sale or a report.

The outbox used to grow for ever (nothing called ``Store.prune``). Now the
daemon prunes at start and hourly, in small batches. What could go wrong, and is
attacked here: pruning while sales and acks and member updates arrive from
other threads; an event the cache does not reflect (a member record the club
never refreshes) pruned by age; today's report or day counters changed by a
prune; a sale kept waiting behind a long prune.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agent.config import load_config
from agent.errors import ConfigError
from agent.offline_queue import Store
from agent.offline_queue.store import MIN_KEEP
from tests.agent.daemon.support import terminal_dir
from tests.agent.offline_queue.conftest import Clock
from tests.agent.offline_queue.helpers import AT, member_record, sale_body

T = "T-0001"
LATER = datetime(2100, 1, 1, tzinfo=UTC)  # every ack is then older than any keep


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> Iterator[Store]:
    s = Store.open(tmp_path / "clubterm.db", T, "M-7", clock=clock)
    yield s
    s.close()


def _club_record(member: str, version: int, points: int, applied: int) -> dict[str, Any]:
    return member_record(member, version=version, tokens=(f"nfc:{member}",), points=points,
                         applied={T: applied})


def test_prune_during_concurrent_appends_acks_and_member_updates(tmp_path: Path) -> None:
    sales = 400
    members = ["m-0", "m-1", "m-2", "m-3", "m-stale"]  # m-stale: the club never refreshes it
    store = Store.open(tmp_path / "clubterm.db", T, "M-7")
    store.members.apply_changes({"from_version": 0, "to_version": 1, "removed": [],
                         "members": [_club_record(m, 1, 1000, 0) for m in members]})
    appended: dict[int, tuple[str, str, int]] = {}  # seq -> (id, member, points)
    appended_lock = threading.Lock()
    done = threading.Event()
    errors: list[BaseException] = []
    rejected: set[str] = set()
    pruned = [0]

    def appender() -> None:
        try:
            for i in range(sales):
                member, points = members[i % len(members)], i % 7 + 1
                e = store.outbox.append("sale", sale_body(member, earned=(points,)), at=AT,
                                 staff_id=None, offline=True)
                with appended_lock:
                    appended[e.seq] = (e.id, member, points)
        except BaseException as exc:
            errors.append(exc)
        finally:
            done.set()

    def club() -> None:
        """Acks in seq order (every 11th rejected), then sends member records whose
        balances and applied[T] reflect what it accepted (never for m-stale)."""
        version, applied, rounds = 1, 0, 0
        try:
            while True:
                batch = store.outbox.next_batch(max_events=20)
                if not batch:
                    if done.is_set():
                        return
                    time.sleep(0.002)
                    continue
                bad = [(b["id"], "test") for b in batch if b["seq"] % 11 == 0]
                rejected.update(i for i, _ in bad)
                store.outbox.apply_ack([b["id"] for b in batch if b["seq"] % 11], bad,
                                applied_seq=batch[-1]["seq"])
                applied = batch[-1]["seq"]
                rounds += 1
                if rounds % 2 == 0:
                    with appended_lock:
                        known = dict(appended)
                    records = []
                    for m in members[:-1]:
                        points = 1000 + sum(p for s, (i, mm, p) in known.items()
                                            if mm == m and s <= applied and i not in rejected)
                        records.append(_club_record(m, version + 1, points, applied))
                    assert store.members.apply_changes({"from_version": version,
                                                "to_version": version + 1,
                                                "members": records, "removed": []})
                    version += 1
        except BaseException as exc:
            errors.append(exc)

    def pruner() -> None:
        try:
            while not done.is_set() or store.outbox.queue_stats().pending:
                pruned[0] += store.outbox.prune(now=LATER, batch=7, limit=7)
                time.sleep(0.001)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=f) for f in (appender, club, pruner)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert not any(t.is_alive() for t in threads)
    assert pruned[0] > 0, "pruning never overlapped the appends"
    during = pruned[0]

    # The club's last word: every member but m-stale reflects everything.
    applied = store.outbox.club_applied_seq()
    version = store.members.members_version()
    records = [_club_record(m, version + 1, 1000 + sum(
        p for i, mm, p in appended.values() if mm == m and i not in rejected), applied)
        for m in members[:-1]]
    store.members.apply_changes({"from_version": version, "to_version": version + 1,
                         "members": records, "removed": []})
    pruned[0] += store.outbox.prune(now=LATER)

    assert sorted(appended) == list(range(1, sales + 1)) and store.outbox.last_seq() == sales
    # Every sale counts exactly once, pruned or not.
    for m in members:
        expected = 1000 + sum(p for i, mm, p in appended.values()
                              if mm == m and i not in rejected)
        assert store.members.usable_balances(m)["points"] == expected, m
    left = {e.id: e for e in store.outbox.events()}
    assert {i for i in rejected} <= set(left)  # rejected events all stay
    assert all(left[i].state == "rejected" for i in rejected)
    stale = {i for i, mm, _ in appended.values() if mm == "m-stale" and i not in rejected}
    assert stale <= set(left)  # accepted but never reflected: kept
    assert set(left) == rejected | stale  # everything else went
    assert store.integrity_check() == ["ok"]
    _assert_running_sums(store)
    store.close()
    print(f"figure: {sales} sales, {during} pruned during the run in "
          f"{time.monotonic() - started:.1f} s, {len(left)} kept (rejected + unreflected)")


def _assert_running_sums(store: Store) -> None:
    """The balance projection's derived rows equal a recomputation from scratch."""
    bad = store.db.execute_sql(
        "SELECT member_id, kind, seq FROM (SELECT member_id, kind, seq, running, sum(amount) "
        "OVER (PARTITION BY member_id, kind ORDER BY seq) AS r FROM event_deltas) "
        "WHERE running != r").fetchall()
    assert bad == []
    totals = dict(((m, k), t) for m, k, t in store.db.execute_sql(
        "SELECT member_id, kind, total FROM delta_totals").fetchall())
    sums = dict(((m, k), t) for m, k, t in store.db.execute_sql(
        "SELECT member_id, kind, sum(amount) FROM event_deltas GROUP BY member_id, kind"
    ).fetchall())
    assert totals == sums


def test_pruning_out_of_order_keeps_the_running_sums(store: Store, clock: Clock) -> None:
    """Pruned rows between kept ones (an event whose `at` is recent, recorded
    before older-dated ones, stays by `keep`): every later running sum shifts by
    exactly what went before it."""
    store.members.apply_changes({"from_version": 0, "to_version": 1, "removed": [],
                         "members": [member_record("m-1", applied={T: 0}),
                                     member_record("m-2", tokens=("nfc:2",), applied={T: 0})]})
    events = [store.outbox.append("sale", sale_body("m-1" if i % 3 else "m-2", earned=(i + 1,),
                                             credits_earned=(("credit.club", i),)),
                           at=AT + timedelta(days=90 if i in (1, 4, 8) else 0, minutes=i),
                           staff_id=None, offline=True)
              for i in range(12)]
    store.outbox.apply_ack([e.id for e in events], [], applied_seq=events[-1].seq)
    before = {m: store.members.usable_balances(m) for m in ("m-1", "m-2")}
    # m-1 reflects up to the 7th event, m-2 nothing: m-1's first rows go, its
    # later ones and all of m-2's stay; then the cache reflects m-1's rows in steps.
    for version, upto in ((2, events[6].seq), (3, events[9].seq), (4, events[11].seq)):
        clock.now = AT + timedelta(days=100)
        store.members.apply_changes({"from_version": version - 1, "to_version": version,
                             "removed": [], "members": [member_record(
                                 "m-1", version=version, applied={T: upto},
                                 points=1000 + sum(i + 1 for i in range(12)
                                                   if i % 3 and events[i].seq <= upto),
                                 credit=sum(i for i in range(12)
                                            if i % 3 and events[i].seq <= upto))]})
        assert store.outbox.prune(batch=2) > 0
        _assert_running_sums(store)
        kept = {e.seq for e in store.outbox.events()}
        assert {events[i].seq for i in (1, 4, 8)} <= kept
        assert store.members.usable_balances("m-2") == before["m-2"]
        assert store.members.usable_balances("m-1") == before["m-1"]


def test_an_unreflected_event_stays_however_old(store: Store, clock: Clock) -> None:
    store.members.apply_changes({"from_version": 0, "to_version": 1, "removed": [],
                         "members": [member_record(applied={T: 0})]})
    sale = store.outbox.append("sale", sale_body(earned=(25,)), at=AT, staff_id=None, offline=True)
    store.outbox.apply_ack([sale.id], [], applied_seq=sale.seq)
    for days in (36, 400, 3650):
        clock.now = AT + timedelta(days=days)
        assert store.outbox.prune() == 0
    assert store.members.usable_balances("m-1") == {"points": 1025}
    assert [e.id for e in store.outbox.events()] == [sale.id]


def test_todays_report_and_counters_are_the_same_after_a_prune(store: Store,
                                                               clock: Clock) -> None:
    store.members.apply_changes({"from_version": 0, "to_version": 1, "removed": [],
                         "members": [member_record(applied={T: 0})]})
    now = AT + timedelta(days=100)
    day = now.replace(hour=0, minute=0)
    ats = [now - timedelta(days=60), day - timedelta(minutes=1), day + timedelta(minutes=1),
           now - timedelta(minutes=5)]
    clock.now = ats[0]
    events = []
    for at in ats:
        events.append(store.outbox.append("sale", sale_body(redeemed_points=5, redeemed_value=5),
                                   at=at, staff_id=None, offline=False))
    store.outbox.apply_ack([e.id for e in events], [], applied_seq=events[-1].seq)
    store.members.apply_changes({"from_version": 1, "to_version": 2, "removed": [],
                         "members": [member_record(version=2, applied={T: events[-1].seq})]})
    clock.now = now
    report = store.outbox.events_between(day, day + timedelta(days=1))
    counters = store.members.offline_counters("m-1", day, day + timedelta(days=1))
    assert store.outbox.prune(keep=MIN_KEEP) == 1  # only the one 60 days old
    assert store.outbox.events_between(day, day + timedelta(days=1)) == report
    assert store.members.offline_counters("m-1", day, day + timedelta(days=1)) == counters == (10,
                                                                                               0)
    assert len(report) == 2
    with pytest.raises(ValueError, match="at least 2 days"):
        store.outbox.prune(keep=timedelta(hours=20))


def test_keep_days_below_two_is_refused_in_the_configuration(tmp_path: Path) -> None:
    with terminal_dir() as files:
        files.config.write_text(files.config.read_text() + "\n[store]\nkeep_days = 1\n")
        with pytest.raises(ConfigError, match=r"\[store.keep_days\].*at least 2"):
            load_config(files.config)
        files.config.write_text(files.config.read_text().replace(
            "keep_days = 1", "keep_days = 90\nprune_every_minutes = 15"))
        cfg = load_config(files.config)
        assert (cfg.store_keep_days, cfg.store_prune_every_min) == (90, 15)


def test_the_agent_prunes_at_start_and_sales_are_answered_meanwhile() -> None:
    from agent.daemon import PRUNE_BATCH, Agent
    from agent.localapi.client import SocketClient
    from agent.sdnotify import Notifier

    backlog = 3000
    with terminal_dir() as files:
        long_ago = datetime.now(UTC) - timedelta(days=100)
        seed = Store.open(files.db, "T-0001", "M-7", clock=lambda: long_ago)
        with seed.db.atomic():  # set-up only: one transaction
            from agent.offline_queue import events as ev
            for _ in range(backlog):
                seed.outbox.append_in_tx("expense", {"amount": 1, "category": "c", "note": ""},
                                   long_ago, ev.format_at(long_ago), "1", True)
        seed.outbox.apply_ack([e.id for e in seed.outbox.events()], [], applied_seq=backlog)
        seed.close()

        async def scenario() -> tuple[list[float], int]:
            agent = Agent(load_config(files.config), notifier=Notifier({}))
            run = asyncio.create_task(agent.run())
            for _ in range(500):
                if agent.ready_after_s is not None:
                    break
                await asyncio.sleep(0.01)
            client = SocketClient(files.socket)
            login = await client.call("staff.login", {"staff_id": "1", "pin": "1234"})
            waits = []
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                quote = await client.call("sale.quote", {"amount": 1000})
                t0 = time.monotonic()
                await client.call("sale.commit", {"quote_id": quote["quote_id"],
                                                  "session": login["session"]})
                waits.append(time.monotonic() - t0)
                assert agent.db is not None
                left = len(await agent.db.read(agent.store.outbox.events, "accepted"))
                if left == 0 and len(waits) >= 5:
                    break
            await client.close()
            agent.request_stop()
            assert await asyncio.wait_for(run, 15) == 0
            return waits, left

        waits, left = asyncio.run(scenario())
        assert left == 0
        assert max(waits) < 2.0, waits
        print(f"figure: {backlog} old events pruned at start in batches of {PRUNE_BATCH}; "
              f"{len(waits)} sales meanwhile, longest commit {max(waits) * 1000:.0f} ms")


def test_bench_fast_mode_storage_levels_off_and_writes_like_plain_sqlite(
        tmp_path: Path) -> None:
    """``python -m bench.store --fast``'s parts, asserted: the figures are bounded."""
    from bench.store import bench_appends, bench_sales

    appends = bench_appends(tmp_path, 100)
    assert 0.8 < appends["bytes_ratio"] < 1.25, appends
    rows: list[dict[str, Any]] = []
    life = bench_sales(tmp_path, 5000, per_day=1000, keep_days=2, members=200,
                       progress=rows.append)
    # Two days of sales plus the ack lag and up to an hour between prunes.
    assert life["events"] <= 2 * 1000 + 100 + 1000 // 24
    assert life["last_seq"] == 5000 and life["pruned"] == 5000 - life["events"]
    half = rows[len(rows) // 2 - 1]
    assert life["db_mb"] <= half["db_mb"] * 1.05, rows  # flat after the first days
    print(f"figure: bytes ratio store/sqlite3 {appends['bytes_ratio']:.2f}; 5,000 sales "
          f"kept 2 days: {life['events']:,} events, {life['db_mb']:.1f} MB (at half way "
          f"{half['db_mb']:.1f} MB), longest prune {life['longest_prune_ms']:.0f} ms")
