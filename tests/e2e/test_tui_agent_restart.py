"""The UI against a real agent that restarts: it must see cards again and keep the basket.

Seen before: after the agent restarted, the UI never saw a card again, the status
bar kept saying Online, a quote that failed during the outage stayed "Still
pricing…" for ever, and the half-made basket was lost at the forced sign-out.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from agent.localapi.client import SocketClient
from hw_sim.serial_msr import VirtualSerialMsr, track_data
from hw_sim.terminal import seed_store, write_config
from tests.agent.daemon.support import AgentProcess

PROFILE = """description = "test box with a serial stripe reader"
[readers.msr]
kind = "serial"
device = "{device}"
baud = 9600
role = "card"
"""


async def wait_for(pilot: Pilot[None], predicate: Callable[[], object],
                   timeout: float = 20.0, what: str = "the UI") -> None:
    waited = 0.0
    while not predicate():
        await pilot.pause(0.05)
        waited += 0.05
        if waited > timeout:
            raise AssertionError(f"timed out waiting for {what}")


def test_ui_follows_an_agent_restart_sees_cards_and_keeps_the_basket() -> None:
    from agent.tui.app import ClubtermApp
    from agent.tui.screens.sale import SaleScreen

    root = Path(tempfile.mkdtemp(prefix="ctr", dir="/tmp"))
    msr = VirtualSerialMsr(root / "msr")
    files = write_config(root, profile_text=PROFILE.format(device=msr.link))
    seed_store(files)
    agents = [AgentProcess(files, None)]
    cards: list[dict[str, Any]] = []

    def swipe_soon() -> None:
        threading.Timer(0.2, msr.swipe, args=(track_data("4111111111111111"),)).start()

    async def scenario() -> dict[str, Any]:
        api = SocketClient(files.socket)
        app = ClubtermApp(api, idle_signout_s=0)
        seen = app.handle_agent_event

        def spy(event: dict[str, Any]) -> None:
            if event.get("type") == "card":
                cards.append(event)
            seen(event)

        app.handle_agent_event = spy  # type: ignore[method-assign]
        out: dict[str, Any] = {}
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_for(pilot, lambda: app.agent_status.known, what="the agent's status")
            await pilot.press("1", "enter", *"1234", "enter")
            await wait_for(pilot, lambda: isinstance(app.screen, SaleScreen), what="sign-in")
            await pilot.press(*"120", "enter")
            screen = app.screen
            await wait_for(pilot, lambda: screen.quote is not None, what="the first quote")
            swipe_soon()
            await wait_for(pilot, lambda: len(cards) == 1, what="the first swipe")

            agents[0].stop()
            await wait_for(pilot, lambda: not app.agent_status.connected, timeout=5,
                           what="the status bar to show the agent gone")
            out["status_while_down"] = app.agent_status.connected
            agents.append(AgentProcess(files, None))
            agents[1].wait_socket()
            await wait_for(pilot, lambda: app.agent_status.connected and app.agent_status.known,
                           what="the UI to reconnect")
            # The agent's sessions ended with it: the next call signs the cashier
            # out, and the basket must survive that.
            await wait_for(pilot, lambda: not isinstance(app.screen, SaleScreen)
                           or screen.quote is not None, what="a re-price or a sign-out")
            if not isinstance(app.screen, SaleScreen):
                await pilot.press("1", "enter", *"1234", "enter")
                await wait_for(pilot, lambda: isinstance(app.screen, SaleScreen),
                               what="signing in again")
            sale = app.screen
            assert isinstance(sale, SaleScreen)
            await wait_for(pilot, lambda: sale.quote is not None, what="the kept basket's quote")
            out["lines"] = [line.to_param() for line in sale.lines]
            out["gross"] = sale.quote["gross"] if sale.quote else None
            await asyncio.sleep(1.0)  # the reader reopens its pty after the restart
            swipe_soon()
            await wait_for(pilot, lambda: len(cards) == 2, what="a swipe after the restart")
        await api.close()
        return out

    try:
        agents[0].wait_socket()
        out = asyncio.run(scenario())
    finally:
        for agent in agents:
            agent.stop()
        msr.close()
        shutil.rmtree(root, ignore_errors=True)
    print(f"figure: cards seen {len(cards)} (1 before, 1 after the restart); "
          f"basket after restart {out['lines']}")
    assert out["status_while_down"] is False
    assert out["lines"] == [{"sku": None, "category": None, "qty": 1, "unit_price": 12000}]
    assert out["gross"] == 12000
    assert len(cards) == 2
    assert all("4111111111111111" not in str(e) for e in cards)
