"""The documents the simulated club and the agent really produce match the COMMITTED
schemas (jsonschema, not the Structs): bundles (v1 and promotions, 10,000 rules), the
manifest, staff list, catalogue and its change set, member records with every 1.1/1.2
key, tombstones, the status the link publishes (printer, catalogue, broker) and the
events of 1.1 (refund_lines, tenders, recorded_by, target_staff_id, changes.phone)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.offline_queue import Store
from agent.protocol import schemas
from agent.protocol.base import decode
from agent.protocol.documents import Bundle, StaffList
from agent.protocol.sync import ChangeSet, Status
from agent.rules import BundleState
from agent.sync.actions import Publish
from agent.sync.core import LinkCore
from agent.sync.topics import Topics
from agent.sync.tuning import LinkTuning
from bench.rules import make_bundle as bench_bundle
from hw_sim.club.bundles import encode_bundle, make_bundle, make_manifest
from hw_sim.club.catalogue import make_catalogue, make_changes
from hw_sim.club.staff import make_staff_list

T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


def valid(name: str, doc: Any) -> None:
    path = schemas.SCHEMA_DIR / f"{name}.schema.json"
    jsonschema.Draft202012Validator(json.loads(path.read_text())).validate(doc)


def invalid(name: str, doc: Any) -> None:
    with pytest.raises(jsonschema.ValidationError):
        valid(name, doc)


PROMOTIONS = [
    {"id": "esp-50", "kind": "discount", "when": {"skus": ["espresso"]},
     "then": {"amount": 50, "per_unit": True}},
    {"id": "cup-10", "kind": "points", "when": {"categories": ["coffee"]},
     "then": {"per_unit": 10}},
    {"id": "b2g1", "kind": "discount", "when": {"min_spend_days": {"days": 90, "amount": 0}},
     "then": {"buy": 2, "get": 1}},
    {"id": "once", "kind": "discount", "when": {"max_per_member": {"count": 1, "period": "ever"},
                                                 "codes": ["WELCOME"], "single_use": True},
     "then": {"amount": 100}},
    {"id": "night", "kind": "discount", "when": {"hours": ["22:00", "02:00"],
                                                  "dates": [["2026-12-01", "2026-12-24"],
                                                            ["2027-03-20", "2027-04-02"]]},
     "then": {"percent_bps": 500}},
    {"id": "coupon", "kind": "coupon", "when": {}, "then": {"for_rule": "esp-50",
                                                             "expires_days": 30}},
    {"id": "cake", "kind": "reward", "when": {"skus": ["cake"]},
     "then": {"cost_points": 300, "name": "A free cake"}},
]


def test_bundles_v1_promotions_and_10000_rules_match_the_bundle_schema() -> None:
    valid("bundle", make_bundle("acme", "M-7", 42, now=T0))
    valid("bundle", make_bundle("acme", "M-7", 43, now=T0, rules=PROMOTIONS))
    big = bench_bundle(10_000)
    big.update(club="acme", merchant="M-7", version=44, expires_at="2027-01-01T00:00:00Z")
    started = time.perf_counter()
    decode(Bundle, encode_bundle(big), limit=16 * 1024 * 1024)
    took = time.perf_counter() - started
    valid("bundle", big)
    print(f"figure: 10,000-rule bundle ({len(encode_bundle(big)):,} bytes) decoded "
          f"through Bundle in {took * 1000:.0f} ms")
    invalid("bundle", {**make_bundle("acme", "M-7", 1, now=T0), "version": "1"})
    invalid("bundle", make_bundle("acme", "M-7", 1, now=T0, rules=[
        {"id": "x", "kind": "discount", "when": {"weekdays": ["someday"]}, "then": {}}]))


def test_manifest_staff_list_catalogue_and_change_set_match_their_schemas() -> None:
    body = b'{"club":"acme"}'
    for gzip_body in (False, True):
        valid("manifest", make_manifest("bundle", "acme", "M-7", 43, body,
                                        "/v1/clubs/acme/merchants/M-7/bundles/43",
                                        gzip_body=gzip_body))
    invalid("manifest", make_manifest("bundle", "acme", "M-7", 43, body, "relative",
                                      gzip_body=False))
    staff = make_staff_list("acme", "M-7", 3)
    valid("staff-list", staff)
    decode(StaffList, json.dumps(staff).encode())
    invalid("staff-list", {**staff, "staff": [{**staff["staff"][0], "badges": ["04AA01"]}]})
    valid("catalogue", make_catalogue("acme", "M-7", 7, now=T0))
    changes = make_changes("acme", "M-7", 7, 8, now=T0, removed=["cafe-espresso"],
                           upserts=make_catalogue("acme", "M-7", now=T0)["products"][:1])
    valid("catalogue-changes", changes)
    invalid("catalogue-changes", {**changes, "removed": [""]})


RECORD = {"member_id": "m-1", "version": 9812, "name": "Sara", "status": "active",
          "identifiers": ["nfc:04A1"], "balances": {"points": 1200},
          "replaces": ["local:0192"], "referred_by": "m-2",
          "balance_lots": {"points": [{"amount": 100, "expires": "2027-01-01"}]},
          "rule_uses": {"once": ["2026-11-20"]}, "used_codes": ["WELCOME"],
          "coupons": [{"code": "C-1", "rule": "esp-50", "expires": "2026-12-28"}],
          "scopes": ["merchant:M-7", "group:north"]}


def test_member_records_tombstones_and_scoped_change_sets() -> None:
    tombstone = {"member_id": "m-9", "version": 9812, "removed": True}
    change = {"from_version": 9811, "to_version": 9812,
              "members": [RECORD, tombstone, {"member_id": "m-8", "removed": True}],
              "removed": ["m-9"]}
    valid("change-set", change)
    valid("snapshot-line", tombstone)
    valid("member-record", RECORD)
    decoded = decode(ChangeSet, json.dumps(change).encode())
    assert decoded.members[0].scopes == ["merchant:M-7", "group:north"]
    assert decoded.members[1].removed is True
    invalid("snapshot-line", {**tombstone, "removed": "yes"})
    valid("member-lookup-answer", {"member": RECORD})
    valid("member-lookup-request", {"token": "nfc:04A1", "terminal_id": "T-0001"})


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path / "agent.db", "T-1", "M-7", clock=lambda: T0)
    yield s
    s.close()


def test_the_published_status_keeps_printer_catalogue_and_broker(store: Store) -> None:
    """The status goes through the Status Struct: a key it lacks would be dropped."""
    topics = Topics("acme", "T-1", "M-7")
    core = LinkCore(topics, LinkTuning(), outbox=store.outbox, members=store.members,
                    bundles=store.bundles, commands=store.commands, records=store.records,
                    rules=BundleState({"k": Ed25519PrivateKey.generate().public_key()},
                                      club="acme", merchant="M-7"),
                    wall_clock=lambda: T0, catalogue=store.catalogue)
    core.connected(1.0, broker="mqtts://mqtt-b.club.example:8883")
    core.set_printer({"kind": "network", "state": "paper_out",
                      "detail": "the printer is out of paper", "failed": 1})
    out: list[Any] = []
    core.publish_status(out)
    sent = [a for a in out if isinstance(a, Publish) and a.topic == topics.status]
    doc = json.loads(sent[-1].payload)
    valid("status", doc)
    assert doc["printer"] == {"kind": "network", "state": "paper_out",
                              "detail": "the printer is out of paper", "failed": 1}
    assert doc["link"]["broker"] == "mqtts://mqtt-b.club.example:8883"
    assert "catalogue_version" in doc and "catalogue_problem" in doc
    decode(Status, sent[-1].payload)
