"""60×20 and Persian against the real agent (#15 items 11 and 12)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from rich.console import Console
from textual.widgets import Static
from textual.widgets._footer import FooterKey

from agent.tui.app import ClubtermApp
from agent.tui.i18n import load_locale, set_locale, wrap_visual
from agent.tui.screens.base import MessageLine
from agent.tui.screens.sale import SaleScreen
from agent.tui.widgets.bidi import BidiText

from .conftest import message_text, wait_for

harness = pytest.importorskip("tests.agent.localapi.harness")


def visible(widget: object) -> bool:
    """The widget has a region inside the 60×20 screen."""
    region = widget.region  # type: ignore[attr-defined]
    return bool(region.width and region.height and region.bottom <= 20 and region.right <= 60)


async def test_sale_at_60x20_shows_member_discounts_to_pay_and_f10() -> None:
    with tempfile.TemporaryDirectory(prefix="cttui") as tmp:
        async with harness.Harness(Path(tmp)) as h:
            app = ClubtermApp(h.client(), idle_signout_s=0, clock=lambda: h.now)
            async with app.run_test(size=(60, 20)) as pilot:
                await wait_for(pilot, lambda: app.agent_status.known)
                await pilot.press(*"c1", "enter", *"1234", "enter")
                await wait_for(pilot, lambda: isinstance(app.screen, SaleScreen))
                screen = app.screen
                assert screen.has_class("narrow")
                await pilot.press(*"50.50", "enter")
                h.server.broadcast({"type": "card", "source": "nfc", "reader": "sim",
                                    "token": "nfc:04A1B2", "token_kind": "nfc",
                                    "masked": None, "member": None})
                await wait_for(pilot, lambda: screen.quote is not None
                               and screen.quote.get("member") is not None, timeout=10)
                await pilot.pause()
                for selector in ("#member-panel", "#quote-panel", "#to-pay"):
                    assert visible(screen.query_one(selector)), selector
                console = Console(width=58, record=True, color_system=None)
                console.print(screen.query_one("#to-pay", Static).content)
                drawn = console.export_text()
                assert "TO PAY" in drawn and "€" in drawn
                keys = {k.action: k for k in screen.query(FooterKey)}
                assert "sign_out" in keys or "app.sign_out" in keys
                f10 = keys.get("sign_out") or keys["app.sign_out"]
                assert visible(f10) and f10.region.right == 60
                print(f"figure: F10 at columns {f10.region.x}-{f10.region.right} of 60")


async def test_persian_sign_in_error_wraps_in_reading_order() -> None:
    with tempfile.TemporaryDirectory(prefix="cttui") as tmp:
        async with harness.Harness(Path(tmp)) as h:
            app = ClubtermApp(h.client(), locale="fa", idle_signout_s=0, clock=lambda: h.now)
            try:
                async with app.run_test(size=(60, 20)) as pilot:
                    await wait_for(pilot, lambda: app.agent_status.known)
                    await pilot.press(*"c1", "enter", *"9999", "enter")
                    line = app.screen.query_one("#message", MessageLine)
                    await wait_for(pilot, lambda: isinstance(line.content, BidiText))
                    await pilot.pause()
                    content = line.content
                    assert isinstance(content, BidiText)
                    width = line.content_size.width
                    lines = wrap_visual(content.logical, width)
                    print(f"figure: sign-in error in {len(lines)} lines at {width} cells")
                    assert line.content_size.height == len(lines)
                    assert message_text(app)
            finally:
                set_locale(load_locale("en"))
