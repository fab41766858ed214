"""(1.3) Stored value and gift cards in the UI against the real agent: a gift card and a
wallet top-up sold from the till (catalogue products), paid with at once in the Pay
dialog (5 gift card: its code typed; 4 stored value), and a tapped gift card's balance
shown outside a sale — at 80x24 in English and at 60x20 in Persian."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest

from agent.tui.app import ClubtermApp
from agent.tui.i18n import load_locale, set_locale
from agent.tui.screens.sale_dialogs import PaymentDialog, ReceiptDialog
from hw_sim.club.catalogue import VALUE_PRODUCTS
from tests.agent.localapi import harness

from .conftest import at_the_till, card_event, message_text, wait_for

GIFT_100 = "code:" + VALUE_PRODUCTS[2]["barcodes"][0]
WALLET_50 = "code:" + VALUE_PRODUCTS[0]["barcodes"][0]


async def _pay(pilot: Any, app: ClubtermApp, *keys: str) -> dict[str, Any]:
    await pilot.press("f8")
    await wait_for(pilot, lambda: isinstance(app.screen, PaymentDialog))
    await pilot.press(*keys)
    await wait_for(pilot, lambda: isinstance(app.screen, ReceiptDialog), timeout=10)
    receipt: dict[str, Any] = app.screen.receipt  # type: ignore[attr-defined]
    await pilot.press("enter")
    return receipt


async def test_gift_card_sold_then_paid_with_by_its_code_at_80x24() -> None:
    with tempfile.TemporaryDirectory(prefix="cttui") as tmp:
        async with harness.Harness(Path(tmp)) as h:
            app = ClubtermApp(h.client(), idle_signout_s=0, clock=lambda: h.now)
            async with app.run_test(size=(80, 24)) as pilot:
                screen = await at_the_till(pilot)
                h.server.broadcast(card_event(GIFT_100, "hid"))  # the gift card product scanned
                await wait_for(pilot, lambda: screen.quote is not None, timeout=10)
                assert screen.quote["gift_cards"][0]["amount"] == 10000
                receipt = await _pay(pilot, app, "2", "enter")
                card = receipt["gift_cards_issued"][0]
                code = card["token"][5:]
                # Outside a sale: the card tapped (scanned) shows its balance.
                h.server.broadcast(card_event(card["token"], "hid"))
                await wait_for(pilot, lambda: "Gift card:" in message_text(app), timeout=10)
                assert "100.00" in message_text(app)
                # A sale of 30.00 paid by the card, its code typed in the Pay dialog.
                await pilot.press(*"30", "enter")
                await wait_for(pilot, lambda: screen.quote is not None)
                receipt = await _pay(pilot, app, "5", *code.lower(), "enter", "enter")
                assert receipt["tenders"] == [{"method": "gift_card", "amount": 3000,
                                               "card_id": card["card_id"]}]
                # 80.00 more: the card pays its last 70.00, cash the rest.
                await pilot.press(*"80", "enter")
                await wait_for(pilot, lambda: screen.quote is not None
                               and screen.quote["payable"] == 8000)
                receipt = await _pay(pilot, app, "5", *code, "enter", "1", "enter")
                assert receipt["tenders"] == [
                    {"method": "cash", "amount": 1000},
                    {"method": "gift_card", "amount": 7000, "card_id": card["card_id"]}]
            redeems = [e for e in h.outbox() if e["type"] == "gift_card_redeem"]
            assert [r["amount"] for r in redeems] == [3000, 7000]


@pytest.mark.parametrize("lang", ["fa"])
async def test_wallet_top_up_then_stored_value_in_persian_at_60x20(lang: str) -> None:
    try:
        with tempfile.TemporaryDirectory(prefix="cttui") as tmp:
            async with harness.Harness(Path(tmp)) as h:
                app = ClubtermApp(h.client(), locale=lang, idle_signout_s=0,
                                  clock=lambda: h.now)
                async with app.run_test(size=(60, 20)) as pilot:
                    screen = await at_the_till(pilot)
                    h.server.broadcast(card_event("nfc:04A1B2"))
                    await wait_for(pilot, lambda: screen.member is not None, timeout=10)
                    h.server.broadcast(card_event(WALLET_50, "hid"))
                    await wait_for(pilot, lambda: screen.quote is not None
                                   and bool(screen.quote.get("topups")), timeout=10)
                    assert screen.quote["payable"] == 5000  # no gold discount on a top-up
                    receipt = await _pay(pilot, app, "۱", "enter")
                    assert receipt["topups"][0]["amount"] == 5000
                    # Next sale: the member again, paid from the wallet (۴).
                    h.server.broadcast(card_event("nfc:04A1B2"))
                    await wait_for(pilot, lambda: screen.member is not None, timeout=10)
                    await pilot.press(*"20", "enter")
                    await wait_for(pilot, lambda: screen.quote is not None
                                   and screen.quote.get("member") is not None)
                    payable = screen.quote["payable"]
                    receipt = await _pay(pilot, app, "۴", "enter")
                    assert receipt["tenders"] == [{"method": "stored_value", "amount": payable,
                                                   "kind": "value.wallet"}]
                    await pilot.press("ctrl+v")  # no member any more: a hint, no crash
                    await pilot.pause(0.2)
                sales = [e for e in h.outbox() if e["type"] == "sale"]
                assert sales[-1]["tenders"][0]["method"] == "stored_value"
    finally:
        set_locale(load_locale("en"))


async def test_open_amount_gift_card_found_by_name() -> None:
    with tempfile.TemporaryDirectory(prefix="cttui") as tmp:
        async with harness.Harness(Path(tmp)) as h:
            app = ClubtermApp(h.client(), idle_signout_s=0, clock=lambda: h.now)
            async with app.run_test(size=(80, 24)) as pilot:
                screen = await at_the_till(pilot)
                await pilot.press(*"Gift card", "ctrl+f")
                await wait_for(pilot, lambda: "amount" in message_text(app), timeout=10)
                await pilot.press(*"25", "enter")
                await wait_for(pilot, lambda: screen.quote is not None
                               and bool(screen.quote.get("gift_cards")), timeout=10)
                assert screen.quote["payable"] == 2500
                receipt = await _pay(pilot, app, "1", "enter")
                assert receipt["gift_cards_issued"][0]["amount"] == 2500


async def test_car_wash_paid_in_units_and_a_top_up_without_member_does_not_loop() -> None:
    with tempfile.TemporaryDirectory(prefix="cttui") as tmp:
        async with harness.Harness(Path(tmp)) as h:
            gold = {**harness.GOLD, "version": 4,
                    "balances": {**harness.GOLD["balances"], "units.wash": 1}}
            h.store.members.apply_changes({"from_version": 10, "to_version": 11,
                                           "members": [gold]})
            asked: list[int] = []
            quote = h.services.sale_quote

            async def counted(params: Any, conn: Any) -> Any:
                asked.append(1)
                return await quote(params, conn)
            h.services.sale_quote = counted  # type: ignore[method-assign]
            app = ClubtermApp(h.client(), idle_signout_s=0, clock=lambda: h.now)
            async with app.run_test(size=(80, 24)) as pilot:
                screen = await at_the_till(pilot)
                # A top-up with no member: refused once, with its reason, no loop.
                h.server.broadcast(card_event(WALLET_50, "hid"))
                await wait_for(pilot, lambda: "member" in message_text(app), timeout=10)
                await pilot.pause(0.5)
                assert screen.quote is None and len(asked) == 1, len(asked)
                await pilot.press("ctrl+r")
                h.server.broadcast(card_event("nfc:04A1B2"))
                await wait_for(pilot, lambda: screen.member is not None, timeout=10)
                await pilot.press(*"Car wash", "ctrl+f")
                await wait_for(pilot, lambda: screen.quote is not None, timeout=10)
                await pilot.press("ctrl+u")
                await wait_for(pilot, lambda: screen.quote is not None
                               and bool(screen.quote.get("units_used")), timeout=10)
                assert screen.quote["payable"] == 0
                await pilot.press("f8")
                await wait_for(pilot, lambda: isinstance(app.screen, PaymentDialog))
                await pilot.press("1", "enter")
                await wait_for(pilot, lambda: isinstance(app.screen, ReceiptDialog), timeout=10)
                await pilot.press("enter")
                # The last wash used: asking again falls back to money, once.
                h.server.broadcast(card_event("nfc:04A1B2"))
                await wait_for(pilot, lambda: screen.member is not None, timeout=10)
                await pilot.press(*"Car wash", "ctrl+f")
                await wait_for(pilot, lambda: screen.quote is not None, timeout=10)
                await pilot.press("ctrl+u")
                await wait_for(pilot, lambda: screen.quote is not None
                               and screen.quote["payable"] > 0
                               and not any(line.units for line in screen.lines), timeout=10)
            sales = [e for e in h.outbox() if e["type"] == "sale"]
            assert sales[-1]["units_used"] == [{"line": 0, "kind": "units.wash", "units": 1}]
