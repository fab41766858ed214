"""A staff badge is not a credential on its own (#13 item 3).

The real agent (in process) with its real socket: a reader thread reports a staff
badge, a spy subscribed to events tries to use what it saw, or a badge token it
got elsewhere.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from pathlib import Path
from typing import Any

import pytest

from agent.config import load_config
from agent.daemon import Agent
from agent.drivers.events import CardPresented
from agent.errors import ApiError
from agent.localapi.client import SocketClient
from agent.sdnotify import Notifier
from tests.agent.daemon.support import terminal_dir

MANAGER_BADGE = "nfc:04AA000002"
UID = "04AA000002"


def _present(agent: Agent, token: str, masked: str | None) -> None:
    """What a reader thread does when a tag is tapped."""
    event = CardPresented(source="nfc", reader="ACR122U", token=token, token_kind="nfc",
                          masked=masked, bin6=None)
    thread = threading.Thread(target=agent._from_reader_thread, args=(event,))
    thread.start()
    thread.join()


async def _next_card(events: Any) -> dict[str, Any]:
    while True:
        event = await asyncio.wait_for(events.__anext__(), 10)
        if event.get("type") == "card":
            return dict(event)


async def _refused(call: Any) -> ApiError:
    with pytest.raises(ApiError) as info:
        await call
    return info.value


def test_a_subscriber_never_sees_a_badge_token_and_cannot_sign_in_with_one(
        caplog: pytest.LogCaptureFixture) -> None:
    # The agent's own loggers at every level (peewee's SQL debug log is not the agent's).
    caplog.set_level(logging.DEBUG, logger="agent")

    async def scenario(config: Path, socket: Path) -> None:
        agent = Agent(load_config(config), notifier=Notifier({}))
        run = asyncio.create_task(agent.run())
        for _ in range(200):
            if socket.exists():
                break
            await asyncio.sleep(0.02)
        spy, till = SocketClient(socket), SocketClient(socket)
        try:
            spy_events, till_events = spy.events().__aiter__(), till.events().__aiter__()
            await spy.call("events.subscribe")
            await till.call("events.subscribe")
            assert agent.services is not None
            now = [5000.0]
            agent.services.monotonic = lambda: now[0]

            _present(agent, MANAGER_BADGE, UID)
            seen = await _next_card(spy_events)
            tap = (await _next_card(till_events))["token"]
            print(f"figure: the card event of a staff badge: {json.dumps(seen)}")
            assert UID not in json.dumps(seen) and UID not in json.dumps(caplog.text)
            assert seen["kind"] == "staff_badge" and seen["token"].startswith("tap:")
            assert seen["staff"]["name"] == "Reza Karimi"

            # A badge token alone (copied from the tag, an old log, an old event) is
            # refused, even seconds after a real tap of that badge.
            err = await _refused(spy.call("staff.login", {"token": MANAGER_BADGE}))
            assert err.code == -32007 and err.data["reason"] == "badge_not_tapped"
            err = await _refused(spy.call("staff.clock", {"token": MANAGER_BADGE,
                                                          "action": "in"}))
            assert err.data["reason"] == "badge_not_tapped"
            # The tap itself signs in once; the same reference again is refused.
            session = await till.call("staff.login", {"token": tap})
            assert session["role"] == "manager"
            err = await _refused(spy.call("staff.login", {"token": tap}))
            assert err.code == -32006 and err.data["reason"] == "badge_tap_expired"

            # A tap 30 s old is refused.
            _present(agent, MANAGER_BADGE, UID)
            old = (await _next_card(spy_events))["token"]
            await _next_card(till_events)
            now[0] += 30
            err = await _refused(spy.call("staff.login", {"token": old}))
            assert err.data["reason"] == "badge_tap_expired"
            # A forged reference is refused the same way.
            err = await _refused(spy.call("staff.login", {"token": "tap:forged"}))
            assert err.data["reason"] == "badge_tap_expired"

            # A member card is announced as before, with its token.
            _present(agent, "nfc:04A1B2C3D4E5F6", "04A1B2C3D4E5F6")
            card = await _next_card(spy_events)
            assert card["kind"] == "card" and card["token"] == "nfc:04A1B2C3D4E5F6"
        finally:
            await spy.close()
            await till.close()
            agent.request_stop()
            assert await asyncio.wait_for(run, 10) == 0
        # Never logged, at any level.
        assert UID not in caplog.text and MANAGER_BADGE not in caplog.text
        assert "staff badge tapped on ACR122U: staff 2" in caplog.text

    with terminal_dir() as files:
        asyncio.run(scenario(files.config, files.socket))
