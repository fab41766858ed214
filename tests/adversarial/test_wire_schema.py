"""Hostile club messages against the typed definitions: each is dropped with a path."""

from __future__ import annotations

import json
import time

import pytest

from agent.sync.messages import (
    MAX_PAYLOAD,
    MessageError,
    parse_ack,
    parse_change_set,
    parse_command,
)

HOSTILE = [
    (b"[" * 100_000 + b"]" * 100_000, parse_command, ""),               # over 256 KiB
    (b'{"id": "c", "type": "ping", "args": ' + b'{"a":' * 5000 + b"1" + b"}" * 5001,
     parse_command, ""),                                               # deep nesting
    (json.dumps({"applied_seq": 2**53}).encode(), parse_ack, "$.applied_seq"),
    (json.dumps({"applied_seq": True}).encode(), parse_ack, "$.applied_seq"),
    (json.dumps({"accepted": ["x"] * 10_001}).encode(), parse_ack, "$.accepted"),
    (json.dumps({"rejected": [{"id": ""}]}).encode(), parse_ack, "$.rejected[0].id"),
    (json.dumps({"id": "x" * 201, "type": "ping"}).encode(), parse_command, "$.id"),
    (json.dumps({"from_version": 1, "to_version": 2,
                 "members": [{"member_id": "m", "balances": {"points": "9"}}]}).encode(),
     parse_change_set, "$.members[0].balances"),
    (b"\xff\xfe{}", parse_ack, ""),
]


@pytest.mark.parametrize(("payload", "parser", "path"), HOSTILE)
def test_hostile_message_is_refused_with_its_path(payload: bytes, parser: object,
                                                  path: str) -> None:
    start = time.perf_counter()
    with pytest.raises(MessageError) as caught:
        parser(payload)  # type: ignore[operator]
    elapsed_ms = (time.perf_counter() - start) * 1000
    assert path in str(caught.value)
    assert elapsed_ms < 500
    print(f"figure: {len(payload)} bytes refused in {elapsed_ms:.2f} ms: {caught.value}"[:160])


def test_limit_is_the_documented_one() -> None:
    assert MAX_PAYLOAD == 256 * 1024
