"""A stuck club link is restarted, not hidden: the systemd watchdog is fed only while
the link's worker runs (issue #13, item 12).

The real agent runs in this process with a real ClubLink on the real mosquitto;
one store call on the link's worker is made to hang (as a hung disk or a blocking
job would), and the sd_notify pings are watched with the daemon tests' listener.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from agent.config import Config, load_config
from agent.daemon import Agent, Hooks
from agent.sdnotify import Notifier
from agent.sync import ClubLink, LinkTuning
from hw_sim.broker import MosquittoBroker
from tests.agent.daemon.support import NotifyListener, terminal_dir

pytestmark = pytest.mark.needs_mosquitto

STALL_LIMIT_S = 2.0  # the idle worker beats at least once a second
WATCHDOG_USEC = 200_000  # pings every 0.1 s


class GatedOutbox:
    """The agent's real outbox, except that ``queue_stats`` hangs while the gate is shut."""

    def __init__(self, outbox: Any):
        self._outbox = outbox
        self.gate = threading.Event()
        self.gate.set()
        self.blocked_at: float | None = None

    def queue_stats(self) -> Any:
        if not self.gate.is_set():
            self.blocked_at = time.monotonic()
            self.gate.wait(30)  # bounded: the test opens it long before
        return self._outbox.queue_stats()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._outbox, name)


class GatedStore:
    """The agent's real store, whose outbox is a :class:`GatedOutbox`."""

    def __init__(self, store: Any):
        self._store = store
        self.outbox = GatedOutbox(store.outbox)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def test_watchdog_stops_while_the_link_worker_is_stuck_and_resumes_after(
        mosquitto: MosquittoBroker, caplog: pytest.LogCaptureFixture) -> None:
    made: dict[str, Any] = {}

    def make_link(cfg: Config, store: Any, bundle_state: Any, on_event: Any) -> ClubLink:
        made["store"] = GatedStore(store)
        made["link"] = ClubLink(cfg, made["store"], bundle_state, on_event,
                                tuning=LinkTuning(stall_limit_s=STALL_LIMIT_S))
        return made["link"]

    def pings(listener: NotifyListener, start: float, end: float) -> list[float]:
        return [t for t, m in list(listener.messages) if "WATCHDOG=1" in m and start < t < end]

    async def scenario(config: Path, notify_path: Path, listener: NotifyListener) -> None:
        notifier = Notifier({"NOTIFY_SOCKET": str(notify_path),
                             "WATCHDOG_USEC": str(WATCHDOG_USEC)})
        agent = Agent(load_config(config), notifier=notifier, hooks=Hooks(make_link=make_link))
        run = asyncio.create_task(agent.run())
        try:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, listener.wait_for, "WATCHDOG=1")
            link: ClubLink = made["link"]
            store: GatedStore = made["store"]
            # A healthy link: petted all along.
            healthy_from = time.monotonic()
            await asyncio.sleep(1.0)
            healthy = pings(listener, healthy_from, time.monotonic())
            assert len(healthy) >= 5, healthy
            assert link.stalled() is None

            # A job on the link's worker hangs.
            store.outbox.gate.clear()
            link.wake()
            for _ in range(100):
                if store.outbox.blocked_at is not None:
                    break
                await asyncio.sleep(0.02)
            assert store.outbox.blocked_at is not None, "the worker never ran the blocking call"
            await asyncio.sleep(STALL_LIMIT_S + 1.5)
            # The limit plus one ping period.
            stuck_from = store.outbox.blocked_at + STALL_LIMIT_S + 0.25
            during = pings(listener, stuck_from, time.monotonic())
            last = max(pings(listener, 0, time.monotonic()))
            assert link.stalled() is not None
            assert during == [], during
            print(f"figure: worker blocked at 0 s, last WATCHDOG=1 at "
                  f"{last - store.outbox.blocked_at:+.2f} s (limit {STALL_LIMIT_S} s), none in the "
                  f"next {time.monotonic() - stuck_from:.1f} s; healthy: {len(healthy)} pings/s")

            # It runs again: petted again.
            store.outbox.gate.set()
            resumed_from = time.monotonic()
            await asyncio.sleep(0.8)
            assert pings(listener, resumed_from, time.monotonic())
            assert link.stalled() is None
        finally:
            store_gate = made.get("store")
            if store_gate is not None:
                store_gate.outbox.gate.set()
            agent.request_stop()
            await asyncio.wait_for(run, 20)

    with terminal_dir(broker_url=mosquitto.url) as files, \
            caplog.at_level("ERROR", logger="agent.daemon"):
        listener = NotifyListener(files.root / "notify.sock")
        try:
            asyncio.run(scenario(files.config, files.root / "notify.sock", listener))
        finally:
            listener.close()
    assert any("club link's worker has not run" in r.getMessage() for r in caplog.records)
