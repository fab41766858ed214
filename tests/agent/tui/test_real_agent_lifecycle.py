"""#19 card lifecycle at the till against the real (demo) agent: link a second card,
report a card lost and pick which one, the lost card tapped afterwards, enrol with a
national id and find by it, tier progress and referrals on the member page and the
sale screen's member panel (80x24 and 60x20, English and Persian)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.widgets import Input, Static

from agent.localapi.demo import DEMO_SPARE_CARD, DemoAgent
from agent.tui.app import ClubtermApp
from agent.tui.screens.members import MembersScreen
from agent.tui.screens.sale import SaleScreen

from .conftest import message_text, sign_in, wait_for


def _text(widget: Any, width: int = 200) -> str:
    import io

    from rich.console import Console

    console = Console(width=width, file=io.StringIO(), record=True)
    console.print(widget.content)
    return console.export_text()


async def _members(pilot: Any, app: ClubtermApp, find: str) -> MembersScreen:
    await sign_in(pilot, "2", "4321")  # the manager
    await pilot.press("f6")
    await wait_for(pilot, lambda: isinstance(app.screen, MembersScreen))
    screen = app.screen
    assert isinstance(screen, MembersScreen)
    screen.query_one("#member-find", Input).focus()
    await pilot.press(*find, "enter")
    await wait_for(pilot, lambda: screen.profile is not None, timeout=10)
    return screen


async def test_link_a_second_card_then_report_one_lost_and_the_lost_card_is_refused(
        make_app: Callable[..., ClubtermApp], api: DemoAgent) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        members = await _members(pilot, app, "Parisa")
        page = _text(members.query_one("#member-profile", Static))
        assert "To Gold: €50.00 or 2 purchases more in 30 days" in page, page
        assert "Referred 2 members, earned 150 points" in page
        # Link a second card: Ctrl+K, then the card is tapped.
        await pilot.press("ctrl+o")
        assert "Tap or scan the card to link" in message_text(app)
        await api.tap(DEMO_SPARE_CARD)
        await wait_for(pilot, lambda: "Card linked" in message_text(app), timeout=10)
        assert (api.store.members.lookup(DEMO_SPARE_CARD) or {}).get("member_id") == "m-7"
        await wait_for(pilot, lambda: DEMO_SPARE_CARD in [
            c["token"] for c in (members.profile or {}).get("cards", [])])
        # Another member's card cannot be linked to her.
        await pilot.press("ctrl+o")
        await api.tap("nfc:04B0B0B0B0B0B0")  # Ali R.'s
        await wait_for(pilot, lambda: "already belongs to Ali R." in message_text(app))
        await pilot.press("ctrl+o")  # cancel
        # Card lost: Ctrl+L picks her first card, Ctrl+L again the next (masked).
        cards = [c["token"] for c in (members.profile or {}).get("cards", [])]
        await pilot.press("ctrl+l")
        assert members.lost_token == cards[0] and "Lost:" in message_text(app)
        await pilot.press("ctrl+l")
        assert members.lost_token == cards[1]
        assert cards[1] not in message_text(app) or cards[1].startswith("code:")
        await api.tap("nfc:04F7F7F7F7F7F7")
        await wait_for(pilot, lambda: "lost card is blocked" in message_text(app), timeout=10)
        link = [e for e in api.recorded() if e["type"] == "card_link"][-1]
        assert (link["identifier"], link["replaces"]) == ("nfc:04F7F7F7F7F7F7", cards[1])
        await wait_for(pilot, lambda: "Lost card" in _text(
            members.query_one("#member-profile", Static)))
        # The lost card tapped afterwards: refused as lost, not offered for enrolment.
        await api.tap(cards[1])
        await wait_for(pilot, lambda: "reported lost" in message_text(app), timeout=10)


async def test_enrol_with_a_national_id_and_find_by_it(
        make_app: Callable[..., ClubtermApp], api: DemoAgent) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        members = await _members(pilot, app, "Sara")
        form = {"enrol-name": "Kaveh D", "enrol-phone": "0912 444 5566",
                "enrol-nid": "001-234567-8"}  # wrong check digit
        for field, value in form.items():
            members.query_one(f"#{field}", Input).value = value
        await pilot.press("f8")
        await wait_for(pilot, lambda: "check digit" in message_text(app), timeout=10)
        assert not [e for e in api.recorded() if e["type"] == "member_enrol"]
        members.query_one("#enrol-nid", Input).value = "1234567891"
        await pilot.press("f8")
        await wait_for(pilot, lambda: "is enrolled" in message_text(app), timeout=10)
        enrol = next(e for e in api.recorded() if e["type"] == "member_enrol")
        assert any(t.startswith("nid:") for t in enrol["identifiers"])
        assert "1234567891" not in str(enrol)
        members.query_one("#member-find", Input).value = ""
        members.query_one("#member-find", Input).focus()
        await pilot.press(*"1234567891", "enter")
        await wait_for(pilot, lambda: (members.profile or {}).get("name") == "Kaveh D",
                       timeout=10)


async def test_persian_60x20_progress_on_the_sale_panel_and_the_member_page(
        make_app: Callable[..., ClubtermApp], api: DemoAgent) -> None:
    app = make_app("fa")
    async with app.run_test(size=(60, 20)) as pilot:
        await sign_in(pilot, "2", "4321")
        await wait_for(pilot, lambda: isinstance(app.screen, SaleScreen))
        sale = app.screen
        assert isinstance(sale, SaleScreen)
        await api.tap("nfc:04D5D5D5D5D5D5")  # Parisa's card
        await wait_for(pilot, lambda: (sale.member or {}).get("member_id") == "m-7",
                       timeout=10)
        await pilot.pause(0.1)
        panel = _text(sale.query_one("#member-panel", Static), width=60)
        # Drawn in visual order (the UI orders RTL itself): the words read reversed.
        assert "یفرعم" in panel and "زور ۳۰" in panel, panel
        assert "\\u20" not in panel and "\u2068" not in panel, panel  # no isolate as text
        # The member page, found by the national id in Persian digits.
        await pilot.press("f6")
        await wait_for(pilot, lambda: isinstance(app.screen, MembersScreen))
        members = app.screen
        assert isinstance(members, MembersScreen)
        members.query_one("#member-find", Input).focus()
        await pilot.press(*"۰۰۱۲۳۴۵۶۷۹", "enter")
        await wait_for(pilot, lambda: (members.profile or {}).get("member_id") == "m-7",
                       timeout=10)
        page = _text(members.query_one("#member-profile", Static), width=30)
        assert "یفرعم" in page and "\\u20" not in page, page
