"""Collect reader events in tests and wait for the one expected."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from agent.drivers.events import CardPresented, ReaderEvent, ReaderState, ReadFailed


class EventLog:
    """An ``emit`` callback that records events and lets a test wait for one."""

    def __init__(self) -> None:
        self.events: list[ReaderEvent] = []
        self.cond = threading.Condition()

    def __call__(self, event: ReaderEvent) -> None:
        with self.cond:
            self.events.append(event)
            self.cond.notify_all()

    def mark(self) -> int:
        """Position to wait from."""
        with self.cond:
            return len(self.events)

    def wait(self, predicate: Callable[[ReaderEvent], bool], *, since: int = 0,
             timeout: float = 10.0) -> ReaderEvent:
        """The first event from ``since`` on matching ``predicate``."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for event in self.events[since:]:
                    if predicate(event):
                        return event
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"no matching event in {timeout} s; got {self.events[since:]}")
                self.cond.wait(left)

    def card(self, since: int = 0, timeout: float = 10.0) -> CardPresented | ReadFailed:
        """The next card event (presented or failed)."""
        event = self.wait(lambda e: isinstance(e, CardPresented | ReadFailed), since=since,
                          timeout=timeout)
        assert isinstance(event, CardPresented | ReadFailed)
        return event

    def state(self, state: str, since: int = 0, timeout: float = 10.0) -> ReaderState:
        """The next ReaderState with that state."""
        event = self.wait(lambda e: isinstance(e, ReaderState) and e.state == state,
                          since=since, timeout=timeout)
        assert isinstance(event, ReaderState)
        return event

    def cards(self) -> list[CardPresented | ReadFailed]:
        """All card events so far."""
        with self.cond:
            return [e for e in self.events if isinstance(e, CardPresented | ReadFailed)]
