"""End to end (#16): scan to printed receipt. The real agent process, the simulated
club's signed catalogue, the simulated network printer: a member's card, two demo
products scanned by name (``python -m hw_sim scan --product``), the sale committed
in cash through the local API; the printed ESC/POS stream is decoded: product names
(not barcodes) with prices, the bakery rule's discount and why in words, points, the
QR of the sale id, the cut and the drawer pulse. Then the same in Persian (printed as
images) with the sale recorded and applied at the club."""

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
from hw_sim.printer import SimPrinter
from tests.e2e.terminal import club_terminal

pytestmark = [pytest.mark.needs_mosquitto]

PROFILE = """description = "a replayed barcode scanner and a network printer (e2e)"
[readers.scanner]
kind = "evdev"
model = "hw_sim key-event replayer"
device = "{fifo}"
role = "barcode"
keymap = "us"
backoff_max_s = 1

[printer]
kind = "network"
address = "{address}"
columns = 42
language = "{language}"
shop_name = "Café Rose"
timeout_s = 2
status_poll_s = 0
"""
GOLD = "tel:+989121234567"  # m-1001 of the demo members (gold)


def _scan_and_sell(term: Any, sim_dir: Path, products: list[str]) -> dict[str, Any]:
    async def scenario() -> dict[str, Any]:
        client = SocketClient(term.files.socket)
        await client.call("events.subscribe")
        events = client.events().__aiter__()
        codes: list[str] = []
        for name in products:
            done = await asyncio.to_thread(subprocess.run, [
                sys.executable, "-m", "hw_sim", "scan", "--product", name,
                "--dir", str(sim_dir)], capture_output=True, text=True, timeout=30)
            assert done.returncode == 0, done.stderr
            card: dict[str, Any] = {}
            while card.get("type") != "card":
                card = await asyncio.wait_for(events.__anext__(), 20)
            assert card["kind"] == "product", card
            codes.append(card["token"][5:])
        login = await client.call("staff.login", {"staff_id": "1", "pin": "1234"})
        quote = await client.call("sale.quote", {
            "lines": [{"barcode": codes[0], "qty": 2}, {"barcode": codes[1], "qty": 1}],
            "token": GOLD})
        started = time.monotonic()
        sale = await client.call("sale.commit", {"quote_id": quote["quote_id"],
                                                 "payment": "cash",
                                                 "session": login["session"]})
        await client.close()
        return {"quote": quote, "sale": sale, "codes": codes, "started": started}

    return asyncio.run(asyncio.wait_for(scenario(), 90))


def _terminal(language: str, mosquitto: Any, make_club: Any, club_pki: Any, tmp_path: Path,
              sim: SimPrinter) -> Any:
    club = make_club(mosquitto)
    club.publish_catalogue("M-7")
    sim_dir = tmp_path / "sim"
    sim_dir.mkdir()
    fifo = keys.make_fifo(sim_dir / "scanner.events")
    profile = PROFILE.format(fifo=fifo, address=sim.address, language=language)
    return club, sim_dir, club_terminal(mosquitto, club, club_pki, profile_text=profile)


def _wait_catalogue(term: Any) -> None:
    term.wait_synced()
    deadline = time.monotonic() + 20
    while term.status()["catalogue_version"] != 1:
        assert time.monotonic() < deadline, term.status()
        time.sleep(0.1)


def test_scanned_products_to_a_printed_receipt(mosquitto: Any, make_club: Any, club_pki: Any,
                                              tmp_path: Path) -> None:
    with SimPrinter() as sim:
        club, sim_dir, terminal = _terminal("en", mosquitto, make_club, club_pki, tmp_path, sim)
        with terminal as term:
            term.start()
            _wait_catalogue(term)
            out = _scan_and_sell(term, sim_dir, ["croissant", "espresso"])
            quote, sale = out["quote"], out["sale"]
            receipt = sim.wait_receipts(1, timeout_s=20)[0]
            took = time.monotonic() - out["started"]
            assert quote["lines"][0]["sku"] == "bake-croissant"
            assert quote["lines"][1]["category"] == "coffee"
            assert any(d["rule"] == "bakery-members-10" for d in quote["discounts"])
            text = receipt.text
            assert receipt.unknown == []
            # Names, not skus or barcodes; each with its price.
            assert "Croissant" in text and "Espresso" in text, text
            assert "bake-croissant" not in text and "cafe-espresso" not in text
            for code in out["codes"]:
                assert code not in text
            croissant, espresso = quote["lines"]
            assert f"{2 * croissant['unit_price'] / 100:.2f} EUR" in text, text
            assert f"2 x {croissant['unit_price'] / 100:.2f} EUR" in text, text
            assert f"{espresso['unit_price'] / 100:.2f} EUR" in text, text
            # The bakery rule's discount, with why in words (not its id).
            bakery = next(d for d in quote["discounts"] if d["rule"] == "bakery-members-10")
            assert f"-{bakery['amount'] / 100:.2f}" in text, text
            assert "on bakery" in text, text
            assert "bakery-members-10" not in text
            assert "Points earned" in text and f"+{sale['receipt']['points_earned']}" in text
            assert receipt.qr == [sale["sale_id"]]
            assert receipt.cuts == 1
            assert [d.pin for d in receipt.drawer] == [2]
            club.wait_applied("T-0001", sale["seq"], timeout=30)
            print("\n".join(receipt.lines))
            print(f"figure: commit -> receipt printed in {took * 1000:.0f} ms, "
                  f"{len(sim.jobs[0])} bytes, {len(receipt.lines)} lines")


def test_scanned_products_to_a_persian_receipt(mosquitto: Any, make_club: Any, club_pki: Any,
                                               tmp_path: Path) -> None:
    with SimPrinter() as sim:
        club, sim_dir, terminal = _terminal("fa", mosquitto, make_club, club_pki, tmp_path, sim)
        with terminal as term:
            term.start()
            _wait_catalogue(term)
            out = _scan_and_sell(term, sim_dir, ["croissant", "espresso"])
            sale = out["sale"]
            receipt = sim.wait_receipts(1, timeout_s=20)[0]
            assert receipt.unknown == [] and receipt.lines == []
            assert receipt.images and all(img.size[0] == 576 for img in receipt.images)
            assert receipt.qr == [sale["sale_id"]] and receipt.cuts == 1
            assert len(receipt.drawer) == 1
            club.wait_applied("T-0001", sale["seq"], timeout=30)
            at_club = [e for e in club.ledger.events("T-0001") if e["type"] == "sale"]
            assert at_club[-1]["lines"] == out["quote"]["lines"]
            height = sum(img.size[1] for img in receipt.images)
            print(f"figure: Persian receipt {len(receipt.images)} images, {height} px tall")
