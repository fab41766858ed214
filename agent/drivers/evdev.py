"""Keyboard-wedge readers (magstripe in HID keyboard mode, barcode/QR scanners).

Layers, from the device inwards:

* an :class:`EventSource` (in :mod:`agent.drivers.key_source`) gives raw key
  events. :class:`EvdevSource` wraps ``evdev.InputDevice`` (grabbed, so the digits
  of a card never reach a console or another program); :class:`ReplaySource`
  reads recorded events from a file or FIFO (the simulated scanner, since this
  machine has no ``/dev/uinput``). Both go through the same decoder and reader code.
* :class:`ScanDecoder` (pure) turns key events into characters with the
  project's keymaps (:mod:`agent.drivers.keymaps`) and decides what is a scan.
* :class:`EvdevReader` is the state machine: open (by a ``/dev/input/by-id``
  path or glob), read, decode, report; reopen after unplug.

**Scan or typing?** A scan is a burst: every key press follows the previous one
within ``inter_key_timeout_ms`` (80 ms by default; scanners type a key every
2-20 ms, people every 100-300 ms), it has at least ``min_length`` characters
(4; a card swipe is far longer), has no auto-repeat (a held key), and ends with
the configured suffix (Enter by default) — or, with ``suffix = "none"``, with the
silence after the last key. A burst that breaks any rule is dropped without an
event (logged at debug): someone typing on the device is not a scan.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from agent.carddata import detect
from agent.drivers import keymaps
from agent.drivers.base import Backoff, Debouncer, ThreadedReader
from agent.drivers.events import READ_AGAIN, CardPresented, ReadFailed
from agent.drivers.key_source import (
    EV_KEY,
    EvdevSource,
    EventSource,
    KeyEvent,
    ReplaySource,
    format_event_line,
    open_source,
    parse_event_line,
)
from agent.drivers.serial import code_event, resolve_device, swipe_event
from agent.errors import ConfigError, ReaderError

# The sources are the transport of this driver; importers keep using agent.drivers.evdev.
__all__ = [
    "EV_KEY", "SUFFIXES", "DecodedScan", "EvdevReader", "EvdevSource", "EventSource",
    "KeyEvent", "ReplaySource", "ScanDecoder", "format_event_line", "open_source",
    "parse_event_line",
]

log = logging.getLogger(__name__)

KEY_RELEASE, KEY_PRESS, KEY_REPEAT = 0, 1, 2
SUFFIXES = ("enter", "tab", "none")


@dataclass(frozen=True)
class DecodedScan:
    """What the decoder makes of a burst: a scan, or a rejection with a reason.

    ``text`` of a scan may be track data: never log or keep it.
    """

    kind: Literal["scan", "rejected"]
    text: str = ""
    reason: str = ""
    # True when the rejection should be shown (a layout problem), not just logged.
    report: bool = False

    def __repr__(self) -> str:
        return f"DecodedScan({self.kind}, <{len(self.text)} chars>, {self.reason!r})"


class ScanDecoder:
    """Pure: key events in, scans out. Call :meth:`idle` when no event came for
    ``inter_key_timeout_ms`` (the caller's read timeout)."""

    def __init__(self, keymap: keymaps.Keymap, *, suffix: str = "enter",
                 inter_key_timeout_ms: int = 80, min_length: int = 4, caps_lock: bool = False):
        if suffix not in SUFFIXES:
            raise ReaderError(f"unknown suffix {suffix!r}; use one of {', '.join(SUFFIXES)}")
        self.keymap = keymap
        self.suffix = suffix
        self.timeout = inter_key_timeout_ms / 1000.0
        self.min_length = min_length
        self.caps = caps_lock
        self.shift: set[int] = set()
        self.altgr = False
        self._reset()

    def _reset(self) -> None:
        self.chars: list[str] = []
        self.last_press: float | None = None
        self.human = False
        self.unknown: set[int] = set()

    def _end(self, out: list[DecodedScan]) -> None:
        """The burst ended normally (suffix, or silence with suffix "none")."""
        text = "".join(self.chars)
        if self.unknown:
            codes = ", ".join(str(c) for c in sorted(self.unknown))
            out.append(DecodedScan("rejected", reason=(
                f"key codes {codes} are not in keymap {self.keymap.name!r}: is the reader "
                "set to another keyboard layout?"), report=True))
        elif self.human:
            out.append(DecodedScan("rejected", reason="keys were held down: typed by hand"))
        elif len(text) < self.min_length:
            out.append(DecodedScan("rejected", reason="too short for a scan"))
        elif keymaps.looks_like_layout_mismatch(text, self.keymap):
            out.append(DecodedScan("rejected", reason=(
                f"the reader seems to use another keyboard layout than {self.keymap.name!r} "
                "(its digits arrive as symbols); set the reader or the profile's keymap"),
                report=True))
        else:
            out.append(DecodedScan("scan", text=text))
        self._reset()

    def feed(self, event: KeyEvent) -> list[DecodedScan]:
        """Take one event; return what it completes."""
        out: list[DecodedScan] = []
        if event.type != EV_KEY:
            return out
        code, value = event.code, event.value
        if code in keymaps.SHIFT_KEYS:
            if value == KEY_RELEASE:
                self.shift.discard(code)
            else:
                self.shift.add(code)
            return out
        if code == keymaps.KEY_RIGHTALT:
            self.altgr = value != KEY_RELEASE
            return out
        if code == keymaps.KEY_CAPSLOCK:
            if value == KEY_PRESS:
                self.caps = not self.caps
            return out
        if code in keymaps.IGNORED_MODIFIERS or value == KEY_RELEASE:
            return out
        if value == KEY_REPEAT:
            if self.chars:
                self.human = True
            return out
        # A key press: is it still the same burst?
        if self.last_press is not None and event.time - self.last_press > self.timeout:
            if self.suffix == "none":
                self._end(out)
            else:
                log.debug("wedge: a pause inside a burst: typed by hand, dropped")
                self._reset()
        self.last_press = event.time
        if self._is_suffix(code):
            if self.chars or self.unknown:
                self._end(out)
            else:
                self._reset()
            return out
        ch = self.keymap.char(code, shift=bool(self.shift), altgr=self.altgr, caps=self.caps)
        if ch is None:
            if code in (keymaps.KEY_ESC, keymaps.KEY_BACKSPACE):
                return out
            self.unknown.add(code)
        elif ch:
            self.chars.append(ch)
        return out

    def _is_suffix(self, code: int) -> bool:
        if self.suffix == "enter":
            return code in keymaps.ENTER_KEYS
        if self.suffix == "tab":
            return code == keymaps.KEY_TAB
        return False

    def idle(self) -> list[DecodedScan]:
        """No key for the inter-key timeout: end (suffix "none") or drop the burst."""
        out: list[DecodedScan] = []
        if not self.chars and not self.unknown:
            return out
        if self.suffix == "none":
            self._end(out)
        else:
            if self.unknown:
                self._end(out)
            else:
                log.debug("wedge: a burst without its suffix: typed by hand, dropped")
                self._reset()
        return out


class EvdevReader(ThreadedReader):
    """A keyboard-wedge reader: role "card" (track data → pan token) or "barcode"."""

    kind = "evdev"

    def __init__(self, name: str, device: str, pan_key: bytes, *, role: str = "card",
                 keymap: str = "us", suffix: str = "enter", inter_key_timeout_ms: int = 80,
                 min_length: int = 4, code_pattern: str | None = None,
                 debouncer: Debouncer | None = None,
                 backoff: Backoff | None = None, diagnostics: bool = False,
                 source_factory: Callable[[str], EventSource] = open_source):
        super().__init__(name, debouncer=debouncer, backoff=backoff)
        self.device = device
        self.pan_key = pan_key
        self.role = role
        self.keymap = keymaps.get_keymap(keymap)
        self.suffix = suffix
        self.inter_key_timeout_ms = inter_key_timeout_ms
        self.min_length = min_length
        try:
            self.code_pattern = re.compile(code_pattern) if code_pattern else None
        except re.error as exc:
            raise ConfigError(f"code_pattern is not a valid regular expression: {exc}",
                              key=f"readers.{name}.code_pattern") from None
        self.diagnostics = diagnostics
        self.source_factory = source_factory
        self.source: EventSource | None = None

    def open(self) -> None:
        """Resolve the by-id path (or glob) and open the device."""
        self.source = self.source_factory(resolve_device(self.device))

    def close(self) -> None:
        """Ungrab and close."""
        if self.source is not None:
            self.source.close()
            self.source = None

    def serve(self) -> None:
        """Read, decode and report until stopped or unplugged."""
        assert self.source is not None
        decoder = ScanDecoder(self.keymap, suffix=self.suffix,
                              inter_key_timeout_ms=self.inter_key_timeout_ms,
                              min_length=self.min_length, caps_lock=self.source.caps_lock)
        wait = self.inter_key_timeout_ms / 1000.0
        while not self.stopping.is_set():
            events = self.source.read(wait)
            if not events:
                results = decoder.idle()
            else:
                results = [r for e in events for r in decoder.feed(e)]
            for result in results:
                self.report(result)

    def report(self, result: DecodedScan) -> None:
        """Turn a decoded burst into an event."""
        source: Literal["msr", "hid"] = "msr" if self.role == "card" else "hid"
        if result.kind == "rejected":
            log.debug("reader %s: %s", self.name, result.reason)
            if result.report:
                self.emit(ReadFailed(source, self.name, f"{READ_AGAIN}: {result.reason}"))
            return
        event: CardPresented | ReadFailed
        if self.role == "card":
            event = swipe_event(result.text, reader=self.name, source="msr",
                                pan_key=self.pan_key, diagnostics=self.diagnostics)
            if isinstance(event, ReadFailed) and not any(c.isdigit() for c in result.text):
                # Track data is mostly digits: none at all points at the layout.
                event = ReadFailed(source, self.name, f"{event.message} (no digits arrived: "
                                   f"is the reader set to keyboard layout {self.keymap.name!r}?)")
        elif detect.find_card_data(result.text) is not None:
            # A swipe or a card number on the scanner: a card read, never a code.
            event = code_event(result.text, reader=self.name, pan_key=self.pan_key,
                               diagnostics=self.diagnostics)
        elif self.code_pattern is not None and not self.code_pattern.fullmatch(result.text):
            event = ReadFailed(source, self.name, f"{READ_AGAIN}: the code does not have the "
                               "expected form (code_pattern); is the scanner set to keyboard "
                               f"layout {self.keymap.name!r}?")
        else:
            event = code_event(result.text, reader=self.name)
        self.emit(event)
