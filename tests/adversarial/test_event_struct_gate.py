"""Event bodies that pass the store's hand checks but break the published protocol are
refused at append by the event Structs (agent/protocol/events.py), with the path, and
nothing is recorded; the hand checks' own messages stay as they were."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.offline_queue import Store
from agent.offline_queue.events import InvalidEvent
from tests.agent.offline_queue.helpers import AT, sale_body


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path / "agent.db", "T-1", "M-7", clock=lambda: AT)
    yield s
    s.close()


def _sale(**extra: Any) -> dict[str, Any]:
    return {**sale_body(None), **extra}


HOSTILE: list[tuple[str, dict[str, Any], str]] = [
    # A tender method the protocol does not have (a club would reject `malformed`).
    ("sale", _sale(tenders=[{"method": "bitcoin", "amount": 1000}]), "$.tenders[0].method"),
    # A correction's category as a number: the hand check only looks at the keys.
    ("correction", {"ref_id": "e-1", "ref_type": "expense", "action": "amend",
                    "reason": "typo", "changes": {"category": 5}}, "$.changes.category"),
    # An enrolment's corrected name as a list (a 1.1 club would store garbage).
    ("correction", {"ref_id": "e-1", "ref_type": "member_enrol", "action": "amend",
                    "reason": "typo", "changes": {"name": ["Sara"]}}, "$.changes.name"),
    # 5,000 characters of note on an expense (free text is at most 2,000).
    ("expense", {"amount": 5, "category": "milk", "note": "n" * 5000}, "$.note"),
]


@pytest.mark.parametrize(("type_", "body", "path"), HOSTILE)
def test_a_body_the_protocol_refuses_is_not_recorded(store: Store, type_: str,
                                                     body: dict[str, Any], path: str) -> None:
    before = store.outbox.queue_stats().pending
    started = time.perf_counter()
    with pytest.raises(InvalidEvent, match=rf"does not match the protocol: .*{re.escape(path)}"):
        store.outbox.append(type_, body, at=AT, staff_id="s-1", offline=False)
    took = time.perf_counter() - started
    assert store.outbox.queue_stats().pending == before
    assert store.outbox.next_batch_encoded("b-1", "T-1") is None
    print(f"figure: {type_} refused at {path} in {took * 1e3:.2f} ms, nothing queued")


def test_the_hand_checks_keep_their_messages(store: Store) -> None:
    with pytest.raises(InvalidEvent, match=r"sale\.tenders must sum to payable"):
        store.outbox.append("sale", _sale(tenders=[{"method": "cash", "amount": 1}]),
                            at=AT, staff_id="s-1", offline=False)


def test_append_cost_with_the_struct_gate(store: Store) -> None:
    n = 300
    started = time.perf_counter()
    for _ in range(n):
        store.outbox.append("sale", sale_body(None), at=AT, staff_id="s-1", offline=False)
    per = (time.perf_counter() - started) / n
    print(f"figure: {n} sales appended, {per * 1e6:.0f} µs each (Struct gate included)")
