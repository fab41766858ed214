"""The agent's discount lines, "not applied" reasons and errors, translated by
their machine-readable codes (#15 item 11), against the real agent."""

from __future__ import annotations

from typing import Any

import pytest
from rich.console import Console

from agent.errors import ApiError
from agent.localapi import NOT_ALLOWED, UNKNOWN_MEMBER
from agent.tui.errors import error_logical
from agent.tui.explain import WHY_NOT, why_not
from agent.tui.i18n import load_locale, set_locale
from agent.tui.screens.base import MessageLine
from agent.tui.screens.sale import SaleScreen
from agent.tui.widgets.bidi import BidiText
from agent.tui.widgets.sale_panels import quote_table

from .conftest import wait_for
from .test_real_agent_till import till


@pytest.fixture(autouse=True)
def _english_afterwards() -> Any:
    yield
    set_locale(load_locale("en"))


def _drawn(renderable: Any, width: int = 40) -> str:
    console = Console(width=width, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


async def _member_sale(pilot: Any, app: Any, amount: str) -> SaleScreen:
    screen = app.screen
    assert isinstance(screen, SaleScreen)
    await pilot.press(*amount, "enter")
    await pilot.press("tab", *"0912 123 4567", "enter")          # Sara K., gold
    await wait_for(pilot, lambda: screen.quote is not None
                   and (screen.quote.get("member") or {}).get("name") == "Sara K."
                   and screen.quote["gross"] == 500, timeout=10)
    return screen


async def test_persian_panel_shows_discounts_and_reasons_translated_with_persian_digits() -> None:
    async with till(locale="fa") as (_h, app, pilot):
        screen = await _member_sale(pilot, app, "5")
        quote = screen.quote
        assert quote is not None
        skipped = [e for e in quote["explain"] if "rule" in e and not e.get("applied")]
        assert [e.get("why") for e in skipped] == ["min_gross"], skipped   # cashback
        reason = why_not(skipped[0], quote, screen.fmt)
        print(f"figure: {skipped[0]['text']!r} -> {reason!r}")
        assert "اعمال نشد" in reason and "۵٫۰۰" in reason
        assert "rule needs" not in reason and "5.00" not in reason
        drawn = _drawn(quote_table(quote, screen.fmt))
        for english in ("not applied", "EUR", "off (", "rule needs"):
            assert english not in drawn, (english, drawn)
        assert "gold10" in drawn and "cashback" in drawn     # rule ids stay as the club names them


async def test_english_keeps_the_agents_sentences() -> None:
    async with till() as (_h, app, pilot):
        screen = await _member_sale(pilot, app, "5")
        drawn = _drawn(quote_table(screen.quote, screen.fmt), width=80)
        assert "cashback: not applied, basket is 5.00; rule needs at least 50.00" in drawn


def test_every_engine_check_has_a_translation() -> None:
    # The engine's check names (agent/rules/conditions.py builds its check table
    # from these pairs), plus the two codes given outside the checks.
    from agent.rules import conditions as c

    codes = ({name for _check, name in c._UNKNOWN}
             | {pair[1] for pair in (c._MEMBER, c._REFERRED, c._CODES, c._COUPON, c._LINES)}
             | {name for name, _pair in c._SEGMENTS} | {name for name, _pair in c._LIMITS}
             | {"exclusive", "not_requested"})
    assert len(codes) >= 28
    assert codes <= set(WHY_NOT), sorted(codes - set(WHY_NOT))
    fa = load_locale("fa")
    missing = [c for c, m in WHY_NOT.items() if fa.gettext(m) == m]
    assert missing == []


async def test_persian_sign_in_refusal_is_translated_by_its_reason() -> None:
    async with till("mg", "9999", locale="fa") as (_h, app, pilot):
        await pilot.press("f10")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "SignInScreen")
        await pilot.press(*"c1", "enter", *"1111", "enter")
        line = app.screen.query_one("#message", MessageLine)
        await wait_for(pilot, lambda: isinstance(line.content, BidiText))
        content = line.content
        assert isinstance(content, BidiText)
        assert content.logical == "شماره پرسنلی یا رمز درست نیست.", content.logical


@pytest.mark.parametrize("lang", ["fa", "ar", "he", "vi"])
def test_errors_with_a_reason_or_code_never_show_the_agents_english_alone(lang) -> None:
    set_locale(load_locale(lang))
    by_reason = error_logical(ApiError(NOT_ALLOWED, "Only the cashier who recorded the sale, "
                                       "or a manager, can void it.",
                                       {"reason": "void_other_staff"}))
    assert "cashier who recorded" not in by_reason
    assert by_reason != "Only its cashier or a manager can void this sale."   # translated
    by_code = error_logical(ApiError(UNKNOWN_MEMBER, "No member is registered with this card."))
    assert not by_code.startswith("No member"), by_code


@pytest.mark.parametrize("lang", ["fa", "ar", "he", "vi"])
def test_the_new_reasons_of_refunds_tenders_products_and_printing_are_translated(lang) -> None:
    # The reasons the agent gives since refunds by line, tenders, the catalogue, the
    # printer and member scopes (docs/protocol/local-api.md, "Reason codes").
    from agent.localapi import CONFLICT

    set_locale(load_locale(lang))
    for reason in ("over_refund", "partly_refunded", "no_such_line", "tenders_short",
                   "tenders_over", "bad_tenders", "unknown_product", "not_on_sale",
                   "weight_needed", "lookup_failed", "earn_only", "no_printer",
                   "printer_busy", "locked_out"):
        text = error_logical(ApiError(CONFLICT, "English detail", {"reason": reason}))
        assert "English detail" not in text, (reason, text)
