"""End to end: the real agent process (``python -m agent run``) with a ``[printer]`` in
its terminal profile prints each committed sale on the simulated network printer;
the recorded ESC/POS stream is decoded: text, QR, cut, drawer pulse for cash only.
A category rule (coffee-2) and a tier rule (gold10) apply and say why."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from agent.localapi.client import SocketClient
from hw_sim.printer import SimPrinter
from hw_sim.terminal import seed_store, write_config
from tests.agent.daemon.support import AgentProcess


def _profile(address: str, language: str = "en") -> str:
    return (
        'description = "API only, a network receipt printer"\n'
        "[printer]\n"
        'kind = "network"\n'
        f'address = "{address}"\n'
        "columns = 42\n"
        f'language = "{language}"\n'
        'shop_name = "Café Rose"\n'
        'shop_lines = ["12 Main St"]\n'
        "timeout_s = 2\n"
        "status_poll_s = 0\n"
    )


def test_sales_print_on_the_simulated_printer() -> None:
    root = Path(tempfile.mkdtemp(prefix="ctp", dir="/tmp"))  # a short Unix socket path
    with SimPrinter() as sim:
        files = write_config(root, profile_text=_profile(sim.address))
        seed_store(files)
        agent = AgentProcess(files, None)
        try:
            agent.wait_socket()

            async def scenario() -> list[dict[str, Any]]:
                client = SocketClient(files.socket)
                login = await client.call("staff.login", {"staff_id": "1", "pin": "1234"})
                out = []
                for payment in ("cash", "card"):
                    quote = await client.call("sale.quote", {
                        "lines": [{"sku": "espresso", "category": "coffee", "qty": 2,
                                   "unit_price": 250},
                                  {"sku": "cake", "category": "bakery", "qty": 1,
                                   "unit_price": 4550}],
                        "token": "tel:+989120000000"})
                    started = time.monotonic()
                    sale = await client.call("sale.commit", {"quote_id": quote["quote_id"],
                                                             "payment": payment,
                                                             "session": login["session"]})
                    sale["commit_s"] = time.monotonic() - started
                    out.append(sale)
                status = await client.call("agent.status")
                out.append(status)
                await client.close()
                return out

            cash, card, status = asyncio.run(asyncio.wait_for(scenario(), 60))
            assert status["printer"]["kind"] == "network"
            receipts = sim.wait_receipts(2, timeout_s=20)
            assert len(receipts) == 2, agent.output()
            first, second = receipts
            for r, sale in ((first, cash), (second, card)):
                assert r.unknown == []
                assert r.qr == [sale["sale_id"]]
                assert r.cuts == 1
                text = r.text
                assert "Café Rose" in text and "espresso" in text and "cake" in text
                assert "on coffee" in text and "for gold members" in text  # why, not ids
                assert "coffee-2" not in text and "gold10" not in text
                assert "Balances after this sale" in text
            assert [d.pin for d in first.drawer] == [2]
            assert second.drawer == []
            assert "Cash" in first.text and "Card" in second.text
            # The printer runs out of paper: the next sale is recorded, the state is
            # reported as an event and in agent.status, and the sale is reprinted.
            sim.state = "paper_out"

            async def paper_out() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
                client = SocketClient(files.socket)
                watcher = SocketClient(files.socket)
                await watcher.call("events.subscribe")
                events = watcher.events().__aiter__()
                login = await client.call("staff.login", {"staff_id": "1", "pin": "1234"})
                quote = await client.call("sale.quote", {"amount": 1000})
                sale = await client.call("sale.commit", {"quote_id": quote["quote_id"],
                                                         "payment": "card",
                                                         "session": login["session"]})
                event: dict[str, Any] = {}
                while event.get("type") != "printer" or event.get("state") != "paper_out":
                    event = await asyncio.wait_for(events.__anext__(), 20)
                status = await client.call("agent.status")
                sim.state = "ok"
                await client.call("receipt.print", {"sale_id": sale["sale_id"],
                                                    "session": login["session"]})
                await client.close()
                await watcher.close()
                return dict(sale), event, status

            third, event, status = asyncio.run(asyncio.wait_for(paper_out(), 60))
            assert event["detail"] == "the printer is out of paper" and event["failed"] == 1
            assert status["printer"]["state"] == "paper_out"
            assert status["printer"]["failed_sales"] == [third["sale_id"]]
            reprinted = sim.wait_receipts(3, timeout_s=20)[-1]
            assert reprinted.qr == [third["sale_id"]] and "REPRINT" in reprinted.text
            print(f"figure: commit {cash['commit_s']:.3f} s (cash), receipt "
                  f"{len(sim.jobs[0])} bytes, {len(first.lines)} lines")
        finally:
            assert agent.stop() == 0
            shutil.rmtree(root, ignore_errors=True)


def test_persian_receipt_rendered_as_image_by_the_real_agent() -> None:
    root = Path(tempfile.mkdtemp(prefix="ctp", dir="/tmp"))
    with SimPrinter() as sim:
        files = write_config(root, profile_text=_profile(sim.address, "fa"))
        seed_store(files)
        agent = AgentProcess(files, None)
        try:
            agent.wait_socket()

            async def scenario() -> dict[str, Any]:
                client = SocketClient(files.socket)
                login = await client.call("staff.login", {"staff_id": "1", "pin": "1234"})
                quote = await client.call("sale.quote", {"amount": 12000,
                                                         "token": "tel:+989120000000"})
                sale = await client.call("sale.commit", {"quote_id": quote["quote_id"],
                                                         "payment": "cash",
                                                         "session": login["session"]})
                await client.close()
                return dict(sale)

            sale = asyncio.run(asyncio.wait_for(scenario(), 60))
            r = sim.wait_receipts(1, timeout_s=20)[0]
            assert r.unknown == [] and r.lines == []
            assert r.images and all(img.size[0] == 576 for img in r.images)
            assert r.qr == [sale["sale_id"]] and r.cuts == 1 and len(r.drawer) == 1
        finally:
            assert agent.stop() == 0
            shutil.rmtree(root, ignore_errors=True)
