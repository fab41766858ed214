"""End to end: a 10,000-rule bundle (1.8 MB, seven times the MQTT payload cap) goes from
the simulated club as a signed manifest through the real broker, is fetched over mutual
TLS HTTPS by the real agent process, and prices a sale (issue #17, "Large bundles")."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from agent.localapi.client import SyncClient
from bench.rules import make_bundle
from tests.agent.protocol.traffic import traffic_errors
from tests.e2e.terminal import Sniffer, club_terminal

pytestmark = [pytest.mark.needs_mosquitto]


def big_bundle(club: str, version: int) -> dict[str, Any]:
    now = datetime.now(UTC)
    bundle = make_bundle(10_000)
    bundle.update(club=club, merchant="M-7", version=version,
                  issued_at=now.isoformat(timespec="seconds"),
                  expires_at=(now + timedelta(days=30)).isoformat(timespec="seconds"))
    return bundle


def test_a_10000_rule_bundle_is_fetched_over_https_and_prices_a_sale(
        mosquitto: Any, make_club: Any, club_pki: Any) -> None:
    club = make_club(mosquitto)
    sniffer = Sniffer(mosquitto)
    try:
        with club_terminal(mosquitto, club, club_pki) as term:
            term.start()
            term.wait_synced()
            assert term.status()["rules_version"] == 1
            bundle = big_bundle(club.club_id, 2)
            published = time.monotonic()
            envelope = club.publish_bundle("M-7", 2, bundle=bundle)
            deadline = time.monotonic() + 60
            status: dict[str, Any] = {}
            while time.monotonic() < deadline:
                status = term.status()
                if status["rules_version"] == 2:
                    break
                time.sleep(0.05)
            took = time.monotonic() - published
            assert status.get("rules_version") == 2, status
            with SyncClient(term.files.socket, timeout_s=20) as client:
                quote = client.call("sale.quote", {"lines": [
                    {"sku": "espresso", "category": "coffee", "qty": 2, "unit_price": 250},
                    {"sku": "cake", "category": "bakery", "qty": 1, "unit_price": 4550}]})
            assert quote["rules_version"] == 2
            assert quote["gross"] == 5050
            # A manifest whose bundle the club cannot serve: version 2 stays, and the
            # local API's status says why (as for a refused bundle).
            v3 = club.signing_key.sign(big_bundle(club.club_id, 3))
            doc = club.publish_bundle_manifest("M-7", v3, 3)
            del club.documents[doc["path"]]
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and "HTTP 404" not in str(
                    term.status().get("rules_problem")):
                time.sleep(0.1)
            status = term.status()
            assert "HTTP 404" in str(status["rules_problem"]), status
            assert status["rules_version"] == 2
    finally:
        sniffer.stop()
    rules = [p for t, p in zip(sniffer.topics, sniffer.payloads, strict=True)
             if t.endswith("/merchants/M-7/rules")]
    manifest_msg = json.loads(rules[-1])
    assert manifest_msg["type"] == "manifest"
    # The manifests, and everything else captured, match the committed schemas.
    assert traffic_errors(sniffer.topics, sniffer.payloads) == []
    inline = len(json.dumps(envelope).encode())
    path = next(iter(p for p in club.documents if p.endswith("/bundles/2")))
    sent = len(club.documents[path])
    assert inline > 256 * 1024 and len(rules[-1]) < 1024
    assert [cn for cn, p in club.document_requests if p == path] == ["T-0001"]
    print(f"figure: 10,000-rule bundle: envelope {inline:,} bytes, manifest message "
          f"{len(rules[-1])} bytes on MQTT, {sent:,} bytes gzip'd over HTTPS; published → "
          f"in use in the agent in {took:.2f} s")
