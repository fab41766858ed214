"""Attacks on the catalogue from the club (#16 item 1): huge, hostile, forged or
replayed documents reach the real link core and the real store. Each is refused
with a clear status, and the catalogue in use stays, byte for byte."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.catalogue import CatalogueRefused, parse_catalogue
from agent.offline_queue import Store
from agent.rules import BundleState, sign_payload
from agent.sync.actions import Emit
from agent.sync.core import LinkCore
from agent.sync.topics import Topics
from agent.sync.tuning import LinkTuning
from hw_sim.club.catalogue import demo_products, encode_catalogue, make_catalogue, make_changes

T0 = datetime(2026, 11, 28, 12, tzinfo=UTC)
TOPICS = Topics("acme", "T-1", "M-7")
KEY = Ed25519PrivateKey.generate()
OTHER = Ed25519PrivateKey.generate()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path / "agent.db", "T-1", "M-7", clock=lambda: T0)
    yield s
    s.close()


def core_of(store: Store) -> LinkCore:
    return LinkCore(TOPICS, LinkTuning(), outbox=store.outbox, members=store.members,
                    bundles=store.bundles, commands=store.commands, records=store.records,
                    rules=BundleState({"club-1": KEY.public_key()}, club="acme", merchant="M-7"),
                    wall_clock=lambda: T0, catalogue=store.catalogue)


def signed(doc: dict[str, Any] | bytes, key: Ed25519PrivateKey = KEY) -> bytes:
    body = doc if isinstance(doc, bytes) else encode_catalogue(doc)
    return json.dumps(sign_payload(body, key, key_id="club-1")).encode()


def emits(actions: list[Any]) -> list[dict[str, Any]]:
    return [a.event for a in actions if isinstance(a, Emit) and a.event["type"] == "catalogue"]


def snapshot(store: Store) -> list[Any]:
    return [p.to_dict() for p in store.catalogue.products()]


def in_use(store: Store, core: LinkCore) -> list[Any]:
    core.received(TOPICS.catalogue, signed(make_catalogue("acme", "M-7", 5, now=T0)), 1.0)
    assert store.catalogue.catalogue_version() == 5
    return snapshot(store)


def refused(store: Store, core: LinkCore, before: list[Any], topic: str, payload: bytes,
            reason: str | None) -> str | None:
    started = time.perf_counter()
    out = core.received(topic, payload, 2.0)
    took = time.perf_counter() - started
    assert store.catalogue.catalogue_version() == 5 and snapshot(store) == before
    problem = core.status_payload()["catalogue_problem"]
    if reason is not None:
        assert problem is not None and problem.startswith(reason + ":"), problem
        assert emits(out)[-1]["problem"] == problem and emits(out)[-1]["version"] == 5
        assert store.catalogue.catalogue_problem() == problem[:500]
    print(f"figure: {topic.rsplit('/', 1)[-1]} {len(payload)} bytes refused "
          f"({problem or 'dropped'}) in {took * 1000:.0f} ms")
    assert took < 5.0
    return problem


def test_wrong_signature_unknown_key_and_forged_payload(store: Store) -> None:
    core = core_of(store)
    before = in_use(store, core)
    newer = make_catalogue("acme", "M-7", 6, now=T0)
    refused(store, core, before, TOPICS.catalogue, signed(newer, OTHER), "bad_signature")
    env = json.loads(signed(newer))
    env["key_id"] = "club-9"
    refused(store, core, before, TOPICS.catalogue, json.dumps(env).encode(), "unknown_key")
    env = json.loads(signed(newer))
    forged = dict(newer, products=newer["products"][:1])
    env["payload"] = base64.b64encode(encode_catalogue(forged)).decode()
    refused(store, core, before, TOPICS.catalogue, json.dumps(env).encode(), "bad_signature")
    # A good one afterwards is taken, and the problem goes.
    core.received(TOPICS.catalogue, signed(newer), 3.0)
    assert store.catalogue.catalogue_version() == 6
    assert core.status_payload()["catalogue_problem"] is None


def test_an_older_version_replayed_is_refused_and_the_same_one_is_not_a_problem(
        store: Store) -> None:
    core = core_of(store)
    before = in_use(store, core)
    old = signed(make_catalogue("acme", "M-7", 4, now=T0, products=[]))
    refused(store, core, before, TOPICS.catalogue, old, "stale")
    # An old change set seen again is skipped silently (the version is past it).
    change = signed(make_changes("acme", "M-7", 3, 4, removed=["cafe-espresso"]))
    out = core.received(TOPICS.catalogue_changes, change, 3.0)
    assert emits(out) == [] and snapshot(store) == before
    # A change set that skips a version: a gap, the whole one is awaited.
    gap = signed(make_changes("acme", "M-7", 6, 7, removed=["cafe-espresso"]))
    refused(store, core, before, TOPICS.catalogue_changes, gap, "gap")
    # One for another merchant or club, signed by the right key.
    refused(store, core, before, TOPICS.catalogue,
            signed(make_catalogue("acme", "M-8", 9, now=T0)), "foreign_merchant")
    refused(store, core, before, TOPICS.catalogue,
            signed(make_catalogue("evil", "M-7", 9, now=T0)), "foreign_club")


def test_a_change_set_is_applied_in_order(store: Store) -> None:
    core = core_of(store)
    in_use(store, core)
    upsert = {"sku": "new", "names": {"en": "New", "fa": "نو"}, "price": 5,
              "barcodes": ["555"]}
    out = core.received(TOPICS.catalogue_changes, signed(make_changes(
        "acme", "M-7", 5, 6, upserts=[upsert], removed=["cafe-espresso"])), 2.0)
    # The demo catalogue's products, one added and one removed (#19 added products).
    assert emits(out) == [{"type": "catalogue", "version": 6,
                           "products": len(demo_products(T0)), "problem": None}]
    assert store.catalogue.by_barcode("555") is not None
    assert store.catalogue.by_sku("cafe-espresso") is None


def test_100000_products_and_a_10_mb_name(store: Store) -> None:
    core = core_of(store)
    before = in_use(store, core)
    many = make_catalogue("acme", "M-7", 6, now=T0, products=[
        {"sku": f"p{i}", "names": {"en": f"P{i}"}, "price": 1} for i in range(100_000)])
    body = encode_catalogue(many)
    # Inline: the message is over the 256 KiB cap and dropped before any parsing.
    refused(store, core, before, TOPICS.catalogue, signed(body), None)
    assert core.counters["dropped_messages"] == 1
    # Fetched (the signed-manifest path to come): the verified bytes are refused whole.
    with pytest.raises(CatalogueRefused) as info:
        parse_catalogue(body)
    assert info.value.reason == "too_large" and "100000" in str(info.value)
    out: list[Any] = []
    started = time.perf_counter()
    assert core.updates.catalogue_bytes(body, out) is False
    print(f"figure: 100,000 products ({len(body)} bytes) refused in "
          f"{(time.perf_counter() - started) * 1000:.0f} ms")
    assert snapshot(store) == before
    huge = make_catalogue("acme", "M-7", 6, now=T0,
                          products=[{"sku": "x", "names": {"en": "N" * 10_000_000}, "price": 1}])
    body = encode_catalogue(huge)
    started = time.perf_counter()
    assert core.updates.catalogue_bytes(body, out) is False
    print(f"figure: a 10 MB name refused in {(time.perf_counter() - started) * 1000:.0f} ms")
    assert "more than 120" in core.status_payload()["catalogue_problem"]
    assert snapshot(store) == before


@pytest.mark.parametrize("payload", [
    b"\xff\xfe\x00garbage", b'{"key_id": "club-1", "payload": "\xc3\x28", "sig": "AA=="}',
    json.dumps({"key_id": "club-1", "payload": "!!!", "sig": "AA=="}).encode(),
    b"[]", b"null", b'{"a":' * 100_000,
])
def test_binary_and_broken_envelopes(store: Store, payload: bytes) -> None:
    core = core_of(store)
    before = in_use(store, core)
    refused(store, core, before, TOPICS.catalogue, payload, None)


@pytest.mark.parametrize("barcode", ["\x00\x01\x02", "ok\x1b[2J", "\u202eevil", "", " "])
def test_binary_and_control_barcodes_refuse_the_document(store: Store, barcode: str) -> None:
    core = core_of(store)
    before = in_use(store, core)
    doc = make_catalogue("acme", "M-7", 6, now=T0, products=[
        {"sku": "x", "names": {"en": "X"}, "price": 1, "barcodes": [barcode]}])
    refused(store, core, before, TOPICS.catalogue, signed(doc), "malformed")


def test_invalid_utf8_in_the_signed_bytes(store: Store) -> None:
    core = core_of(store)
    before = in_use(store, core)
    body = encode_catalogue(make_catalogue("acme", "M-7", 6, now=T0)).replace(
        b"2000000000015", b"20000\xff\xfe0000015")
    refused(store, core, before, TOPICS.catalogue, signed(body), "malformed")
