"""Attacks on issue #13 items 4 and 13: no card number through any path, and no
control character from a name, note or category reaches a terminal.

Over the real local API (socket, server, services, SQLite store): card numbers and
tracks offered as codes, tokens, phone numbers, names and notes are refused, and
afterwards the store file, its WAL and the log hold none of the digits. A member
name from the club with ESC sequences is shown escaped by ``clubterm status
--follow`` (a real subprocess). A swipe fed to a scanner-role wedge reader gives no
``code:`` token.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from pathlib import Path

import pytest

from agent.carddata import tokens
from agent.drivers.base import Backoff
from agent.drivers.evdev import EvdevReader
from agent.drivers.events import CardPresented, ReadFailed
from agent.errors import ApiError
from hw_sim import keys
from tests.agent.drivers.collector import EventLog
from tests.agent.localapi.harness import BLOCKED, GOLD, Harness, run

PANS = ("4111111111111111", "378282246310005", "5555555555554444")
# Every way the digits could have been written down.
FORBIDDEN = [p for pan in PANS for p in (pan, " ".join(pan[i:i + 4] for i in range(0, len(pan), 4)),
                                          "-".join(pan[i:i + 4] for i in range(0, len(pan), 4)))]
SWIPE = "%B4111111111111111^DOE/J^25121010000000000000?"
PAN_KEY = bytes(32)


async def refused(coro: object) -> ApiError:
    with pytest.raises(ApiError) as info:
        await coro  # type: ignore[misc]
    assert info.value.code == -32602, (info.value.code, str(info.value))
    text = str(info.value) + json.dumps(info.value.data)
    assert not any(f in text for f in FORBIDDEN), text
    return info.value


def _stored_bytes(tmp: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(tmp.glob("clubterm.db*")))


def test_card_numbers_refused_everywhere_and_never_stored(caplog: pytest.LogCaptureFixture
                                                          ) -> None:
    caplog.set_level(logging.DEBUG)
    attempts = 0

    async def scenario(h: Harness) -> None:
        nonlocal attempts
        c = h.client()
        session = await h.login()
        identify = [
            {"code": "4111 1111 1111 1111"},
            {"code": "4111-1111-1111-1111"},
            {"code": SWIPE},
            {"code": ";4111111111111111=25121010000000000000?"},
            {"code": "۴۱۱۱۱۱۱۱۱۱۱۱۱۱۱۱"},
            {"token": "code:4111111111111111"},
            {"token": "code:" + SWIPE},
            {"token": "nfc:4111111111111111"},
            {"token": "tel:+378282246310005"},
            {"phone": "+378282246310005"},
            {"phone": "4111 1111 1111 1111"},
        ]
        for params in identify:
            err = await refused(c.call("member.identify", params))
            assert "bank card" in str(err), (params, str(err))
            attempts += 1
        err = await refused(c.call("member.identify", {"code": "4111 1111 1111 1111"}))
        assert str(err) == ("This looks like a bank card number; it cannot be used as a code. "
                            "Tap or swipe the card instead.")
        enrol = {"session": session, "name": "Ann", "phone": "09351234567"}
        for bad in ({"name": "Ann 4111 1111 1111 1111"}, {"token": "code:" + SWIPE},
                    {"token": "code:5555-5555-5555-4444"}, {"phone": "+378282246310005"},
                    {"referred_by": "local:4111-1111-1111-1111"}):
            with pytest.raises(ApiError) as info:
                await c.call("member.enrol", {**enrol, **bad})
            assert info.value.code in (-32602, -32001)
            assert not any(f in str(info.value) for f in FORBIDDEN)
            attempts += 1
        for kind in ("expense.add", "cash_receipt.add"):
            for bad in ({"note": "card 4111 1111 1111 1111 exp 12/25"},
                        {"category": "5555555555554444"}, {"note": SWIPE}):
                err = await refused(c.call(kind, {"session": session, "amount": 500,
                                                  "category": "rent", **bad}))
                assert "bank card number" in str(err) and err.data["param"] in bad
                attempts += 1
        # Ordinary input still works, and nothing above was recorded.
        assert h.outbox() == []
        await c.call("expense.add", {"session": session, "amount": 500, "category": "rent",
                                     "note": "paid to\tlandlord\nreceipt 4006381333931"})
        r = await c.call("member.enrol", {**enrol, "name": "Ann K."})
        assert r["member_id"].startswith("local:")
        # An EAN-13 club card that also passes the Luhn check is still a code.
        with pytest.raises(ApiError) as info:
            await c.call("member.identify", {"code": "4006380000094"})
        assert info.value.code == -32001
        h.store.close()
        data = _stored_bytes(h.tmp)
        assert data and not any(f.encode() in data for f in FORBIDDEN)
        assert not any(f.encode("utf-16-le") in data for f in FORBIDDEN)
        h.store = type(h.store).open(h.tmp / "clubterm.db", "T-0001", "M-7",
                                     clock=lambda: h.now)  # for the harness to close
    run(scenario)
    logged = "\n".join(r.getMessage() + repr(r.args) for r in caplog.records)
    assert not any(f in logged for f in FORBIDDEN)
    print(f"figure: {attempts} card-data inputs refused over the local API; "
          "0 copies of the digits in the store, its WAL or the log")


def test_control_characters_refused_at_the_api() -> None:
    async def scenario(h: Harness) -> None:
        c = h.client()
        session = await h.login()
        evil = ["Eve\x1b]0;pwned\x07", "Eve\x1b[2J", "Eve\x9b31m", "Eve\u202egnp.exe",
                "Eve\u2066x", "Eve\rX", "Eve\x00", "Eve\x7f"]
        for name in evil:
            err = await refused(c.call("member.enrol", {"session": session, "name": name,
                                                        "phone": "09351234567"}))
            assert "control character" in str(err) and err.data["param"] == "name"
            err = await refused(c.call("expense.add", {"session": session, "amount": 1,
                                                       "category": name}))
            assert err.data["param"] == "category"
            err = await refused(c.call("expense.add", {"session": session, "amount": 1,
                                                       "category": "x", "note": name}))
            assert err.data["param"] == "note"
        # Persian names with their direction marks are names.
        r = await c.call("member.enrol", {"session": session, "name": "\u200fسارا کریمی",
                                          "phone": "09351234567"})
        assert r["member_id"].startswith("local:")
        assert len(h.outbox()) == 1
        print(f"figure: {len(evil) * 3} names/categories/notes with control characters refused")
    run(scenario)


def test_status_follow_escapes_a_member_name_from_the_club(tmp_path: Path) -> None:
    evil = {**GOLD, "member_id": "m-9", "version": 5, "name": "Eve\x1b]0;pwned\x07\x1b[2J\x9b",
            "identifiers": ["nfc:0EE0"], "tier": "gold\x1b[31m"}

    async def scenario(h: Harness) -> None:
        h.store.members.import_snapshot([json.dumps(GOLD), json.dumps(BLOCKED), json.dumps(evil)],
                                        11,
                                True)
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
               "CLUBTERM_CONFIG": str(tmp_path / "absent.toml")}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "agent", "status", "--follow", "--socket", str(h.path),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=env)
        try:
            assert proc.stdout is not None
            out = b""
            while b"-- events" not in out:
                out += await asyncio.wait_for(proc.stdout.readline(), 20)
            for _ in range(200):  # the subscription follows the banner
                if any(c.subscribed for c in h.server.connections.values()):
                    break
                await asyncio.sleep(0.02)
            member = await h.services.member_summary("nfc:0EE0")
            h.server.broadcast({"type": "card", "source": "nfc", "reader": "nfc\x1b[1m",
                                "token": "nfc:0EE0", "token_kind": "nfc", "masked": "0EE0",
                                "member": member})
            line = await asyncio.wait_for(proc.stdout.readline(), 20)
        finally:
            proc.kill()
            await proc.wait()
        assert b"Eve" in line
        assert b"\x1b" not in line and b"\x07" not in line and "\x9b".encode() not in line
        assert b"\\x1b]0;pwned\\x07\\x1b[2J\\x9b" in line
        escaped = line.count(b"\\x")
        print(f"figure: status --follow printed {escaped} escaped controls, 0 raw")
    run(scenario)


def test_swipes_and_card_numbers_on_a_scanner_never_become_codes(tmp_path: Path) -> None:
    fifo = keys.make_fifo(tmp_path / "scanner.events")
    log = EventLog()
    reader = EvdevReader("scanner", str(fifo), PAN_KEY, role="barcode",
                         backoff=Backoff(0.05, 0.2))
    reader.start(log)
    inputs = [SWIPE, ";4111111111111111=25121010000000000000?", "4111 1111 1111 1111",
              "3782-822463-10005", "%B5555555555554444^X/Y^2811201?;5555555555554444=2811?",
              "CLUB-42", "4006381333931"]
    try:
        log.state("ready")
        for text in inputs:
            since = log.mark()
            keys.write_events(fifo, keys.type_text(text))
            log.card(since)
    finally:
        reader.stop()
    events = log.cards()
    assert len(events) == len(inputs)
    codes = [e.token for e in events if isinstance(e, CardPresented) and e.token_kind == "code"]
    assert codes == ["code:CLUB-42", "code:4006381333931"]
    cards = [e for e in events if isinstance(e, CardPresented) and e.token_kind == "pan"]
    assert len(cards) + sum(isinstance(e, ReadFailed) for e in events) == len(inputs) - 2
    assert tokens.pan_token(PAN_KEY, "4111111111111111") in {e.token for e in cards}
    assert not any(f in repr(events) for f in FORBIDDEN)
    print(f"figure: {len(inputs) - 2} swipes/card numbers on a scanner -> {len(cards)} card "
          f"reads, 0 code tokens; {len(codes)} real codes kept")


def test_tui_shows_member_names_as_plain_text() -> None:
    from textual.app import App, ComposeResult
    from textual.widgets import Static

    from agent.tui.i18n import tr

    names = ["Eve[/]", "[bold red]Eve[/]", "[link=http://x]Eve[/link]", "Eve\x1b]0;pwned\x07",
             "Eve\\", "Eve\u202egnp"]

    class Probe(App[None]):
        def compose(self) -> ComposeResult:
            yield Static(id="panel")

    async def scenario() -> list[str]:
        shown = []
        app = Probe()
        async with app.run_test() as pilot:
            panel = app.query_one("#panel", Static)
            for name in names:
                panel.update(tr("{name} · {tier}", name=name, tier="gold"))
                await pilot.pause()
                shown.append(str(panel.render()))
        return shown

    shown = asyncio.run(asyncio.wait_for(scenario(), 60))
    assert shown[0] == "Eve[/] · gold" and shown[1] == "[bold red]Eve[/] · gold"
    assert shown[2] == "[link=http://x]Eve[/link] · gold"
    assert "\x1b" not in shown[3] and "\\x1b]0;pwned\\x07" in shown[3]
    assert shown[4].startswith("Eve\\") and "\u202e" not in shown[5]
    print(f"figure: {len(names)} hostile names shown as plain text in a Textual Static")
