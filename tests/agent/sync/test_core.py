"""The link's pure core: inputs in, actions out, exact bytes; no broker, no thread.

The core runs on the real store (a temporary SQLite file) and the real rules
state; the clock and the batch ids are passed in, so every publish is known to
the byte. ``perform`` carries out the outbox writes the way the shell does.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.offline_queue import Store
from agent.offline_queue.events import encode_json
from agent.rules import BundleState
from agent.sync.actions import Action, Emit, MarkSent, Publish, RecordAcks, Reject
from agent.sync.core import LinkCore
from agent.sync.messages import MAX_PAYLOAD
from agent.sync.topics import Topics
from agent.sync.tuning import LinkTuning

T0 = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
TOPICS = Topics("club-1", "T-1", "M-7")
TUNING = LinkTuning(ack_timeout_s=30.0, max_inflight_batches=2, max_batch_events=1)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path / "agent.db", "T-1", "M-7", clock=lambda: T0)
    yield s
    s.close()


def make_core(store: Store, tuning: LinkTuning = TUNING) -> LinkCore:
    ids = (f"batch-{n:04d}" for n in itertools.count(1))
    return LinkCore(TOPICS, tuning, outbox=store.outbox, members=store.members,
                    bundles=store.bundles, commands=store.commands, records=store.records,
                    rules=BundleState({}, club="club-1", merchant="M-7"),
                    wall_clock=lambda: T0, new_batch_id=lambda: next(ids))


def sale(store: Store, gross: int = 1000) -> str:
    body = {"member_id": None, "identified_by": None,
            "lines": [{"sku": "x", "category": "c", "qty": 1, "unit_price": gross}],
            "gross": gross, "discounts": [], "redeemed_points": 0, "redeemed_value": 0,
            "credits_used": [], "payable": gross, "points_earned": [], "credits_earned": [],
            "lottery_entries": 0, "rules_version": None, "payment": "cash"}
    return str(store.outbox.append("sale", body, at=T0, staff_id=None, offline=False).id)


def perform(store: Store, actions: list[Action]) -> list[Action]:
    """The outbox writes, as the shell performs them; returns the actions."""
    for a in actions:
        if isinstance(a, RecordAcks):
            store.outbox.apply_ack(list(a.accepted), [], a.applied_seq)
        elif isinstance(a, Reject):
            store.outbox.apply_ack([], list(a.rejected), None)
        elif isinstance(a, MarkSent):
            store.outbox.mark_sent(list(a.ids))
    return actions


def publishes(actions: list[Action], topic: str) -> list[Publish]:
    return [a for a in actions if isinstance(a, Publish) and a.topic == topic]


def batch_bytes(batch_id: str, *events: str) -> bytes:
    return (b'{"batch":"' + batch_id.encode() + b'","terminal_id":"T-1","events":['
            + b",".join(e.encode() for e in events) + b"]}")


def stored(store: Store, event_id: str) -> str:
    """The event's wire JSON exactly as the store keeps it."""
    (event,) = [e for e in store.outbox.next_batch(500) if e["id"] == event_id]
    return encode_json(event).decode()


def ack(batch: str, accepted: list[str], applied: int | None = None,
        rejected: list[dict[str, str]] | None = None) -> bytes:
    return json.dumps({"batch": batch, "accepted": accepted, "rejected": rejected or [],
                       "applied_seq": applied}).encode()


def online(store: Store, core: LinkCore, now: float = 0.0) -> list[Action]:
    perform(store, core.start(now))
    return perform(store, core.connected(now)) + perform(store, core.tick(now))


def test_connected_publishes_the_status_and_the_first_batch_to_the_byte(store: Store) -> None:
    e1 = sale(store)
    core = make_core(store)
    actions = online(store, core)
    (batch,) = publishes(actions, TOPICS.events)
    assert batch == Publish("clubterm/v1/club-1/terminals/T-1/events",
                            batch_bytes("batch-0001", stored(store, e1)), 1, False)
    (status,) = publishes(actions, TOPICS.status)
    assert status.retain and status.qos == 1
    doc = json.loads(status.payload)
    assert doc["state"] == "online" and doc["at"] == "2026-03-01T09:30:00.000+00:00"
    assert doc["queue"]["pending"] == 1 and doc["link"]["in_flight"] == 1
    links = [a.event for a in actions if isinstance(a, Emit) and a.event["type"] == "link"]
    assert links[-1]["online"] is True and links[-1]["since"] == "2026-03-01T09:30:00.000+00:00"


def test_an_ack_refills_the_window_before_the_acks_are_written(store: Store) -> None:
    e1, e2, e3 = sale(store), sale(store), sale(store)
    core = make_core(store)
    first = publishes(online(store, core), TOPICS.events)
    assert [p.payload for p in first] == [batch_bytes("batch-0001", stored(store, e1)),
                                          batch_bytes("batch-0002", stored(store, e2))]
    third = stored(store, e3)
    # The club gets its next batch at once; nothing is written yet (no fsync in its way).
    assert perform(store, core.received(TOPICS.acks, ack("batch-0001", [e1], 1), 0.1)) == [
        Publish(TOPICS.events, batch_bytes("batch-0003", third))]
    # The write comes with the next tick after the flush delay.
    written = perform(store, core.tick(0.35))
    assert RecordAcks((e1,), 1) in written
    assert store.outbox.queue_stats().pending == 2
    # The last ack: nothing left to send, so the acks are written at once.
    last = perform(store, core.received_acks([ack("batch-0002", [e2], 2),
                                              ack("batch-0003", [e3], 3)], 0.4))
    assert [a for a in last if isinstance(a, RecordAcks)] == [RecordAcks((e2, e3), 3)]
    assert not publishes(last, TOPICS.events)
    assert store.outbox.queue_stats().pending == 0 and core.counters["acks"] == 3


def test_a_rejection_is_recorded_after_the_acks_it_came_with(store: Store) -> None:
    e1 = sale(store)
    core = make_core(store, replace(TUNING, max_batch_events=5))
    online(store, core)
    actions = perform(store, core.received(
        TOPICS.acks, ack("batch-0001", [], 1, [{"id": e1, "reason": "too_big"}]), 0.1))
    assert actions[-1] == Reject(((e1, "too_big"),))
    assert store.outbox.queue_stats().rejected == 1
    assert core.status_payload()["queue"]["recent_rejections"] == [{"id": e1,
                                                                    "reason": "too_big"}]


def test_reconnect_resends_the_unacked_batches(store: Store) -> None:
    e1, e2 = sale(store), sale(store)
    core = make_core(store)
    online(store, core)
    perform(store, core.disconnected("network cut", 1.0))
    assert core.state.online is False and core.state.last_error == "disconnected: network cut"
    offline = perform(store, core.tick(1.5))
    assert not publishes(offline, TOPICS.events)  # offline: nothing is sent
    # The dropped batches get their "sent" marks (bookkeeping).
    assert [set(a.ids) for a in offline if isinstance(a, MarkSent)] == [{e1, e2}]
    again = online(store, core, 5.0)
    assert [p.payload for p in publishes(again, TOPICS.events)] == [
        batch_bytes("batch-0003", stored(store, e1)),
        batch_bytes("batch-0004", stored(store, e2))]


def test_a_batch_without_an_ack_is_sent_again_after_the_timeout(store: Store) -> None:
    e1 = sale(store)
    core = make_core(store)
    online(store, core)
    assert core.next_wakeup(29.5) <= 0.5
    assert not publishes(perform(store, core.tick(29.9)), TOPICS.events)
    (resent,) = publishes(perform(store, core.tick(30.0)), TOPICS.events)
    second = json.loads(resent.payload)["batch"]
    assert second != "batch-0001" and resent.payload == batch_bytes(second, stored(store, e1))
    assert core.counters["ack_timeouts"] == 1
    # A late ack for the first one still counts; the second batch's ack is then a repeat.
    perform(store, core.received(TOPICS.acks, ack("batch-0001", [e1], 1), 30.1))
    perform(store, core.received(TOPICS.acks, ack(second, [e1], 1), 30.2))
    assert store.outbox.queue_stats().pending == 0 and core.state.in_flight == 0


def test_commands_are_answered_once_with_the_same_bytes(store: Store) -> None:
    core = make_core(store)
    online(store, core)
    cmd = json.dumps({"id": "c-1", "type": "ping"}).encode()
    answer = b'{"id": "c-1", "state": "done", "ok": true, "detail": "pong"}'
    assert publishes(core.received(TOPICS.commands, cmd, 1.0), TOPICS.command_results) == [
        Publish(TOPICS.command_results, answer)]
    # The same command again (a redelivery): the stored answer, not a second run.
    assert publishes(core.received(TOPICS.commands, cmd, 2.0), TOPICS.command_results) == [
        Publish(TOPICS.command_results, answer)]
    unknown = core.received(TOPICS.commands, b'{"id": "c-2", "type": "reboot"}', 3.0)
    (res,) = publishes(unknown, TOPICS.command_results)
    assert json.loads(res.payload)["state"] == "failed"


def test_stopping_writes_what_is_gathered_and_says_offline(store: Store) -> None:
    e1, _ = sale(store), sale(store)
    core = make_core(store)
    online(store, core)
    gathered = core.received(TOPICS.acks, ack("batch-0001", [e1], 1), 0.1)
    assert not [a for a in gathered if isinstance(a, RecordAcks)]  # batch 2 still out
    final = perform(store, core.stopping(0.15))
    assert RecordAcks((e1,), 1) in final
    assert final[-1] == Publish(TOPICS.status,
                                b'{"state": "offline", "at": "2026-03-01T09:30:00.000+00:00"}',
                                1, True)
    assert store.outbox.queue_stats().pending == 1


def test_stopping_says_offline_before_it_has_seen_the_new_connection(store: Store) -> None:
    """paho reconnects on its own and sends again the unacknowledged "online" of the
    last connection before the core hears of it; a stop then must still say
    "offline", or the club shows a stopped terminal online (a clean disconnect
    fires no will)."""
    core = make_core(store)
    online(store, core)
    core.disconnected("The connection was lost.", 0.1)
    final = perform(store, core.stopping(0.2))
    assert final[-1] == Publish(TOPICS.status,
                                b'{"state": "offline", "at": "2026-03-01T09:30:00.000+00:00"}',
                                1, True)


def test_hostile_messages_on_every_topic_are_dropped_without_harm(
        store: Store, caplog: pytest.LogCaptureFixture) -> None:
    """Duplicate, foreign, oversized and garbage payloads on every subscribed topic
    (and on one it never subscribed to): dropped or ignored, never an exception,
    nothing recorded changes, the link stays up."""
    e1 = sale(store)
    core = make_core(store)
    online(store, core)
    before = (store.outbox.queue_stats().pending, store.members.members_version(),
              store.records.staff_list_version(), store.bundles.current_bundle())
    hostile = [
        b"", b"\x00\xff\xfe", b"null", b"[]", b"42", b'"text"', b"{}", b"{" * 5000,
        b"[" * 200_000,  # nesting far past the JSON parser's recursion limit
        b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
        b"x" * (MAX_PAYLOAD + 1),  # oversized
        b'{"batch": 5, "accepted": "all", "rejected": {"id": 1}, "applied_seq": -1}',
        b'{"batch": "nope", "accepted": ["not-an-event"], "applied_seq": 99999999}',
        b'{"from_version": 5, "to_version": 2, "members": "x"}',
        b'{"from_version": true, "to_version": 1e999}',
        b'{"id": "' + b"c" * 10_000 + b'", "type": "ping"}',
        b'{"id": "c-9", "type": ["ping"], "args": []}',
        b'{"payload": "AAAA", "sig": "!!!", "alg": "none"}',
        "{\"payload\": \"\u202e\u0000\"}".encode(),
        b"\xef\xbb\xbf{}",
    ]
    topics = [*TOPICS.subscriptions(), "clubterm/v1/other-club/terminals/T-1/acks",
              "clubterm/v1/club-1/terminals/T-2/commands"]
    sent = 0
    with caplog.at_level(logging.DEBUG, logger="agent.sync"):
        for topic in topics:
            for payload in hostile:
                for _ in range(2):  # and each one duplicated
                    perform(store, core.received(topic, payload, 1.0))
                    sent += 1
        perform(store, core.tick(1.5))
    unexpected = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert unexpected == [], [r.getMessage()[:200] for r in unexpected]
    # Only the junk "ack" naming an unknown id is recorded (harmless); e1 still waits.
    assert store.outbox.queue_stats().pending == 1 and store.outbox.queue_stats().rejected == 0
    assert (store.outbox.queue_stats().pending, store.members.members_version(),
            store.records.staff_list_version(), store.bundles.current_bundle()) == before
    assert core.state.online and core.state.in_flight == 1
    assert stored(store, e1)
    print(f"figure: {sent} hostile messages on {len(topics)} topics, "
          f"{core.counters['dropped_messages']} dropped as malformed, 0 errors")
