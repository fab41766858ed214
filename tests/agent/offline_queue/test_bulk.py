"""Set-based outbox calls of the send path: bulk acks and pre-encoded batches."""

import json
import tempfile
import uuid
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.offline_queue import Store
from agent.offline_queue import events as ev

from .conftest import Clock
from .helpers import AT, sale_body

BATCH_ID = "0193a5e2-0000-7000-8000-000000000000"


def test_bulk_ack_with_accepted_rejected_and_unknown_ids(store: Store, clock: Clock) -> None:
    ids = [store.outbox.append("sale", sale_body(earned=(10,)), at=AT, staff_id=None,
                        offline=True).id for _ in range(1200)]
    before = store.members.usable_balances("m-1")["points"]
    assert before == 12_000
    store.outbox.mark_sent(ids[:100])
    clock.advance(seconds=3)
    unknown = [str(uuid.uuid4()) for _ in range(50)]
    accepted = ids[:1000] + unknown          # more than one chunk of ids
    rejected = [(ids[1000], "unknown member"), (ids[1001], "duplicate"),
                (unknown[0], "nobody knows"), (ids[0], "too late")]  # ids[0] is accepted
    store.outbox.apply_ack(accepted, rejected, applied_seq=1000)
    by_id = {e.id: e for e in store.outbox.events()}
    assert len(by_id) == 1200                 # nothing lost, nothing added
    assert all(by_id[i].state == "accepted" for i in ids[:1000])
    assert by_id[ids[1000]].state == "rejected" and by_id[ids[1000]].reason == "unknown member"
    assert by_id[ids[1001]].state == "rejected" and by_id[ids[1001]].reason == "duplicate"
    assert all(by_id[i].state == "pending" for i in ids[1002:])
    # An accepted event was sent, with or without its own "sent" mark.
    assert by_id[ids[0]].sent_at == "2026-11-24T09:00:00.000+00:00"
    assert by_id[ids[500]].sent_at == "2026-11-24T09:00:03.000+00:00"
    assert all(by_id[i].attempts == 1 for i in ids[:1000])
    # Rejected sales stop counting; the accepted ones are now the club's (applied 1000).
    assert store.members.usable_balances("m-1")["points"] == before - 20
    assert store.outbox.club_applied_seq() == 1000
    assert [e["id"] for e in store.outbox.next_batch()] == ids[1002:1200]
    stats = store.outbox.queue_stats()
    assert stats.pending == 198 and stats.rejected == 2


def _events(store: Store, notes: list[int]) -> None:
    for n in notes:
        store.outbox.append("sale", sale_body(note="é" * (n // 2) + "x" * (n % 7)), at=AT,
                     staff_id=None, offline=True)


@settings(max_examples=40, deadline=None)
@given(notes=st.lists(st.integers(min_value=0, max_value=60_000), min_size=1, max_size=25),
       max_events=st.integers(min_value=1, max_value=12),
       max_bytes=st.integers(min_value=2_000, max_value=200_000),
       skip=st.sets(st.integers(min_value=0, max_value=24), max_size=6))
def test_encoded_batch_equals_the_old_encoding_within_both_limits(
        notes: list[int], max_events: int, max_bytes: int, skip: set[int]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        s = Store.open(Path(tmp) / "db", "T-0001", "M-7")
        try:
            _events(s, notes)
            all_ids = [e.id for e in s.outbox.events()]
            exclude = {all_ids[i] for i in skip if i < len(all_ids)}
            sent: list[str] = []
            while True:
                old = s.outbox.next_batch(max_events, max_bytes, exclude_ids=exclude)
                new = s.outbox.next_batch_encoded(BATCH_ID, "T-0001", max_events, max_bytes,
                                           exclude_ids=exclude)
                if not old:
                    assert new is None
                    break
                assert new is not None
                assert new.payload == ev.encode_batch(BATCH_ID, "T-0001", old)
                assert new.ids == [e["id"] for e in old]
                assert (new.first_seq, new.last_seq) == (old[0]["seq"], old[-1]["seq"])
                assert len(new.ids) <= max_events
                assert len(new.payload) <= max_bytes or len(new.ids) == 1
                assert json.loads(new.payload)["events"] == old
                sent += new.ids
                s.outbox.apply_ack(new.ids, [], None)
            assert sent == [i for i in all_ids if i not in exclude]   # seq order
        finally:
            s.close()


def test_encoded_batches_hold_at_most_500_events_and_256_kib(store: Store) -> None:
    for _ in range(501):
        store.outbox.append("expense", {"amount": 1, "category": "c", "note": ""}, at=AT,
                     staff_id=None, offline=False)
    batch = store.outbox.next_batch_encoded(BATCH_ID, "T-0001")
    assert batch is not None and len(batch.ids) == 500
    store.outbox.apply_ack(batch.ids, [], None)
    store.outbox.apply_ack([e["id"] for e in store.outbox.next_batch()], [], None)
    for i in range(40):
        store.outbox.append("sale", sale_body(note="n" * 10_000 + str(i)), at=AT, staff_id=None,
                     offline=True)
    seqs: list[int] = []
    while batch := store.outbox.next_batch_encoded(BATCH_ID, "T-0001"):
        assert len(batch.payload) <= ev.MAX_PAYLOAD_BYTES
        seqs += [e["seq"] for e in json.loads(batch.payload)["events"]]
        store.outbox.apply_ack(batch.ids, [], None)
    assert seqs == list(range(502, 542))


def test_encoded_batch_after_a_seq_skips_what_the_caller_has_in_flight(store: Store) -> None:
    ids = [store.outbox.append("sale", sale_body(), at=AT, staff_id=None, offline=True).id
           for _ in range(10)]
    first = store.outbox.next_batch_encoded(BATCH_ID, "T-0001", max_events=4)
    assert first is not None and first.ids == ids[:4] and first.last_seq == 4
    second = store.outbox.next_batch_encoded(BATCH_ID, "T-0001", max_events=4,
                                      after_seq=first.last_seq)
    assert second is not None and second.ids == ids[4:8]
    # Without the cursor the same batch needs the in-flight ids excluded.
    again = store.outbox.next_batch_encoded(BATCH_ID, "T-0001", max_events=4, exclude_ids=ids[:4])
    assert again is not None and again.payload == second.payload
    assert store.outbox.next_batch_encoded(BATCH_ID, "T-0001", after_seq=10) is None
