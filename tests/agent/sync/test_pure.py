"""The link's pure parts: backoff, message parsing, the in-flight window."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.offline_queue.events import encode_batch
from agent.offline_queue.uuid7 import uuid7_str
from agent.sync.backoff import backoff_ceiling, full_jitter_delay
from agent.sync.messages import (
    MAX_PAYLOAD,
    MessageError,
    parse_ack,
    parse_change_set,
    parse_command,
)
from agent.sync.outflight import Outflight


@given(st.integers(0, 2000), st.floats(0.01, 10), st.floats(1, 600), st.integers())
def test_full_jitter_stays_within_the_doubling_ceiling(attempt: int, base: float, cap: float,
                                                       seed: int) -> None:
    delay = full_jitter_delay(attempt, base, cap, random.Random(seed))
    assert 0 <= delay <= backoff_ceiling(attempt, base, cap) <= cap


def test_jitter_spreads_a_fleet() -> None:
    rng = random.Random(7)
    delays = [full_jitter_delay(5, 1.0, 60.0, rng) for _ in range(200)]
    # 200 terminals at the same attempt come back spread over [0, 32] s, not at once.
    buckets = {int(d // 4) for d in delays}
    assert len(buckets) == 8
    assert backoff_ceiling(0, 1, 60) == 1 and backoff_ceiling(10, 1, 60) == 60


def test_ack_parsing() -> None:
    ack = parse_ack(json.dumps({"batch": "b", "accepted": ["a"], "applied_seq": 4,
                                "rejected": [{"id": "c", "reason": "no"}]}).encode())
    assert (ack.batch, ack.accepted, ack.rejected, ack.applied_seq) == ("b", ["a"],
                                                                        [("c", "no")], 4)
    for bad in [b"[]", b"{", json.dumps({"accepted": [1]}).encode(),
                json.dumps({"applied_seq": -1}).encode(),
                json.dumps({"applied_seq": True}).encode(),
                json.dumps({"rejected": [{"reason": "x"}]}).encode(),
                b'{"a": "' + b"x" * MAX_PAYLOAD + b'"}']:
        with pytest.raises(MessageError):
            parse_ack(bad)


@given(st.binary(max_size=300))
def test_parsers_never_raise_anything_but_message_error(data: bytes) -> None:
    for parser in (parse_ack, parse_change_set, parse_command):
        try:
            parser(data)
        except MessageError:
            pass


def test_change_set_and_command_parsing() -> None:
    cs = parse_change_set(b'{"from_version": 3, "to_version": 5, "members": [], "removed": []}')
    assert (cs.from_version, cs.to_version) == (3, 5)
    with pytest.raises(MessageError):
        parse_change_set(b'{"from_version": 5, "to_version": 3}')
    with pytest.raises(MessageError):
        parse_change_set(b'{"from_version": 1, "to_version": 2, "members": [{"x": 1}]}')
    cmd = parse_command(b'{"id": "c1", "type": "ping"}')
    assert (cmd.id, cmd.type, cmd.args) == ("c1", "ping", {})
    with pytest.raises(MessageError):
        parse_command(b'{"id": "c1", "type": "ping", "args": [1]}')


def test_outflight_window_acks_and_timeouts() -> None:
    w = Outflight(max_batches=2, ack_timeout_s=10)
    w.add("b1", ["e1", "e2"], now=0)
    assert w.can_send()
    w.add("b2", ["e3"], now=5)
    assert not w.can_send() and w.event_ids() == {"e1", "e2", "e3"}
    # An ack for an older resend of the same events completes b1 too.
    w.on_ack("old", ["e1", "e2"])
    assert set(w.batches) == {"b2"}
    assert w.next_deadline() == 15
    assert w.expire(14.9) == [] and w.expire(15) == ["b2"]
    assert w.event_ids() == set() and w.timeouts == 1


def test_batch_encoding_and_ids() -> None:
    ids = [uuid7_str() for _ in range(50)]
    assert len(set(ids)) == 50 and all(i[14] == "7" for i in ids)
    stamps = [i[:8] + i[9:13] for i in ids]
    assert stamps == sorted(stamps)  # time-ordered by the millisecond
    doc = json.loads(encode_batch("b", "T-1", [{"id": "x", "note": "é"}]))
    assert doc == {"batch": "b", "terminal_id": "T-1", "events": [{"id": "x", "note": "é"}]}
