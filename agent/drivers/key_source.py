"""Where a keyboard-wedge reader's key events come from (the transport of
:mod:`agent.drivers.evdev`): a real input device, grabbed (:class:`EvdevSource`), or
recorded events from a file or FIFO (:class:`ReplaySource`, the simulated scanner).
Both go through the same decoder and reader code."""

from __future__ import annotations

import errno
import logging
import os
import select
import stat
from dataclasses import dataclass
from typing import Any, Protocol

from agent.errors import ReaderError

log = logging.getLogger("agent.drivers.evdev")

EV_KEY = 1


@dataclass(frozen=True)
class KeyEvent:
    """One input event as the kernel reports it (``time`` in seconds)."""

    time: float
    type: int
    code: int
    value: int


class EventSource(Protocol):
    """Where key events come from."""

    def read(self, timeout: float) -> list[KeyEvent]:
        """Events available within ``timeout`` seconds ([] if none); ReaderError on unplug."""
        ...

    def close(self) -> None:
        """Release the device (ungrab)."""
        ...

    @property
    def caps_lock(self) -> bool:
        """Caps Lock state when opened."""
        ...


class EvdevSource:
    """A real input device, grabbed (python-evdev)."""

    def __init__(self, path: str):
        try:
            import evdev as _evdev
        except ImportError as exc:  # pragma: no cover
            raise ReaderError("python-evdev is not installed (pip install 'clubterm[evdev]')") \
                from exc
        self._ecodes = _evdev.ecodes
        try:
            self.device: Any = _evdev.InputDevice(path)
        except OSError as exc:
            raise ReaderError(f"cannot open {path}: {exc.strerror or exc}") from None
        try:
            # Exclusive: the card's digits must not also reach a console or the UI.
            self.device.grab()
        except OSError as exc:
            self.device.close()
            raise ReaderError(f"cannot grab {path} (used by another program?): "
                              f"{exc.strerror or exc}") from None
        try:
            self._caps = self._ecodes.LED_CAPSL in self.device.leds()
        except OSError:
            self._caps = False

    @property
    def caps_lock(self) -> bool:
        """Caps Lock LED state when opened."""
        return self._caps

    def read(self, timeout: float) -> list[KeyEvent]:
        """Events within ``timeout``."""
        try:
            ready, _, _ = select.select([self.device.fd], [], [], timeout)
            if not ready:
                return []
            return [KeyEvent(e.sec + e.usec / 1e6, e.type, e.code, e.value)
                    for e in self.device.read()]
        except BlockingIOError:
            return []
        except OSError as exc:
            raise ReaderError(f"the device is gone: {exc.strerror or exc}") from None

    def close(self) -> None:
        """Ungrab and close."""
        try:
            self.device.ungrab()
        except OSError:
            pass
        try:
            self.device.close()
        except OSError:
            pass


def parse_event_line(line: str) -> KeyEvent | None:
    """``"<time> <type> <code> <value>"`` → KeyEvent; blank lines and ``#`` comments → None."""
    text = line.split("#", 1)[0].strip()
    if not text:
        return None
    parts = text.split()
    if len(parts) != 4:
        raise ReaderError(f"bad recorded event line: {line.strip()!r}")
    try:
        return KeyEvent(float(parts[0]), int(parts[1]), int(parts[2]), int(parts[3]))
    except ValueError:
        raise ReaderError(f"bad recorded event line: {line.strip()!r}") from None


def format_event_line(event: KeyEvent) -> str:
    """The recording format of one event (one line)."""
    return f"{event.time:.6f} {event.type} {event.code} {event.value}\n"


class ReplaySource:
    """Recorded events from a FIFO or a file (one event per line, see
    :func:`parse_event_line`). A FIFO is opened read-write so writers may come
    and go without an end-of-file; a file is read once to its end."""

    def __init__(self, path: str):
        try:
            self.is_fifo = stat.S_ISFIFO(os.stat(path).st_mode)
            flags = (os.O_RDWR if self.is_fifo else os.O_RDONLY) | os.O_NONBLOCK
            self.fd = os.open(path, flags)
        except OSError as exc:
            raise ReaderError(f"cannot open {path}: {exc.strerror}") from None
        self.path = path
        self.partial = b""
        self.eof = False

    @property
    def caps_lock(self) -> bool:
        """Recordings start with Caps Lock off (a recorded press toggles it)."""
        return False

    def read(self, timeout: float) -> list[KeyEvent]:
        """Events within ``timeout``."""
        if self.eof:
            select.select([], [], [], timeout)
            return []
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return []
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return []
        except OSError as exc:
            raise ReaderError(f"{self.path}: {exc.strerror}") from None
        if not data:
            self.eof = True
            data = b"\n"
        self.partial += data
        *lines, self.partial = self.partial.split(b"\n")
        events = []
        for raw in lines:
            try:
                event = parse_event_line(raw.decode("utf-8", errors="replace"))
            except ReaderError as exc:
                log.warning("%s", exc)
                continue
            if event is not None:
                events.append(event)
        return events

    def close(self) -> None:
        """Close the file."""
        try:
            os.close(self.fd)
        except OSError as exc:
            if exc.errno != errno.EBADF:
                raise


def open_source(path: str) -> EventSource:
    """An EvdevSource for a character device, a ReplaySource for a FIFO or file."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise ReaderError(f"{path} does not exist (unplugged?)") from None
    except OSError as exc:
        raise ReaderError(f"{path}: {exc.strerror}") from None
    if stat.S_ISCHR(mode):
        return EvdevSource(path)
    return ReplaySource(path)
