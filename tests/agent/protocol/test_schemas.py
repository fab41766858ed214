"""The committed schemas match the Structs; jsonschema refuses a broken message."""

from __future__ import annotations

import json

import jsonschema
import pytest

from agent.protocol import schemas
from agent.protocol.base import ProtocolError, decode
from agent.protocol.events import Batch
from agent.sync.messages import MessageError, parse_ack

_EVENT = {"id": "e1", "seq": 1, "type": "expense", "at": "2026-11-28T10:00:00.000+00:00",
          "merchant_id": "M-1", "terminal_id": "T-1", "staff_id": "s1", "offline": False,
          "amount": 500, "category": "supplies", "note": None, "future_key": 1}


def _validator(name: str) -> jsonschema.Draft202012Validator:
    doc = json.loads((schemas.SCHEMA_DIR / f"{name}.schema.json").read_text())
    return jsonschema.Draft202012Validator(doc)


def test_committed_documents_match_the_structs() -> None:
    assert schemas.drift() == [], "run: python -m agent.protocol.schemas --write"
    assert schemas.main(["--check"]) == 0


def test_schema_accepts_a_real_batch_and_refuses_a_broken_one() -> None:
    batch = {"batch": "b1", "terminal_id": "T-1", "events": [_EVENT]}
    _validator("batch").validate(batch)
    broken = {**batch, "events": [{**_EVENT, "amount": "500"}]}
    with pytest.raises(jsonschema.ValidationError):
        _validator("batch").validate(broken)
    too_big = {**batch, "events": [{**_EVENT, "amount": 2**53}]}
    with pytest.raises(jsonschema.ValidationError):
        _validator("batch").validate(too_big)


def test_decode_error_names_the_path() -> None:
    bad = json.dumps({"batch": "b", "terminal_id": "T", "events": [{**_EVENT, "amount": "x"}]})
    with pytest.raises(ProtocolError, match=r"\$\.events\[0\]\.amount"):
        decode(Batch, bad.encode())
    with pytest.raises(MessageError, match=r"\$\.applied_seq"):
        parse_ack(b'{"applied_seq": "7"}')


def test_unknown_keys_are_ignored_for_v1_peers() -> None:
    batch = decode(Batch, json.dumps({"batch": "b", "terminal_id": "T", "events": [_EVENT],
                                      "v2": {"x": 1}}).encode())
    assert batch.events[0].amount == 500  # type: ignore[union-attr]
    print(f"figure: {len(schemas.documents())} generated protocol documents")


def test_traffic_check_flags_a_broken_message_and_an_undocumented_topic() -> None:
    from tests.agent.protocol.traffic import traffic_errors

    base = "clubterm/v1/club-1/terminals/T-1"
    good = json.dumps({"batch": "b", "accepted": ["e1"], "applied_seq": 3}).encode()
    broken = json.dumps({"batch": "b", "accepted": ["e1"], "applied_seq": "3"}).encode()
    assert traffic_errors([f"{base}/acks"], [good]) == []
    errors = traffic_errors([f"{base}/acks", f"{base}/secret"], [broken, b"{}"])
    assert len(errors) == 2 and "applied_seq" in errors[0] and "no channel" in errors[1]
