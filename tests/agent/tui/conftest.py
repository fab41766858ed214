"""Fixtures for the UI tests: the demo agent (the real one, in a temporary directory)
on a pinned clock, and Pilot helpers."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from textual.pilot import Pilot

from agent.localapi.demo import DemoAgent
from agent.tui.app import ClubtermApp
from agent.tui.screens.sale import SaleScreen
from tests.agent.localapi.harness import FlakyWrites


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run ``async def`` tests in a fresh event loop (no pytest-asyncio here)."""
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    names = pyfuncitem._fixtureinfo.argnames
    kwargs = {name: pyfuncitem.funcargs[name] for name in names}

    async def main() -> None:
        try:
            await pyfuncitem.obj(**kwargs)
        finally:  # the demo agent's server lives in this loop: stop it here
            for value in pyfuncitem.funcargs.values():
                if isinstance(value, DemoAgent):
                    await value.aclose()

    asyncio.run(main())
    return True


# Sunday 22 Nov 2026 10:00 in Berlin (09:00 UTC).
START = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


class Clock:
    """A clock tests move by hand."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def demo_agent(clock: Clock) -> DemoAgent:
    """The demo agent on ``clock``, whose store writes can be made to fail through its
    fault hook (``api.store.db.before_write.fail_appends = True``)."""
    agent = DemoAgent(clock=clock)
    agent.store.db.before_write = FlakyWrites()
    return agent


@pytest.fixture
def api(clock: Clock) -> Iterator[DemoAgent]:
    agent = demo_agent(clock)
    yield agent
    agent.shutdown()


@pytest.fixture
def make_app(api: DemoAgent, clock: Clock) -> Callable[..., ClubtermApp]:
    def make(locale: str = "en", idle_signout_s: float = 0) -> ClubtermApp:
        return ClubtermApp(api, locale=locale, idle_signout_s=idle_signout_s, clock=clock)

    return make


async def wait_for(pilot: Pilot[None], predicate: Callable[[], object],
                   timeout: float = 5.0) -> None:
    """Let the app run until ``predicate()`` is true (workers answer asynchronously)."""
    loop_time = 0.0
    while not predicate():
        await pilot.pause(0.02)
        loop_time += 0.02
        if loop_time > timeout:
            raise AssertionError("timed out waiting for the UI")


async def sign_in(pilot: Pilot[None], staff_id: str = "1", pin: str = "1234") -> None:
    """Sign in by staff number and PIN and wait for the first screen."""
    app = pilot.app
    await wait_for(pilot, lambda: app.screen.__class__.__name__ == "SignInScreen")
    await pilot.press(*staff_id, "enter", *pin, "enter")
    await wait_for(pilot, lambda: app.staff is not None  # type: ignore[attr-defined]
                   and app.screen.__class__.__name__ != "SignInScreen")
    await pilot.pause()


async def at_the_till(pilot: Pilot[None], staff: str = "c1", pin: str = "1234") -> SaleScreen:
    """Against the real agent (tests.agent.localapi.harness): sign in as ``staff`` and
    wait for the sale screen."""
    app = pilot.app
    await wait_for(pilot, lambda: app.agent_status.known)  # type: ignore[attr-defined]
    await pilot.press(*staff, "enter", *pin, "enter")
    await wait_for(pilot, lambda: isinstance(app.screen, SaleScreen))
    screen = app.screen
    assert isinstance(screen, SaleScreen)
    return screen


def card_event(token: str, source: str = "nfc") -> dict[str, Any]:
    """The agent's ``card`` event for ``token`` read on ``source`` (``nfc`` or a
    barcode scanner, ``hid``), as a reader would send it."""
    if source == "hid":
        return {"type": "card", "source": "hid", "reader": "Barcode", "token": token,
                "token_kind": "code", "masked": None, "member": None}
    return {"type": "card", "source": source, "reader": "sim", "token": token,
            "token_kind": token.split(":", 1)[0], "masked": None, "member": None}


async def ready(pilot: Pilot[None]) -> None:
    """Wait until the app subscribed to events and knows the agent's status."""
    app = pilot.app
    await wait_for(pilot, lambda: app.api.subscribers > 0  # type: ignore[attr-defined]
                   and app.agent_status.known)  # type: ignore[attr-defined]


def message_text(app: ClubtermApp) -> str:
    """What the screen's message line says."""
    from agent.tui.screens.base import MessageLine

    return str(app.screen.query_one("#message", MessageLine).content)
