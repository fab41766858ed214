"""The outbox: seq, states, batches, stats."""

import json
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.errors import StorageError
from agent.offline_queue import AlreadyRefunded, InvalidEvent, Store
from agent.offline_queue import events as ev

from .conftest import Clock
from .helpers import AT, sale_body


def test_append_returns_the_full_wire_event_durably(store: Store, db_path: Path) -> None:
    e = store.outbox.append("sale", sale_body(), at=AT, staff_id="s-1", offline=True)
    assert e.seq == 1 and e.type == "sale"
    assert e.body["id"] == e.id and e.body["seq"] == 1
    assert e.body["at"] == "2026-11-24T10:00:00.000+00:00"
    assert e.body["merchant_id"] == "M-7" and e.body["terminal_id"] == "T-0001"
    assert e.body["staff_id"] == "s-1" and e.body["offline"] is True
    # Seen by a second, independent connection: it is committed.
    other = Store.open(db_path, readonly=True)
    try:
        assert other.outbox.events()[0].event == e.body
    finally:
        other.close()


def test_seq_is_gap_free_and_bad_input_uses_no_seq(store: Store) -> None:
    store.outbox.append("expense", {"amount": 5, "category": "milk", "note": ""}, at=AT,
                 staff_id=None, offline=False)
    with pytest.raises(InvalidEvent):
        store.outbox.append("expense", {"amount": "5", "category": "x", "note": ""}, at=AT,
                     staff_id=None, offline=False)
    with pytest.raises(InvalidEvent):
        store.outbox.append("expense", {"amount": 5, "category": "x", "note": "x" * 300_000}, at=AT,
                     staff_id=None, offline=False)
    with pytest.raises(InvalidEvent, match="offset"):
        store.outbox.append("expense", {"amount": 5, "category": "x", "note": ""},
                     at=AT.replace(tzinfo=None), staff_id=None, offline=False)
    e = store.outbox.append("cash_receipt", {"amount": 5, "category": "float", "note": ""}, at=AT,
                     staff_id=None, offline=False)
    assert e.seq == 2
    assert [x.seq for x in store.outbox.events()] == [1, 2]


def test_threads_appending_at_once_get_unique_gap_free_seqs(store: Store) -> None:
    seqs: list[int] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(25):
            e = store.outbox.append("expense", {"amount": 1, "category": "c", "note": ""}, at=AT,
                             staff_id=None, offline=False)
            with lock:
                seqs.append(e.seq)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(seqs) == list(range(1, 101))
    ids = [x.id for x in store.outbox.events()]
    assert ids == sorted(ids)  # UUIDv7 order follows seq order


def test_states_and_their_times(store: Store, clock: Clock) -> None:
    a = store.outbox.append("sale", sale_body(), at=AT, staff_id=None, offline=True)
    b = store.outbox.append("sale", sale_body(), at=AT, staff_id=None, offline=True)
    clock.advance(seconds=5)
    store.outbox.mark_sent([a.id, b.id])
    clock.advance(seconds=5)
    store.outbox.apply_ack([a.id], [{"id": b.id, "reason": "unknown member"}], applied_seq=2)
    ea, eb = store.outbox.events()
    assert ea.state == "accepted" and ea.sent_at == "2026-11-24T09:00:05.000+00:00"
    assert ea.acked_at == "2026-11-24T09:00:10.000+00:00" and ea.attempts == 1
    assert eb.state == "rejected" and eb.reason == "unknown member"
    # A repeated ack changes nothing; an ack never revives a rejected event.
    store.outbox.apply_ack([a.id, b.id], [], applied_seq=1)
    assert [e.state for e in store.outbox.events()] == ["accepted", "rejected"]
    assert store.outbox.club_applied_seq() == 2
    assert store.outbox.next_batch() == []
    assert [e.id for e in store.outbox.events("rejected")] == [b.id]


def test_unacked_events_are_sent_again_in_seq_order(store: Store) -> None:
    ids = [store.outbox.append("sale", sale_body(), at=AT, staff_id=None, offline=True).id
           for _ in range(5)]
    store.outbox.mark_sent(ids[:3])
    assert [e["id"] for e in store.outbox.next_batch()] == ids
    assert [e["id"] for e in store.outbox.next_batch(exclude_ids=ids[:2])] == ids[2:]
    store.outbox.apply_ack(ids[1:2], [], None)
    assert [e["seq"] for e in store.outbox.next_batch(max_events=3)] == [1, 3, 4]


def test_batches_respect_the_byte_limit(store: Store) -> None:
    for i in range(40):
        store.outbox.append("sale", sale_body(note="n" * 10_000 + str(i)), at=AT, staff_id=None,
                     offline=True)
    seen = 0
    while True:
        batch = store.outbox.next_batch()
        if not batch:
            break
        payload = ev.encode_batch("0193a5e2-0000-7000-8000-000000000000", "T-0001", batch)
        assert len(payload) <= ev.MAX_PAYLOAD_BYTES
        assert [e["seq"] for e in batch] == list(range(seen + 1, seen + 1 + len(batch)))
        seen += len(batch)
        store.outbox.apply_ack([e["id"] for e in batch], [], None)
    assert seen == 40


def test_batches_hold_at_most_500_events(store: Store) -> None:
    for _ in range(501):
        store.outbox.append("expense", {"amount": 1, "category": "c", "note": ""}, at=AT,
                     staff_id=None, offline=False)
    assert len(store.outbox.next_batch()) == 500


def test_queue_stats(store: Store) -> None:
    a = store.outbox.append("sale", sale_body(), at=AT, staff_id=None, offline=True)
    store.outbox.append("expense", {"amount": 1, "category": "c", "note": ""},
                 at=AT + timedelta(minutes=1), staff_id=None, offline=True)
    c = store.outbox.append("expense", {"amount": 1, "category": "c", "note": ""},
                     at=AT + timedelta(minutes=2), staff_id=None, offline=True)
    store.outbox.apply_ack([], [(c.id, "bad")], None)
    stats = store.outbox.queue_stats()
    assert stats.pending == 2 and stats.rejected == 1
    assert stats.by_type == {"sale": 1, "expense": 1}
    assert stats.oldest_at == AT
    assert stats.to_dict() == {"pending": 2, "oldest_at": "2026-11-24T10:00:00.000+00:00",
                               "rejected": 1}
    store.outbox.apply_ack([a.id], [], None)
    assert store.outbox.queue_stats().oldest_at == AT + timedelta(minutes=1)


def test_a_sale_is_refunded_once(store: Store) -> None:
    sale = store.outbox.append("sale", sale_body(), at=AT, staff_id=None, offline=True)
    store.outbox.append("refund", {"sale_id": sale.id, "reason": "broken"}, at=AT, staff_id="mgr",
                 offline=True)
    with pytest.raises(AlreadyRefunded):
        store.outbox.append("refund", {"sale_id": sale.id, "reason": "again"}, at=AT,
                            staff_id="mgr",
                     offline=True)
    exp = store.outbox.append("expense", {"amount": 1, "category": "c", "note": ""}, at=AT,
                       staff_id=None, offline=True)
    with pytest.raises(InvalidEvent, match="not a sale"):
        store.outbox.append("refund", {"sale_id": exp.id, "reason": "x"}, at=AT, staff_id=None,
                     offline=True)
    assert store.outbox.last_seq() == 3


def test_store_belongs_to_one_terminal(store: Store, db_path: Path) -> None:
    store.outbox.append("sale", sale_body(), at=AT, staff_id=None, offline=True)
    with pytest.raises(StorageError, match="belongs to terminal T-0001"):
        Store.open(db_path, "T-0002", "M-7")


def test_bodies_are_stored_as_compact_json(store: Store) -> None:
    e = store.outbox.append("sale", sale_body(), at=AT, staff_id=None, offline=True)
    raw = store.db.execute_sql("SELECT body, size FROM events").fetchone()
    assert json.loads(raw[0]) == e.body and raw[1] == len(ev.encode_json(e.body))


def test_events_between_for_a_day_summary(store: Store) -> None:
    store.outbox.append("sale", sale_body(), at=AT, staff_id=None, offline=True)
    store.outbox.append("sale", sale_body(), at=AT + timedelta(days=1), staff_id=None, offline=True)
    day = store.outbox.events_between(AT - timedelta(hours=10), AT + timedelta(hours=10), ["sale"])
    assert [e["seq"] for e in day] == [1] and day[0]["_state"] == "pending"


def test_processes_appending_at_once_share_one_gap_free_counter(db_path: Path,
                                                                 store: Store) -> None:
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from agent.offline_queue import Store\n"
        "from tests.agent.offline_queue.helpers import AT, sale_body\n"
        "s = Store.open(sys.argv[1], 'T-0001', 'M-7')\n"
        "for _ in range(30):\n"
        "    print(s.outbox.append('sale', sale_body(), at=AT, staff_id=None, offline=True).seq)\n"
    )
    root = Path(__file__).resolve().parents[3]
    procs = [subprocess.Popen([sys.executable, "-c", script, str(db_path)], cwd=root,
                              stdout=subprocess.PIPE, text=True) for _ in range(3)]
    seqs = []
    for p in procs:
        out, _ = p.communicate(timeout=120)
        assert p.returncode == 0
        seqs += [int(x) for x in out.split()]
    assert sorted(seqs) == list(range(1, 91))
    assert [e.seq for e in store.outbox.events()] == list(range(1, 91))


def test_a_lock_held_too_long_is_a_clear_storage_error(db_path: Path, store: Store) -> None:
    import sqlite3

    other = Store.open(db_path, "T-0001", "M-7", timeout=0.2)
    holder = sqlite3.connect(db_path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StorageError, match="locked by another process"):
            other.outbox.append("sale", sale_body(), at=AT, staff_id=None, offline=True)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert other.outbox.append("sale", sale_body(), at=AT, staff_id=None, offline=True).seq == 1
    other.close()


@settings(max_examples=25)
@given(notes=st.lists(st.integers(min_value=0, max_value=60_000), min_size=1, max_size=30),
       max_events=st.integers(min_value=1, max_value=12),
       max_bytes=st.integers(min_value=2_000, max_value=200_000))
def test_batches_always_fit_and_cover_everything_in_order(
        notes: list[int], max_events: int, max_bytes: int) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        s = Store.open(Path(tmp) / "db", "T-0001", "M-7")
        try:
            for n in notes:
                s.outbox.append("sale", sale_body(note="é" * (n // 2)), at=AT, staff_id=None,
                         offline=True)
            sent: list[int] = []
            while batch := s.outbox.next_batch(max_events=max_events, max_bytes=max_bytes):
                size = len(ev.encode_batch("0193a5e2-0000-7000-8000-000000000000", "T-0001",
                                           batch))
                assert len(batch) <= max_events
                assert size <= max_bytes or len(batch) == 1  # one event always goes
                sent += [e["seq"] for e in batch]
                s.outbox.apply_ack([e["id"] for e in batch], [], None)
            assert sent == list(range(1, len(notes) + 1))
        finally:
            s.close()
