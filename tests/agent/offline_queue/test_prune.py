"""Pruning: only what the club applied and the cache reflects, after the keep period."""


from agent.offline_queue import Store

from .conftest import Clock
from .helpers import AT, member_record, sale_body

T = "T-0001"


def test_prune_only_accepted_and_reflected(store: Store, clock: Clock) -> None:
    store.members.apply_changes({"from_version": 0, "to_version": 1,
                         "members": [member_record(applied={T: 0})], "removed": []})
    s1 = store.outbox.append("sale", sale_body(earned=(10,)), at=AT, staff_id=None, offline=True)
    s2 = store.outbox.append("sale", sale_body(earned=(20,)), at=AT, staff_id=None, offline=True)
    exp = store.outbox.append("expense", {"amount": 1, "category": "c", "note": ""}, at=AT,
                       staff_id=None, offline=True)
    rej = store.outbox.append("expense", {"amount": 2, "category": "c", "note": ""}, at=AT,
                       staff_id=None, offline=True)
    waiting = store.outbox.append("sale", sale_body(earned=(40,)), at=AT, staff_id=None,
                                  offline=True)
    store.outbox.apply_ack([s1.id, s2.id, exp.id], [(rej.id, "bad")], applied_seq=4)
    clock.advance(days=36)
    # The club applied 1-4, but the member record only reflects seq 1 so far.
    store.members.apply_changes({"from_version": 1, "to_version": 2,
                         "members": [member_record(version=2, points=1010,
                                                   applied={T: s1.seq})], "removed": []})
    before = store.members.usable_balances("m-1")
    assert store.outbox.prune() == 2  # s1 (reflected) and the expense (no member)
    assert [e.seq for e in store.outbox.events()] == [s2.seq, rej.seq, waiting.seq]
    assert store.members.usable_balances("m-1") == before == {"points": 1070}
    # However old: an event the cache does not reflect stays (protocol.md, issue
    # #13: this used to go after 35 days), as do rejected and waiting ones.
    clock.advance(days=400)
    assert store.outbox.prune() == 0
    store.members.apply_changes({"from_version": 2, "to_version": 3,
                         "members": [member_record(version=3, points=1030,
                                                   applied={T: s2.seq})], "removed": []})
    assert store.outbox.prune() == 1  # s2, now reflected
    assert [e.seq for e in store.outbox.events()] == [rej.seq, waiting.seq]
    # The seq counter never goes back, even with the newest events pruned.
    store.outbox.apply_ack([waiting.id], [], applied_seq=waiting.seq)
    store.members.apply_changes({"from_version": 3, "to_version": 4,
                         "members": [member_record(version=4, points=1070,
                                                   applied={T: waiting.seq})], "removed": []})
    clock.advance(days=40)
    store.outbox.prune()
    nxt = store.outbox.append("expense", {"amount": 1, "category": "c", "note": ""}, at=AT,
                       staff_id=None, offline=True)
    assert nxt.seq == waiting.seq + 1


def test_recent_events_stay_for_refunds_and_day_views(store: Store, clock: Clock) -> None:
    s1 = store.outbox.append("sale", sale_body(None), at=AT, staff_id=None, offline=True)
    store.outbox.apply_ack([s1.id], [], applied_seq=s1.seq)
    clock.advance(days=34)
    assert store.outbox.prune() == 0  # 35 days by default (issue #13; was 7)
    clock.advance(days=2)  # past 35 days since the sale's `at` too
    assert store.outbox.prune() == 1
