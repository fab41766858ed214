"""Attacks on receipt printing (#16 item 3): the printer hangs mid-receipt, is
unplugged, runs out of paper; a cash register sends a 1 MB line; names carry
ESC/POS commands. Every time the sale is recorded at once, the state is reported
and the receipt can be printed again."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from agent.errors import ApiError
from hw_sim.printer import SimPrinter
from tests.agent.localapi.harness import GOLD
from tests.agent.printer.support import login, printing_agent, sell, wait_state


def run(coro: object) -> None:
    asyncio.run(asyncio.wait_for(coro, 90))  # type: ignore[arg-type]


async def timed_sale(agent: object, session: str, **kw: object) -> tuple[dict[str, object], float]:
    started = time.monotonic()
    result = await sell(agent, session, **kw)  # type: ignore[arg-type]
    return result, time.monotonic() - started


def test_printer_hanging_mid_receipt_never_holds_a_sale() -> None:
    async def scenario() -> None:
        with SimPrinter(state="hang", hang_after=40) as sim:
            async with printing_agent(sim, timeout_s=0.5) as (agent, printer):
                session = await login(agent)
                results = []
                worst = 0.0
                for _ in range(20):  # more than the queue holds while it hangs
                    result, took = await timed_sale(agent, session)
                    results.append(result)
                    worst = max(worst, took)
                recorded = agent.recorded("sale")
                assert [e["id"] for e in recorded] == [r["sale_id"] for r in results]
                assert worst < 1.0
                status = await wait_state(printer, lambda s: s["state"] == "offline")
                assert status["state"] == "offline" and status["failed"] >= 1
                assert "did not answer" in status["detail"]
                print(f"figure: 20 sales while the printer hangs: slowest commit {worst:.3f} s, "
                      f"printer {status['state']} ({status['detail']}), "
                      f"refused {status['refused']}, queued {status['queued']}")
                # The printer comes back: the last sale is reprinted.
                sim.state = "ok"
                await wait_state(printer, lambda s: s["queued"] == 0 and not s["printing"], 30)
                before = len(sim.receipts())
                await agent.call("receipt.print", {"sale_id": results[-1]["sale_id"],
                                                   "session": session})
                printed = sim.wait_receipts(before + 1)
                assert printed[-1].qr == [results[-1]["sale_id"]]
    run(scenario())


def test_unplugged_printer_connection_refused() -> None:
    async def scenario() -> None:
        spare = socket.socket()
        spare.bind(("127.0.0.1", 0))
        port = spare.getsockname()[1]
        spare.close()  # nothing listens there now
        sim = SimPrinter()
        sim.host, sim.port = "127.0.0.1", port
        try:
            async with printing_agent(sim) as (agent, printer):
                session = await login(agent)
                result, took = await timed_sale(agent, session)
                assert [e["id"] for e in agent.recorded("sale")] == [result["sale_id"]]
                status = await wait_state(printer, lambda s: s["failed"] == 1)
                assert status["state"] == "offline" and "refused" in status["detail"]
                assert status["failed_sales"] == [result["sale_id"]]
                assert (await agent.call("agent.status"))["printer"]["state"] == "offline"
                print(f"figure: unplugged printer: commit {took:.3f} s, state "
                      f"{status['state']} ({status['detail']})")
        finally:
            sim.close()
    run(scenario())


def test_paper_out_still_opens_the_drawer_and_reprints_after_refill() -> None:
    async def scenario() -> None:
        with SimPrinter(state="paper_out") as sim:
            async with printing_agent(sim) as (agent, printer):
                session = await login(agent)
                result = await sell(agent, session)
                status = await wait_state(printer, lambda s: s["failed"] == 1)
                assert status["state"] == "paper_out"
                assert status["detail"] == "the printer is out of paper"
                got = sim.wait_receipts(1)
                # The change is due: the drawer opened; no receipt text was sent.
                assert len(got[0].drawer) == 1 and got[0].lines == [] and got[0].cuts == 0
                sim.state = "cover_open"
                await agent.call("receipt.print", {"sale_id": result["sale_id"],
                                                   "session": session})
                status = await wait_state(printer, lambda s: s["failed"] == 2)
                assert status["state"] == "cover_open"
                sim.state = "ok"
                await agent.call("receipt.print", {"sale_id": result["sale_id"],
                                                   "session": session})
                status = await wait_state(printer, lambda s: s["printed"] == 1)
                assert status["state"] == "ready"
                last = sim.receipts()[-1]
                assert "REPRINT" in last.text and last.cuts == 1
                print(f"figure: paper out -> cover open -> refilled: {status['failed']} failed, "
                      f"{status['printed']} printed, sale recorded once "
                      f"({len(agent.recorded('sale'))})")
    run(scenario())


def test_a_1mb_line_from_a_cash_register_is_refused_and_bounded_lines_print() -> None:
    async def scenario() -> None:
        with SimPrinter() as sim:
            async with printing_agent(sim, auto_print=False) as (agent, _printer):
                session = await login(agent)
                huge = "X" * 1_000_000  # 1 MB (the socket refuses a request over 1 MiB itself)
                started = time.monotonic()
                with pytest.raises(ApiError) as err:
                    await agent.call("receipt.print", {"lines": [huge], "session": session})
                took = time.monotonic() - started
                assert err.value.code == -32602 and "too long" in str(err.value)
                with pytest.raises(ApiError) as err2:
                    await agent.call("receipt.print", {"lines": ["ok"] * 61,
                                                       "session": session})
                assert err2.value.code == -32602
                # The agent still works: a sale, and the largest allowed print.
                await sell(agent, session)
                await agent.call("receipt.print", {"lines": ["Y" * 200] * 60,
                                                   "session": session})
                r = sim.wait_receipts(1)[0]
                assert sum(len(line) for line in r.lines if line.startswith("Y")) == 200 * 60
                assert all(len(line) <= 42 for line in r.lines)
                print(f"figure: 1 MB line refused in {took:.3f} s ({err.value}); 60 x 200 "
                      f"chars printed as {len(r.lines)} lines of at most 42")
    run(scenario())


def test_escpos_commands_in_names_never_reach_the_printer_raw() -> None:
    evil = dict(GOLD, name="Eve\x1bp\x00\x19\xfa\x1dV\x00\x10\x14\x01\x00\x05\x1b@\u202eKid\x9b")

    async def scenario() -> None:
        with SimPrinter() as sim:
            async with printing_agent(sim, members=(evil,)) as (agent, _printer):
                session = await login(agent)
                await sell(agent, session, payment="card")
                r = sim.wait_receipts(1)[0]
                assert r.unknown == []
                assert r.drawer == [] and r.cuts == 1  # no pulse, no cut smuggled in
                member_line = next(line for line in r.lines if line.startswith("Member:"))
                assert member_line.startswith("Member: Eve")
                assert all(ch >= " " for line in r.lines for ch in line)
                # A cash register cannot send commands either.
                with pytest.raises(ApiError) as err:
                    await agent.call("receipt.print", {"lines": ["open \x1bp\x00\x19\xfa"],
                                                       "session": session})
                assert err.value.data["reason"] == "control_character"  # type: ignore[index]
                assert len(agent.recorded("sale")) == 1
                print(f"figure: member name with ESC p / GS V / DLE DC4 / ESC @ printed as "
                      f"{member_line!r}; 0 drawer pulses, 1 cut")
    run(scenario())


def test_a_commit_retried_on_two_connections_prints_one_receipt() -> None:
    async def scenario() -> None:
        with SimPrinter() as sim:
            async with printing_agent(sim) as (agent, printer):
                session = await login(agent)
                q = await agent.call("sale.quote", {"amount": 5000})
                a, b = agent.client(), agent.client()
                params = {"quote_id": q["quote_id"], "payment": "cash", "session": session}
                first, second = await asyncio.gather(a.call("sale.commit", params),
                                                     b.call("sale.commit", params))
                await a.close()
                await b.close()
                assert first["sale_id"] == second["sale_id"]
                await wait_state(printer, lambda s: s["printed"] >= 1)
                await asyncio.sleep(0.3)
                got = sim.receipts()
                assert len(got) == 1 and len(got[0].drawer) == 1
                print(f"figure: 2 concurrent commits of one quote: {len(got)} receipt, "
                      f"{len(got[0].drawer)} drawer pulse")
    run(scenario())


def test_a_printer_that_raises_while_queuing_never_fails_the_commit() -> None:
    """The hook after sale.commit swallows (and logs) anything the printer raises."""

    class Exploding:
        auto_print = True

        def print_sale(self, sale: object, *, reprint: bool = False) -> bool:
            raise RuntimeError("layout bug")

        def print_text(self, lines: object, title: str = "") -> bool:
            raise RuntimeError("layout bug")

        def status(self) -> dict[str, object]:
            return {"kind": "network", "state": "error"}

    async def scenario() -> None:
        with SimPrinter() as sim:
            async with printing_agent(sim) as (agent, _printer):
                agent.view.printer = Exploding()
                session = await login(agent)
                result = await sell(agent, session)
                assert [e["id"] for e in agent.recorded("sale")] == [result["sale_id"]]
                assert result["receipt"]["payable"] > 0
    run(scenario())
