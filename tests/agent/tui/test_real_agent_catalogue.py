"""The till with the club's catalogue, against the real agent (#16 item 4): a scan
adds the product with its name and price, scanning again adds one, a weighed product
asks its grams, Ctrl+F finds by name, an unknown barcode asks its price, each line
shows its benefits; the sale is recorded with the catalogue's skus."""

from __future__ import annotations

from typing import Any

import pytest
from textual.widgets import DataTable

from hw_sim.club.catalogue import find_product
from tests.agent.localapi.harness import Harness

from .conftest import wait_for
from .test_real_agent_snapshots import _stable_ids, settle_and_compare  # noqa: F401
from .test_real_agent_till import till

ESPRESSO = find_product("Espresso")["barcodes"][0]
CROISSANT = find_product("Croissant")["barcodes"][0]


def cells(app: Any) -> list[list[str]]:
    table = app.screen.query_one("#basket", DataTable)
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


async def scan(h: Harness, code: str) -> dict[str, Any]:
    return await h.agent.tap("code:" + code, source="hid")


async def _basket(h: Harness, app: Any, pilot: Any) -> Any:
    screen = app.screen
    await pilot.press("tab", *"0912 123 4567", "enter")  # Sara K., gold
    await wait_for(pilot, lambda: (screen.member or {}).get("name") == "Sara K.", timeout=10)
    event = await scan(h, ESPRESSO)
    assert event["kind"] == "product" and event["product"]["sku"] == "cafe-espresso"
    await wait_for(pilot, lambda: len(screen.lines) == 1)
    await scan(h, ESPRESSO)  # every scan counts
    await wait_for(pilot, lambda: screen.lines[0].qty == 2)
    await scan(h, CROISSANT)
    await wait_for(pilot, lambda: len(screen.lines) == 2 and screen.quote is not None
                   and len(screen.quote["lines"]) == 2, timeout=10)
    return screen


async def test_scan_weigh_find_unknown_and_record() -> None:
    async with till() as (h, app, pilot):
        screen = await _basket(h, app, pilot)
        rows = cells(app)
        details = screen.quote["line_details"]
        # Each line shows its own share of the benefits.
        for row, detail in zip(rows, details, strict=True):
            discount = screen.fmt(detail["benefits"]["discount"])
            assert f"−{discount}" in row[0] and f"+{detail['benefits']['points']} pts" in row[0]
        # The name, then its benefits (beside it, or under it where the money would
        # not fit beside).
        share = [f"−{screen.fmt(d['benefits']['discount'])}" for d in details]
        assert rows[0][0].split()[:2] == ["Espresso", share[0]]
        assert rows[0][1] == "2"
        assert rows[0][2] == "€2.20"  # Sara is gold: the catalogue's member price
        assert rows[1][0].split()[:2] == ["Croissant", share[1]]
        assert "bakery-members-10" in details[1]["benefits"]["rules"]
        assert "bakery-members-10" not in details[0]["benefits"]["rules"]
        # Ctrl+F finds by name; a weighed product asks its grams.
        await pilot.press(*"pistach", "ctrl+f")
        await wait_for(pilot, lambda: screen.pending_weight is not None)
        await pilot.press(*"250", "enter")
        await wait_for(pilot, lambda: len(screen.lines) == 3 and screen.lines[2].weighed)
        # An unknown barcode asks for its price.
        await pilot.press(*"4006381333931", "enter")
        await wait_for(pilot, lambda: screen.pending_sku == "4006381333931", timeout=10)
        await pilot.press(*"1.99", "enter")
        await wait_for(pilot, lambda: len(screen.lines) == 4 and screen.quote is not None
                       and len(screen.quote["lines"]) == 4, timeout=10)
        assert cells(app)[2][1] == "250 g"
        # Two names match: the cashier is asked which.
        await pilot.press(*"bread", "ctrl+f")
        await wait_for(pilot, lambda: "Which one?" in str(
            app.screen.query_one("#message").content))
        assert len(screen.lines) == 4
        await pilot.press("ctrl+a", "backspace")
        await pilot.press("f8")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "PaymentDialog")
        await pilot.press("1", "enter")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "ReceiptDialog", timeout=10)
        # The receipt on screen names the products, not their skus.
        from agent.tui.screens.sale_dialogs import receipt_table
        from tests.agent.tui.test_real_agent_till import _plain

        shown = _plain(receipt_table(app.screen.receipt, screen.fmt))
        assert "Espresso × 2" in shown and "Croissant" in shown, shown
        assert "cafe-espresso" not in shown and "bake-croissant" not in shown, shown
        sale = next(e for e in h.outbox() if e["type"] == "sale")
    assert sale["lines"] == [
        {"sku": "cafe-espresso", "category": "coffee", "qty": 2, "unit_price": 220},
        {"sku": "bake-croissant", "category": "bakery", "qty": 1, "unit_price": 220},
        {"sku": "groc-pistachios", "category": "nuts", "qty": 1, "unit_price": 822},
        {"sku": "4006381333931", "category": None, "qty": 1, "unit_price": 199}]
    assert any(d["rule"] == "bakery-members-10" for d in sale["discounts"])


@pytest.mark.parametrize("size", [(80, 24), (60, 20)])
async def test_catalogue_basket_snapshot(snapshot: Any, size: tuple[int, int]) -> None:
    async with till(size=size) as (h, app, pilot):
        await _basket(h, app, pilot)
        assert await settle_and_compare(snapshot, pilot)


async def test_recent_sales_and_the_refund_dialog_name_the_products() -> None:
    # The sale event keeps skus (the wire's v1 line); sale.list adds the catalogue's
    # names, so a refund by line shows "Croissant", not "bake-croissant".
    from agent.tui.screens.recent_sales import line_label

    async with till() as (h, app, pilot):
        await _basket(h, app, pilot)
        await pilot.press("f8")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "PaymentDialog")
        await pilot.press("2", "enter")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "ReceiptDialog", timeout=10)
        c = h.client()
        session = await h.login()
        listed = (await c.call("sale.list", {"session": session}))["sales"][0]
        labels = [line_label(line, i) for i, line in enumerate(listed["lines"])]
        assert labels == ["Espresso", "Croissant"], labels
        assert [line["sku"] for line in listed["lines"]] == ["cafe-espresso", "bake-croissant"]


@pytest.mark.parametrize("size", [(80, 24), (60, 20)])
async def test_a_long_line_keeps_its_price_and_total_in_sight(size: tuple[int, int]) -> None:
    """A product with a long name and its benefits at an 80- or 60-column till: the
    basket never scrolls sideways (the money would go out of sight); the benefits go
    under the name instead."""
    async with till(size=size) as (h, app, pilot):
        screen = await _basket(h, app, pilot)
        gym = find_product("gym pass")["barcodes"][0]
        await scan(h, gym)
        await wait_for(pilot, lambda: len(screen.lines) == 3 and screen.quote is not None
                       and len(screen.quote["lines"]) == 3, timeout=10)
        await pilot.pause(0.2)
        table = app.screen.query_one("#basket", DataTable)
        assert table.virtual_size.width <= table.size.width, (table.virtual_size, table.size)
        row = cells(app)[2]
        assert row[0].startswith("10-visit gym pass") and "+107 pts" in row[0]
        assert row[3] == screen.fmt(int(screen.quote["lines"][2]["unit_price"]))
        if size == (80, 24):  # 44 columns beside the quote: under the name
            assert row[0].split("\n")[1].strip().startswith("−€12.00")
