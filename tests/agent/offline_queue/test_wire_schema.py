"""Batches the real store encodes match the committed batch schema and the Structs."""

from __future__ import annotations

import json

import jsonschema

from agent.offline_queue import Store
from agent.protocol import schemas
from agent.protocol.base import decode
from agent.protocol.events import Batch

from .helpers import AT, sale_body


def test_every_event_type_the_store_writes_matches_the_batch_schema(store: Store) -> None:
    sale = store.outbox.append("sale", sale_body(), at=AT, staff_id="s-1", offline=True)
    body = sale_body()
    paid = store.outbox.append(
        "sale", {**body, "tenders": [{"method": "cash", "amount": body["payable"]}]},
        at=AT, staff_id="s-1", offline=False)
    bodies: list[tuple[str, dict[str, object]]] = [
        ("refund", {"sale_id": sale.id, "reason": "wrong item"}),
        ("refund_lines", {"sale_id": paid.id, "reason": "broken",
                          "lines": [{"line": 0, "qty": 1}]}),
        ("correction", {"ref_id": "e-enrol", "ref_type": "member_enrol", "action": "amend",
                        "reason": "typo", "changes": {"name": "Sarah", "phone": "tel:+4915"},
                        "member_id": "local:1"}),
        ("expense", {"amount": 5, "category": "milk", "note": ""}),
        ("cash_receipt", {"amount": 7, "category": "float", "note": "am"}),
        ("attendance", {"staff_id": "s-2", "action": "in", "identified_by": "pin"}),
        ("appointment", {"appointment_id": "a-1", "action": "create", "customer": "m-1",
                         "service": "cut", "staff_id": "s-2",
                         "start": "2026-11-25T10:00:00+00:00", "minutes": 30, "note": ""}),
        ("member_enrol", {"member_id": "local:1", "name": "Sara", "identifiers": ["nfc:04"],
                          "referred_by": None}),
        ("card_link", {"member_id": "m-1", "identifier": "nfc:05"}),
        ("day_close", {"date": "2026-11-24", "close_no": 1, "totals": {"sales": 1}}),
    ]
    for type_, body in bodies:
        store.outbox.append(type_, body, at=AT, staff_id="s-1", offline=False)
    encoded = store.outbox.next_batch_encoded("b-1", "T-0001")
    assert encoded is not None
    doc = json.loads(encoded.payload)
    schema = json.loads((schemas.SCHEMA_DIR / "batch.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(doc)
    batch = decode(Batch, encoded.payload)
    assert [type(e).__name__ for e in batch.events][:4] == ["Sale", "Sale", "Refund",
                                                            "RefundLines"]
    assert all(e.recorded_by == "s-1" for e in batch.events)
    kinds = {type(e).__name__: e for e in batch.events}
    assert kinds["Attendance"].target_staff_id == "s-2"  # type: ignore[attr-defined]
    assert kinds["Correction"].changes.phone == "tel:+4915"  # type: ignore[attr-defined]
    assert batch.events[1].tenders[0].method == "cash"  # type: ignore[attr-defined]
    refund = batch.events[3]
    assert refund.lines[0].qty == 1 and refund.gross > 0  # type: ignore[attr-defined]
    print(f"figure: {len(batch.events)} events of {len({e['type'] for e in doc['events']})} "
          "types validated")
