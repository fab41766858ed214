"""Pruning: only what the club applied and the cache reflects, or after retention."""


from agent.offline_queue import Store

from .conftest import Clock
from .helpers import AT, member_record, sale_body

T = "T-0001"


def test_prune_only_accepted_and_reflected(store: Store, clock: Clock) -> None:
    store.apply_changes({"from_version": 0, "to_version": 1,
                         "members": [member_record(applied={T: 0})], "removed": []})
    s1 = store.append("sale", sale_body(earned=(10,)), at=AT, staff_id=None, offline=True)
    s2 = store.append("sale", sale_body(earned=(20,)), at=AT, staff_id=None, offline=True)
    exp = store.append("expense", {"amount": 1, "category": "c", "note": ""}, at=AT,
                       staff_id=None, offline=True)
    rej = store.append("expense", {"amount": 2, "category": "c", "note": ""}, at=AT,
                       staff_id=None, offline=True)
    waiting = store.append("sale", sale_body(earned=(40,)), at=AT, staff_id=None, offline=True)
    store.apply_ack([s1.id, s2.id, exp.id], [(rej.id, "bad")], applied_seq=4)
    clock.advance(days=8)
    # The club applied 1-4, but the member record only reflects seq 1 so far.
    store.apply_changes({"from_version": 1, "to_version": 2,
                         "members": [member_record(version=2, points=1010,
                                                   applied={T: s1.seq})], "removed": []})
    before = store.usable_balances("m-1")
    assert store.prune() == 2  # s1 (reflected) and the expense (no member)
    assert [e.seq for e in store.events()] == [s2.seq, rej.seq, waiting.seq]
    assert store.usable_balances("m-1") == before == {"points": 1070}
    # Rejected and waiting events are never pruned, even past retention.
    clock.advance(days=40)
    assert store.prune() == 1  # s2, past retention
    assert [e.seq for e in store.events()] == [rej.seq, waiting.seq]
    # The seq counter never goes back, even with the newest events pruned.
    store.apply_ack([waiting.id], [], applied_seq=waiting.seq)
    clock.advance(days=40)
    store.prune()
    nxt = store.append("expense", {"amount": 1, "category": "c", "note": ""}, at=AT,
                       staff_id=None, offline=True)
    assert nxt.seq == waiting.seq + 1


def test_recent_events_stay_for_refunds_and_day_views(store: Store, clock: Clock) -> None:
    s1 = store.append("sale", sale_body(None), at=AT, staff_id=None, offline=True)
    store.apply_ack([s1.id], [], applied_seq=s1.seq)
    clock.advance(days=1)
    assert store.prune() == 0
    clock.advance(days=7)
    assert store.prune() == 1
