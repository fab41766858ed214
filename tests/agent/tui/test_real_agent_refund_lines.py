"""#15 item 3 with #17's refunds by line: a manager refunds chosen lines and
quantities from the recent-sales list, against the real agent."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest

from agent.tui.app import ClubtermApp
from agent.tui.screens.recent_sales import LinesRefundDialog, RecentSalesDialog
from agent.tui.screens.sale import SaleScreen
from tests.agent.localapi.harness import Harness

from .conftest import message_text, wait_for

# _stable_ids: the snapshots' autouse fixture (ids from a counter), used here too.
from .test_real_agent_snapshots import _stable_ids, settle_and_compare  # noqa: F401
from .test_real_agent_till import till

BASKET = [{"sku": "espresso", "category": "coffee", "qty": 3, "unit_price": 250},
          {"sku": "cake", "category": "bakery", "qty": 2, "unit_price": 4550}]


async def _basket_sale(h: Harness) -> dict[str, Any]:
    c = h.client()
    session = await h.login("mg", "9999")
    q = await c.call("sale.quote", {"lines": BASKET, "token": "nfc:04A1B2"})
    return dict(await c.call("sale.commit", {"quote_id": q["quote_id"], "session": session}))


async def _open_refund(pilot: Any, app: ClubtermApp) -> LinesRefundDialog:
    await wait_for(pilot, lambda: app.agent_status.known)
    await pilot.press(*"mg", "enter", *"9999", "enter")
    await wait_for(pilot, lambda: isinstance(app.screen, SaleScreen))
    await pilot.press("f9")
    await wait_for(pilot, lambda: isinstance(app.screen, RecentSalesDialog)
                   and len(app.screen.sales) == 1)
    await pilot.press("ctrl+f")
    await wait_for(pilot, lambda: isinstance(app.screen, LinesRefundDialog))
    assert isinstance(app.screen, LinesRefundDialog)
    return app.screen


async def test_manager_refunds_one_cake_then_the_rest() -> None:
    with tempfile.TemporaryDirectory(prefix="cttui") as tmp:
        async with Harness(Path(tmp)) as h:
            sale = await _basket_sale(h)
            app = ClubtermApp(h.client(), idle_signout_s=0, clock=lambda: h.now)
            async with app.run_test(size=(80, 24)) as pilot:
                dialog = await _open_refund(pilot, app)
                # Tab to the lines, down to the cake, + + − : one cake; 9 is capped at 2.
                await pilot.press("tab", "down", "+", "+", "-")
                assert dialog.chosen == [0, 1]
                await pilot.press("up", "9", "0")
                assert dialog.chosen == [0, 1]
                await pilot.press("enter")  # back to the reason
                await pilot.press(*"broken", "enter")
                await wait_for(pilot, lambda: any(e["type"] == "refund_lines"
                                                  for e in h.outbox()))
                part = next(e for e in h.outbox() if e["type"] == "refund_lines")
                assert part["lines"] == [{"line": 1, "qty": 1}]
                assert part["reason"] == "broken" and part["recorded_by"] == "mg"
                try:
                    await wait_for(pilot, lambda: "give back" in message_text(app))
                except AssertionError:
                    raise AssertionError(f"{app.screen} {message_text(app)!r}") from None
                await wait_for(pilot, lambda: isinstance(app.screen, RecentSalesDialog)
                               and app.screen.sales
                               and app.screen.sales[0].get("refunded_lines") == [0, 1])
                assert "partly refunded" in str(app.screen.query_one("#sales").get_row_at(0))
                # Again, nothing chosen: all that is left goes back.
                await pilot.press("ctrl+f")
                await wait_for(pilot, lambda: isinstance(app.screen, LinesRefundDialog))
                assert app.screen.left == [3, 1]  # type: ignore[attr-defined]
                await pilot.press(*"rest", "enter")
                await wait_for(pilot, lambda: len([e for e in h.outbox()
                                                   if e["type"] == "refund_lines"]) == 2)
                parts = [e for e in h.outbox() if e["type"] == "refund_lines"]
                assert parts[1]["completes"] is True
                assert sum(p["payable"] for p in parts) == sale["receipt"]["payable"]
                await wait_for(pilot, lambda: isinstance(app.screen, RecentSalesDialog)
                               and app.screen.sales
                               and app.screen.sales[0].get("fully_refunded"))
                await pilot.press("ctrl+f")
                await wait_for(pilot, lambda: "already refunded" in message_text(app))


@pytest.mark.parametrize("size", [(80, 24), (60, 20)], ids=["80x24", "60x20"])
async def test_refund_lines_snapshot(snapshot: Any, size: tuple[int, int]) -> None:
    async with till("mg", "9999", size=size) as (h, app, pilot):
        await _basket_sale(h)
        await pilot.press("f9")
        await wait_for(pilot, lambda: isinstance(app.screen, RecentSalesDialog)
                       and len(app.screen.sales) == 1)
        await pilot.press("ctrl+f")
        await wait_for(pilot, lambda: isinstance(app.screen, LinesRefundDialog))
        await pilot.press("tab", "down", "+")
        assert await settle_and_compare(snapshot, pilot)
