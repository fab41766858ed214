"""End to end (#16): a demo product scanned by name with ``python -m hw_sim scan
--product`` into the running agent's barcode reader, priced from the club's signed
catalogue, the demo bundle's bakery rule applied to its line, the sale recorded and
applied at the simulated club. Then a forged catalogue: refused, the one in use kept."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from agent.localapi.client import SocketClient
from hw_sim import keys
from tests.agent.protocol.traffic import traffic_errors
from tests.e2e.terminal import Sniffer, club_terminal

pytestmark = [pytest.mark.needs_mosquitto]

SCANNER_PROFILE = """description = "a replayed barcode scanner (end-to-end tests)"
[readers.scanner]
kind = "evdev"
model = "hw_sim key-event replayer"
device = "{fifo}"
role = "barcode"
keymap = "us"
backoff_max_s = 1
"""
GOLD = "tel:+989121234567"  # m-1001 of the demo members (gold)


def test_scan_a_product_by_name_to_the_club(mosquitto: Any, make_club: Any, club_pki: Any,
                                            tmp_path: Path) -> None:
    club = make_club(mosquitto)
    sniffer = Sniffer(mosquitto)
    club.publish_catalogue("M-7")
    sim_dir = tmp_path / "sim"
    sim_dir.mkdir()
    fifo = keys.make_fifo(sim_dir / "scanner.events")
    with club_terminal(mosquitto, club, club_pki,
                       profile_text=SCANNER_PROFILE.format(fifo=fifo)) as term:
        term.start()
        term.wait_synced()
        deadline = time.monotonic() + 20
        while term.status()["catalogue_version"] != 1:
            assert time.monotonic() < deadline, term.status()
            time.sleep(0.1)

        async def scenario() -> dict[str, Any]:
            client = SocketClient(term.files.socket)
            await client.call("events.subscribe")
            events = client.events().__aiter__()
            scanned = time.monotonic()
            done = await asyncio.to_thread(subprocess.run, [
                sys.executable, "-m", "hw_sim", "scan", "--product", "croissant",
                "--dir", str(sim_dir)], capture_output=True, text=True, timeout=30)
            assert done.returncode == 0, done.stderr
            card: dict[str, Any] = {}
            while card.get("type") != "card":
                card = await asyncio.wait_for(events.__anext__(), 20)
            took = time.monotonic() - scanned
            assert card["kind"] == "product" and card["product"]["sku"] == "bake-croissant"
            login = await client.call("staff.login", {"staff_id": "1", "pin": "1234"})
            quote = await client.call("sale.quote", {
                "lines": [{"barcode": card["token"][5:], "qty": 2}], "token": GOLD})
            sale = await client.call("sale.commit", {"quote_id": quote["quote_id"],
                                                     "payment": "cash",
                                                     "session": login["session"]})
            await client.close()
            return {"quote": quote, "sale": sale, "took": took}

        out = asyncio.run(scenario())
        quote, sale = out["quote"], out["sale"]
        assert quote["lines"] == [{"sku": "bake-croissant", "category": "bakery", "qty": 2,
                                   "unit_price": 220}]
        benefits = quote["line_details"][0]["benefits"]
        assert "bakery-members-10" in benefits["rules"] and benefits["discount"] > 0
        assert {"rule": "bakery-members-10", "amount": 44} in quote["discounts"] or \
            any(d["rule"] == "bakery-members-10" for d in quote["discounts"])
        club.wait_applied("T-0001", sale["seq"], timeout=30)
        at_club = [e for e in club.ledger.events("T-0001") if e["type"] == "sale"]
        assert at_club[-1]["lines"] == quote["lines"]
        assert any(d["rule"] == "bakery-members-10" for d in at_club[-1]["discounts"])
        print(f"figure: scan by name -> product event in {out['took'] * 1000:.0f} ms")

        # A forged catalogue: refused, the club's status shows why, the old one stays.
        club.publish_catalogue("M-7", 2, bad_signature=True)
        club.wait_status("T-0001", lambda s: (s.get("catalogue_problem") or "")
                         .startswith("bad_signature"), timeout=20)
        assert term.status()["catalogue_version"] == 1
    sniffer.stop()
    # Every captured message (catalogue envelopes and their signed payloads included)
    # matches the committed schemas (docs/protocol/schemas).
    assert traffic_errors(sniffer.topics, sniffer.payloads) == []
    catalogues = sum(t.endswith("/catalogue") for t in sniffer.topics)
    print(f"figure: {len(sniffer.topics)} MQTT messages ({catalogues} catalogue) validated "
          "against the schemas")
