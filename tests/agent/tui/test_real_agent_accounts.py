"""(1.3) House accounts in the UI against the real agent: pay on account in the Pay dialog
(6), a refusal shown clearly, and the account page (Ctrl+K) taking a payment — at 80x24
and 60x20, English and Persian."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from agent.tui.app import ClubtermApp
from agent.tui.i18n import load_locale, set_locale
from agent.tui.screens.account_dialog import AccountDialog
from agent.tui.screens.sale import SaleScreen
from agent.tui.screens.sale_dialogs import PaymentDialog, ReceiptDialog
from tests.agent.localapi import harness
from tests.agent.localapi.test_accounts import ACCOUNT, OTHER, _seed

from .conftest import at_the_till, card_event, message_text, wait_for


def _drawn(widget: Any, width: int) -> str:
    console = Console(width=width, record=True, color_system=None)
    console.print(widget.content)
    return console.export_text()


async def _sale_with(pilot: Any, app: ClubtermApp, h: harness.Harness, token: str,
                     amount: str = "50") -> SaleScreen:
    screen = await at_the_till(pilot)
    await pilot.press(*amount, "enter")
    await wait_for(pilot, lambda: screen.quote is not None)
    h.server.broadcast(card_event(token))
    await wait_for(pilot, lambda: screen.quote is not None
                   and screen.quote.get("member") is not None, timeout=10)
    return screen


@pytest.mark.parametrize(("size", "locale"), [((80, 24), "en"), ((60, 20), "en"),
                                              ((80, 24), "fa"), ((60, 20), "fa")])
async def test_pay_on_account_in_the_pay_dialog(size: tuple[int, int], locale: str) -> None:
    with tempfile.TemporaryDirectory(prefix="cttui") as tmp:
        async with harness.Harness(Path(tmp)) as h:
            _seed(h)
            app = ClubtermApp(h.client(), locale=locale, idle_signout_s=0, clock=lambda: h.now)
            try:
                async with app.run_test(size=size) as pilot:
                    screen = await _sale_with(pilot, app, h, "nfc:04A1B2")
                    await pilot.press("f8")
                    await wait_for(pilot, lambda: isinstance(app.screen, PaymentDialog))
                    dialog = app.screen
                    assert isinstance(dialog, PaymentDialog)
                    line = dialog.query_one("#account-line")
                    await pilot.pause()
                    assert line.region.width <= size[0]
                    text = _drawn(line, size[0] - 4)
                    assert ("Pars Print Co." in text) or ("Pars" in text)
                    print(f"figure: {size} {locale}: account line {text.strip()!r}")
                    await pilot.press("6", "enter")
                    await wait_for(pilot, lambda: isinstance(app.screen, ReceiptDialog),
                                   timeout=10)
                    await pilot.press("enter")
                    await wait_for(pilot, lambda: isinstance(app.screen, SaleScreen))
                    del screen
            finally:
                set_locale(load_locale("en"))
            charge = [e for e in h.outbox() if e["type"] == "account_charge"]
            sale = [e for e in h.outbox() if e["type"] == "sale"]
            assert len(charge) == 1 and len(sale) == 1
            assert sale[0]["tenders"][0]["method"] == "account"
            assert charge[0]["amount"] == sale[0]["payable"]


async def test_unauthorised_buyer_is_told_and_nothing_recorded() -> None:
    with tempfile.TemporaryDirectory(prefix="cttui") as tmp:
        async with harness.Harness(Path(tmp)) as h:
            _seed(h)
            app = ClubtermApp(h.client(), idle_signout_s=0, clock=lambda: h.now)
            async with app.run_test(size=(80, 24)) as pilot:
                await _sale_with(pilot, app, h, "nfc:0909")
                await pilot.press("f8")
                await wait_for(pilot, lambda: isinstance(app.screen, PaymentDialog))
                await pilot.press("6")
                hint = str(app.screen.query_one("#pay-hint").content)
                assert "No house account" in hint
                await pilot.press("enter")
                await pilot.pause(0.2)
                assert isinstance(app.screen, PaymentDialog)
            assert [e for e in h.outbox() if e["type"] in ("sale", "account_charge")] == []


async def test_over_the_limit_is_refused_with_the_reason() -> None:
    with tempfile.TemporaryDirectory(prefix="cttui") as tmp:
        async with harness.Harness(Path(tmp)) as h:
            # The agent's own check, in the write transaction: the UI's copy of the
            # account is old (another till charged it meanwhile).
            _seed(h, {**ACCOUNT, "credit_limit": 100_000}, OTHER)
            app = ClubtermApp(h.client(), idle_signout_s=0, clock=lambda: h.now)
            async with app.run_test(size=(80, 24)) as pilot:
                await _sale_with(pilot, app, h, "nfc:04A1B2", amount="500")
                await pilot.press("f8")
                await wait_for(pilot, lambda: isinstance(app.screen, PaymentDialog))
                v = h.store.members.members_version()
                h.store.members.apply_changes({"from_version": v, "to_version": v + 1,
                                               "members": [{**ACCOUNT, "version": 99,
                                                            "balances": {"owed": 99_000},
                                                            "credit_limit": 100_000}]})
                await pilot.press("6", "enter")
                await wait_for(pilot, lambda: isinstance(app.screen, SaleScreen), timeout=10)
                await wait_for(pilot, lambda: "credit limit" in message_text(app))
            assert [e for e in h.outbox() if e["type"] in ("sale", "account_charge")] == []


@pytest.mark.parametrize(("size", "locale"), [((80, 24), "en"), ((60, 20), "fa")])
async def test_account_page_takes_a_payment(size: tuple[int, int], locale: str) -> None:
    with tempfile.TemporaryDirectory(prefix="cttui") as tmp:
        async with harness.Harness(Path(tmp)) as h:
            _seed(h)
            app = ClubtermApp(h.client(), locale=locale, idle_signout_s=0, clock=lambda: h.now)
            try:
                async with app.run_test(size=size) as pilot:
                    await wait_for(pilot, lambda: app.agent_status.known)
                    await pilot.press(*"c1", "enter", *"1234", "enter")
                    await wait_for(pilot, lambda: isinstance(app.screen, SaleScreen))
                    await pilot.press("ctrl+k")
                    await wait_for(pilot, lambda: isinstance(app.screen, AccountDialog))
                    dialog = app.screen
                    assert isinstance(dialog, AccountDialog)
                    await pilot.press(*"ACCT-2001", "enter")
                    await wait_for(pilot, lambda: dialog.account is not None)
                    await pilot.pause()
                    info = dialog.query_one("#account-info")
                    assert info.region.right <= size[0]
                    assert dialog.query_one("#account-hint").region.bottom <= size[1]
                    drawn = _drawn(info, size[0] - 6)
                    print(f"figure: {size} {locale}: account page\n{drawn}")
                    assert "Sara" in drawn
                    await pilot.press(*"5", "enter")
                    await wait_for(pilot, lambda: dialog.account is not None
                                   and dialog.account["owed"] == 1500, timeout=10)
                    # More than owed: refused before it reaches the agent.
                    await pilot.press(*"9999", "enter")
                    await pilot.pause(0.2)
                    assert dialog.account["owed"] == 1500
            finally:
                set_locale(load_locale("en"))
            pays = [e for e in h.outbox() if e["type"] == "account_payment"]
            assert [(p["amount"], p["method"]) for p in pays] == [(500, "cash")]


async def test_the_account_card_shown_at_the_till_pays_for_anyone() -> None:
    with tempfile.TemporaryDirectory(prefix="cttui") as tmp:
        async with harness.Harness(Path(tmp)) as h:
            _seed(h)
            app = ClubtermApp(h.client(), idle_signout_s=0, clock=lambda: h.now)
            async with app.run_test(size=(60, 20)) as pilot:
                await wait_for(pilot, lambda: app.agent_status.known)
                await pilot.press(*"c1", "enter", *"1234", "enter")
                await wait_for(pilot, lambda: isinstance(app.screen, SaleScreen))
                screen = app.screen
                assert isinstance(screen, SaleScreen)
                await pilot.press(*"12", "enter")
                await wait_for(pilot, lambda: screen.quote is not None)
                h.server.broadcast({"type": "card", "source": "hid", "reader": "sim",
                                    "token": "code:ACCT-2001", "token_kind": "code",
                                    "masked": None, "member": None})
                await wait_for(pilot, lambda: screen.account_token == "code:ACCT-2001")
                assert "House account card" in message_text(app)
                await pilot.press("f8")
                await wait_for(pilot, lambda: isinstance(app.screen, PaymentDialog))
                await pilot.press("6", "enter")
                await wait_for(pilot, lambda: isinstance(app.screen, ReceiptDialog),
                               timeout=10)
            charge = next(e for e in h.outbox() if e["type"] == "account_charge")
            assert (charge["member_id"], charge["identified_by"], charge["amount"]) == \
                (None, "code:ACCT-2001", 1200)


async def test_a_pooled_member_shows_the_family_pool() -> None:
    from agent.tui.widgets.sale_panels import member_lines
    from tests.agent.offline_queue.helpers import member_record
    from tests.agent.offline_queue.test_pools import pool_record

    with tempfile.TemporaryDirectory(prefix="cttui") as tmp:
        async with harness.Harness(Path(tmp)) as h:
            _seed(h, member_record("m-5", tokens=("nfc:0505",), points=0, pool="pl-1",
                                   version=50), {**pool_record(2500), "version": 50})
            app = ClubtermApp(h.client(), locale="fa", idle_signout_s=0, clock=lambda: h.now)
            try:
                async with app.run_test(size=(60, 20)) as pilot:
                    screen = await _sale_with(pilot, app, h, "nfc:0505")
                    assert screen.member is not None
                    assert screen.member["balances"]["points"] == 2500
                    console = Console(width=56, record=True, color_system=None)
                    console.print(member_lines(screen.member, screen.fmt))
                    drawn = console.export_text()
                    print(f"figure: pooled member panel (fa, 60x20)\n{drawn}")
                    assert "۲٬۵۰۰" in drawn or "2,500" in drawn or "۲۵۰۰" in drawn
            finally:
                set_locale(load_locale("en"))
