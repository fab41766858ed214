"""The manifest parser and the pure fetch scheduler (no network, time passed in)."""

from __future__ import annotations

import json
import random
from dataclasses import replace

import pytest

from agent.sync.actions import Action, CancelDocument, FetchDocument
from agent.sync.documents import DocumentOutcome, PendingDocuments
from agent.sync.messages import Manifest, MessageError, parse_manifest

GOOD = {"kind": "bundle", "club": "acme", "merchant": "M-7", "version": 2,
        "sha256": "ab" * 32, "size": 10, "path": "/v1/clubs/acme/merchants/M-7/bundles/2",
        "content_encoding": "gzip"}


def test_a_manifest_parses() -> None:
    m = parse_manifest(json.dumps(GOOD).encode())
    assert m == Manifest("bundle", "acme", "M-7", 2, "ab" * 32, 10, GOOD["path"], "gzip")
    plain = {k: v for k, v in GOOD.items() if k != "content_encoding"}
    assert parse_manifest(json.dumps(plain).encode()).content_encoding == "identity"


@pytest.mark.parametrize("bad", [
    {"path": "https://evil.example/b"}, {"path": "//evil.example/b"}, {"path": "b/2"},
    {"path": "/b/2\r\nHost: evil"}, {"path": "/b/\u00e9"}, {"path": "/b/2#x"},
    {"sha256": "AB" * 32}, {"sha256": "ab" * 31}, {"size": 0}, {"size": True},
    {"size": "10"}, {"version": 0}, {"kind": "firmware"}, {"content_encoding": "br"},
    {"club": None},
])
def test_a_hostile_manifest_is_refused(bad: dict[str, object]) -> None:
    with pytest.raises(MessageError):
        parse_manifest(json.dumps({**GOOD, **bad}).encode())


def manifest(version: int) -> Manifest:
    return replace(parse_manifest(json.dumps(GOOD).encode()), version=version)


def test_a_newer_manifest_cancels_the_running_fetch_and_the_old_outcome_is_dropped() -> None:
    docs = PendingDocuments(1.0, 8.0, random.Random(1))
    out: list[Action] = []
    assert docs.want(manifest(2), 0.0, out)
    assert docs.start_due(0.0, out)
    assert out == [FetchDocument(manifest(2))]
    out.clear()
    assert not docs.want(manifest(2), 1.0, out)  # the retained manifest seen again
    assert docs.want(manifest(3), 1.0, out)
    assert out == [CancelDocument("bundle")]
    out.clear()
    assert not docs.start_due(1.0, out)  # one fetch per kind at a time
    assert not docs.done(DocumentOutcome(manifest(2), 1.0, error="cancelled",
                                         reason="cancelled"))
    assert docs.start_due(1.0, out) and out == [FetchDocument(manifest(3))]


def test_failures_back_off_doubling_to_the_cap() -> None:
    docs = PendingDocuments(1.0, 8.0, random.Random(1))
    out: list[Action] = []
    docs.want(manifest(2), 0.0, out)
    now, delays = 0.0, []
    for _ in range(6):
        assert docs.start_due(now, out)
        assert docs.done(DocumentOutcome(manifest(2), 0.1, error="x", reason="http"))
        delays.append(docs.retry_later("bundle", now))
        due = docs.next_due()
        assert due is not None
        assert not docs.start_due(due - 0.01, out)
        now = due
    assert all(lo / 2 <= d <= lo for d, lo in zip(delays, [1, 2, 4, 8, 8, 8], strict=True))
    docs.settled("bundle")
    assert docs.next_due() is None
