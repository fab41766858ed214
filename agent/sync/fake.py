"""An in-memory stand-in for :class:`agent.sync.ClubLink` (tests of the daemon and UI)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from agent.sync.tuning import LinkState


class FakeClubLink:
    """Same interface as :class:`ClubLink`; tests flip it online and offline."""

    def __init__(self, on_event: Callable[[dict[str, Any]], None] | None = None,
                 pending: int = 0):
        self.on_event = on_event
        self._state = LinkState(False, None, None, pending)
        self.started = False
        self.wakes = 0
        self.readers: list[dict[str, Any]] = []
        self.printer: dict[str, Any] | None = None
        self.resyncs = 0
        self.stall: str | None = None  # what stalled() answers; tests set it

    def start(self) -> None:
        self.started = True

    def stop(self, timeout: float = 10.0) -> None:
        self.started = False

    def state(self) -> LinkState:
        return self._state

    def heartbeat(self) -> float:
        return time.monotonic()

    def stalled(self, now: float | None = None) -> str | None:
        return self.stall

    def wake(self) -> None:
        self.wakes += 1

    def set_readers(self, readers: list[dict[str, Any]]) -> None:
        self.readers = list(readers)

    def set_printer(self, printer: dict[str, Any] | None) -> None:
        self.printer = printer

    def resync_members(self) -> None:
        self.resyncs += 1

    def set_online(self, online: bool, *, pending: int | None = None) -> None:
        """Change the state and notify ``on_event`` as the real link does."""
        self._state = LinkState(online, datetime.now(UTC), self._state.last_ack_at,
                                self._state.pending if pending is None else pending)
        if self.on_event is not None:
            self.on_event({"type": "link", **self._state.to_dict()})

    def acked(self, pending: int) -> None:
        """Pretend an ack arrived, leaving ``pending`` events."""
        self._state = LinkState(self._state.online, self._state.since, datetime.now(UTC),
                                pending)
