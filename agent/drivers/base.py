"""The reader interface and the state machine every driver runs.

A reader runs in its own thread: ``connecting`` (open the device or service) →
``ready`` (serve cards) → on a :class:`~agent.errors.ReaderError` ``error`` →
``retry`` (wait, with exponential backoff) → ``connecting`` again. Any exception,
even a bug, is caught in that thread: a failing reader never stops the daemon or
another reader. Every state change is reported as a :class:`ReaderState` event.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

from agent.drivers.events import CardPresented, ReaderEvent, ReaderState, StateName
from agent.errors import ReaderError

log = logging.getLogger(__name__)

Emit = Callable[[ReaderEvent], None]


class Reader(Protocol):
    """One reader. ``start`` returns at once; events come from the reader's thread."""

    name: str
    kind: str

    def start(self, emit: Emit) -> None:
        """Start the reader's thread; ``emit`` is called from that thread."""

    def stop(self) -> None:
        """Stop the thread and release the device (waits a few seconds at most)."""

    @property
    def state(self) -> ReaderState:
        """The latest state."""


class Backoff:
    """Exponential backoff: initial, doubled each failure, capped at ``maximum``."""

    def __init__(self, initial: float = 0.5, maximum: float = 30.0):
        self.initial = initial
        self.maximum = maximum
        self._next = initial

    def next_delay(self) -> float:
        """The delay to wait now; the following one is twice as long (capped)."""
        delay = self._next
        self._next = min(self._next * 2, self.maximum)
        return delay

    def reset(self) -> None:
        """Back to the initial delay (after a reader has worked for a while)."""
        self._next = self.initial


class Debouncer:
    """The same token presented again within ``window_ms`` gives one event.

    Shared by all readers built together (thread-safe), so a card that two
    readers see at once also counts once. ``clock`` is injectable for tests.
    """

    def __init__(self, window_ms: int, clock: Callable[[], float] = time.monotonic):
        self.window = window_ms / 1000.0
        self.clock = clock
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def accept(self, token: str) -> bool:
        """True if ``token`` should give an event now (and remember it)."""
        if self.window <= 0:
            return True
        now = self.clock()
        with self._lock:
            # Forget old entries so the map never grows without bound.
            for old in [t for t, at in self._last.items() if now - at >= self.window]:
                del self._last[old]
            last = self._last.get(token)
            self._last[token] = now
            return last is None


class ThreadedReader:
    """Base of every driver: the state machine, the thread, safe event emission.

    Subclasses implement :meth:`open` (raise ReaderError if the device or
    service is not there), :meth:`serve` (block, reading cards, until
    ``self.stopping`` is set or a ReaderError), and :meth:`close`.
    """

    kind = "reader"
    # True when open() itself reports "ready" (or "connecting" while it waits for a
    # device, as the PC/SC reader does while no matching reader is plugged in).
    REPORTS_READY = False
    # A reader that stayed ready this long gets its backoff reset.
    STABLE_AFTER_S = 5.0

    def __init__(self, name: str, *, debouncer: Debouncer | None = None,
                 backoff: Backoff | None = None):
        self.name = name
        self.debouncer = debouncer
        self.backoff = backoff or Backoff()
        self.stopping = threading.Event()
        self._emit: Emit | None = None
        self._thread: threading.Thread | None = None
        self._state = ReaderState(name, self.kind, "connecting", "")

    # -- interface ---------------------------------------------------------
    @property
    def state(self) -> ReaderState:
        """The latest state."""
        return self._state

    def start(self, emit: Emit) -> None:
        """Start the reader's thread (daemon thread; call :meth:`stop` to end it)."""
        if self._thread is not None:
            raise ReaderError(f"reader {self.name} is already started")
        self._emit = emit
        self.stopping.clear()
        self._thread = threading.Thread(target=self._run, name=f"reader-{self.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the thread to stop, interrupt blocking waits, and join it."""
        self.stopping.set()
        self.interrupt()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    # -- for subclasses ----------------------------------------------------
    def open(self) -> None:
        """Open the device or service; raise ReaderError when it is not there."""

    def serve(self) -> None:
        """Read cards until ``self.stopping`` is set; raise ReaderError on failure."""
        self.stopping.wait()

    def close(self) -> None:
        """Release the device; must not raise."""

    def interrupt(self) -> None:
        """Wake a blocking wait in :meth:`serve` so :meth:`stop` is prompt."""

    def emit(self, event: ReaderEvent) -> None:
        """Send an event (debounced for cards); a failing consumer is logged, not fatal.

        Only cards are debounced (a card resting on a contactless reader, or seen
        by two readers at once, counts once). A scanned code never is: scanning
        the same product twice means two of it.
        """
        if isinstance(event, CardPresented) and not event.token.startswith("code:") \
                and self.debouncer is not None and not self.debouncer.accept(event.token):
            log.debug("reader %s: same card again within the debounce window", self.name)
            return
        if self._emit is None:
            return
        try:
            self._emit(event)
        except Exception:
            log.exception("reader %s: the event consumer failed", self.name)

    def set_state(self, state: StateName, detail: str = "") -> None:
        """Record and report a state change (repeated identical states are not re-sent)."""
        new = ReaderState(self.name, self.kind, state, detail)
        if new == self._state and state != "connecting":
            return
        self._state = new
        log.info("reader %s: %s%s", self.name, state, f" ({detail})" if detail else "")
        self.emit(new)

    # -- the state machine -------------------------------------------------
    def _run(self) -> None:
        while not self.stopping.is_set():
            self.set_state("connecting")
            ready_at: float | None = None
            try:
                self.open()
                if not self.REPORTS_READY:
                    self.set_state("ready")
                ready_at = time.monotonic()
                self.serve()
            except ReaderError as exc:
                if not self.stopping.is_set():
                    self.set_state("error", str(exc))
            except Exception as exc:  # a bug: keep the daemon and other readers alive
                log.exception("reader %s: unexpected failure", self.name)
                if not self.stopping.is_set():
                    self.set_state("error", f"unexpected failure: {type(exc).__name__}")
            finally:
                try:
                    self.close()
                except Exception:
                    log.exception("reader %s: close failed", self.name)
            if self.stopping.is_set():
                break
            if ready_at is not None and time.monotonic() - ready_at >= self.STABLE_AFTER_S:
                self.backoff.reset()
            delay = self.backoff.next_delay()
            self.set_state("retry", f"retrying in {delay:.1f} s")
            self.stopping.wait(delay)
