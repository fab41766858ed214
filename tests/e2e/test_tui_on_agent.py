"""The terminal UI against a real agent (not the fake): sign in, sell to a member, receipt."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from textual.pilot import Pilot

from agent.localapi.client import SocketClient
from agent.offline_queue import Store
from tests.agent.daemon.support import AgentProcess, terminal_dir


async def wait_for(pilot: Pilot[None], predicate: Callable[[], object],
                   timeout: float = 10.0) -> None:
    waited = 0.0
    while not predicate():
        await pilot.pause(0.05)
        waited += 0.05
        if waited > timeout:
            raise AssertionError("timed out waiting for the UI")


def test_ui_sells_through_the_real_agent() -> None:
    from agent.tui.app import ClubtermApp
    from agent.tui.screens.sale import SaleScreen
    from agent.tui.screens.sale_dialogs import PaymentDialog, ReceiptDialog

    async def scenario(socket: str) -> dict[str, object]:
        api = SocketClient(socket)
        app = ClubtermApp(api, idle_signout_s=0)
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_for(pilot, lambda: app.agent_status.known)
            await wait_for(pilot, lambda: app.screen.__class__.__name__ == "SignInScreen")
            await pilot.press("1", "enter", *"1234", "enter")
            await wait_for(pilot, lambda: isinstance(app.screen, SaleScreen))
            screen = app.screen
            await pilot.press(*"120", "enter", "tab", *"0912 000 0000", "enter")
            try:
                await wait_for(pilot, lambda: screen.quote and screen.quote.get("member"))
            except AssertionError:
                from agent.tui.screens.base import MessageLine
                msg = app.screen.query_one("#message", MessageLine).content
                raise AssertionError(f"message {msg!s}; member {screen.member}; "
                                     f"quote {screen.quote}") from None
            quote = dict(screen.quote)
            await pilot.press("f8")
            await wait_for(pilot, lambda: isinstance(app.screen, PaymentDialog))
            await pilot.press("2", "enter")
            await wait_for(pilot, lambda: isinstance(app.screen, ReceiptDialog))
            receipt = dict(app.screen.receipt)
            await pilot.press("enter")
        await api.close()
        return {"quote": quote, "receipt": receipt}

    with terminal_dir() as files:
        agent = AgentProcess(files, None)
        try:
            agent.wait_socket()
            out = asyncio.run(scenario(str(files.socket)))
        finally:
            agent.stop()
        quote, receipt = out["quote"], out["receipt"]
        assert quote["gross"] == 12000 and quote["member"]["member_id"] == "m-1"  # type: ignore[index]
        assert receipt["payment"] == "card" and receipt["payable"] == quote["payable"]  # type: ignore[index]
        store = Store.open(files.db, "T-0001", "M-7")
        sales = [e.event for e in store.events() if e.type == "sale"]
        store.close()
        assert [s["id"] for s in sales] == [receipt["sale_id"]]  # type: ignore[index]
        assert sales[0]["member_id"] == "m-1" and sales[0]["staff_id"] == "1"
