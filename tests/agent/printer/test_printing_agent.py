"""Receipts printed by the demo agent (real store, services, socket) on the simulated
printer, decoded: text, QR, cut, drawer; reprint; receipt.print; printer.status."""

from __future__ import annotations

import asyncio

import pytest

from agent.errors import ApiError
from hw_sim.printer import SimPrinter
from tests.agent.printer.support import login, printing_agent, sell, wait_state


def run(coro: object) -> None:
    asyncio.run(asyncio.wait_for(coro, 60))  # type: ignore[arg-type]


def test_cash_sale_prints_receipt_with_benefits_qr_cut_and_drawer() -> None:
    async def scenario() -> None:
        with SimPrinter() as sim:
            async with printing_agent(sim) as (agent, printer):
                session = await login(agent)
                result = await sell(agent, session)
                receipts = sim.wait_receipts(1)
                assert len(receipts) == 1
                r = receipts[0]
                text = r.text
                assert "Café Rose" in text and "12 Main St" in text
                assert "espresso-beans" in text and "2 x 60.00 EUR" in text
                # The benefits and why, never a rule id.
                assert "10% off" in text and "for gold members" in text
                assert "on coffee" in text
                assert "gold10" not in text and "coffee-2" not in text
                assert "Points earned" in text and "Balances after this sale" in text
                assert r.qr == [result["sale_id"]]
                assert r.cuts == 1
                assert [d.pin for d in r.drawer] == [2]
                assert r.unknown == []
                assert "Priced offline" not in text
                status = await wait_state(printer, lambda s: s["printed"] == 1)
                assert status["state"] == "ready" and status["last_job"]["result"] == "printed"
    run(scenario())


def test_card_sale_opens_no_drawer_and_offline_sale_says_so() -> None:
    async def scenario() -> None:
        with SimPrinter() as sim:
            async with printing_agent(sim) as (agent, _printer):
                agent.set_online(False)
                session = await login(agent)
                await sell(agent, session, payment="card", token=None)
                r = sim.wait_receipts(1)[0]
                assert r.drawer == [] and r.cuts == 1
                assert "Card" in r.text
                assert "Priced offline: balances are confirmed" in r.text
    run(scenario())


def test_reprint_and_register_lines_and_status() -> None:
    async def scenario() -> None:
        with SimPrinter() as sim:
            async with printing_agent(sim, auto_print=False) as (agent, _printer):
                session = await login(agent)
                result = await sell(agent, session)
                await asyncio.sleep(0.3)
                assert sim.receipts() == []  # auto_print off
                answer = await agent.call("receipt.print", {"sale_id": result["sale_id"],
                                                            "session": session})
                assert answer["queued"] is True
                r = sim.wait_receipts(1)[0]
                assert "REPRINT" in r.text and r.qr == [result["sale_id"]]
                assert r.drawer == []  # a reprint does not open the drawer
                await agent.call("receipt.print", {"lines": ["Your points: 298",
                                                             "Next visit: 2x points"],
                                                   "title": "Loyalty", "session": session})
                r2 = sim.wait_receipts(2)[1]
                assert "Your points: 298" in r2.text and r2.cuts == 1
                # The sim has the bytes before the worker counts the job done.
                for _ in range(100):
                    status = await agent.call("printer.status")
                    if status["printed"] == 2:
                        break
                    await asyncio.sleep(0.02)
                assert status["kind"] == "network" and status["printed"] == 2
                full = await agent.call("agent.status")
                assert full["printer"]["state"] == "ready"
                with pytest.raises(ApiError) as err:
                    await agent.call("receipt.print", {"sale_id": "nope", "session": session})
                assert err.value.code == -32007
    run(scenario())


def test_persian_receipt_is_an_image() -> None:
    async def scenario() -> None:
        with SimPrinter() as sim:
            async with printing_agent(sim, language="fa") as (agent, _printer):
                session = await login(agent)
                result = await sell(agent, session)
                r = sim.wait_receipts(1)[0]
                # Everything but the QR is drawn (shaped, right to left) as raster images.
                assert r.lines == [] and len(r.images) == 2
                assert all(img.size[0] == 576 for img in r.images)
                assert sum(img.size[1] for img in r.images) > 600
                assert r.qr == [result["sale_id"]] and r.cuts == 1 and len(r.drawer) == 1
    run(scenario())


def test_clubterm_status_shows_the_printer() -> None:
    from agent.cli.status import format_status

    text = format_status({"printer": {"kind": "network", "address": "10.0.0.9:9100",
                                      "state": "paper_out",
                                      "detail": "the printer is out of paper\x1b[2J",
                                      "printed": 3, "failed": 1,
                                      "last_job": {"result": "failed", "sale_id": "s-1"}}})
    line = next(x for x in text.splitlines() if x.startswith("printer"))
    assert line.startswith("printer      network 10.0.0.9:9100: paper_out (the printer is out "
                           "of paper")
    assert "3 printed, 1 failed, last failed s-1" in line and "\x1b" not in line
