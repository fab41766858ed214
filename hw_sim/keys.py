"""Recorded keyboard-wedge events: make them, write them, replay them.

There is no ``/dev/uinput`` on the test machine, so the simulated scanner is a
FIFO (or file) of recorded evdev events, one per line
(``<time> <type> <code> <value>``, see ``agent.drivers.evdev.parse_event_line``),
read by the wedge driver through its ``ReplaySource`` and decoded by the same
code as a real device.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterable
from pathlib import Path

from agent.drivers.evdev import EV_KEY, KeyEvent, format_event_line
from agent.drivers.keymaps import KEY_CAPSLOCK, KEY_ENTER, KEY_LEFTSHIFT, KEY_RIGHTALT, get_keymap

EV_SYN = 0
EV_MSC = 4
MSC_SCAN = 4


def _key(t: float, code: int, value: int) -> list[KeyEvent]:
    # A real keyboard sends MSC_SCAN, the key, then SYN_REPORT.
    return [KeyEvent(t, EV_MSC, MSC_SCAN, 0x70000 + code), KeyEvent(t, EV_KEY, code, value),
            KeyEvent(t, EV_SYN, 0, 0)]


def type_text(text: str, *, keymap: str = "us", start: float = 1_700_000_000.0,
              key_gap: float = 0.008, hold: float = 0.003, suffix: str = "enter",
              caps_lock_on: bool = False, repeat_at: int | None = None) -> list[KeyEvent]:
    """Key events that type ``text`` on layout ``keymap`` and end with the suffix.

    ``key_gap`` is the time between key presses (a scanner: a few ms; a person:
    0.1-0.3 s). ``caps_lock_on`` presses Caps Lock first and types letters without
    Shift, as a scanner that knows the host's Caps Lock does. ``repeat_at`` adds an
    auto-repeat event on that character (a held key).
    """
    km = get_keymap(keymap)
    events: list[KeyEvent] = []
    t = start
    if caps_lock_on:
        events += _key(t, KEY_CAPSLOCK, 1) + _key(t + hold, KEY_CAPSLOCK, 0)
        t += key_gap
    for i, ch in enumerate(text):
        code, shift, altgr = km.keystroke(ch)
        normal, shifted, _ = km.keys[code]
        if caps_lock_on and not altgr and normal.isalpha() and shifted.isalpha():
            shift = not shift        # Caps Lock does the Shift's work for letter keys
        if shift:
            events += _key(t, KEY_LEFTSHIFT, 1)
        if altgr:
            events += _key(t, KEY_RIGHTALT, 1)
        events += _key(t, code, 1)
        if repeat_at == i:
            events += _key(t + hold, code, 2)
        events += _key(t + hold, code, 0)
        if altgr:
            events += _key(t + hold, KEY_RIGHTALT, 0)
        if shift:
            events += _key(t + hold, KEY_LEFTSHIFT, 0)
        t += key_gap
    if suffix == "enter":
        events += _key(t, KEY_ENTER, 1) + _key(t + hold, KEY_ENTER, 0)
    return events


def write_events(path: Path | str, events: Iterable[KeyEvent], *, realtime: bool = False) -> None:
    """Append events to a file or FIFO; ``realtime`` keeps their timing."""
    p = Path(path)
    if p.exists() and stat.S_ISFIFO(p.stat().st_mode):
        try:
            # Non-blocking open: fails at once (ENXIO) when no driver reads the FIFO.
            fd = os.open(str(p), os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            raise OSError(exc.errno, f"no reader is listening on {p}") from None
        os.set_blocking(fd, True)
    else:
        fd = os.open(str(p), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        last: float | None = None
        batch: list[str] = []
        for event in events:
            if realtime and last is not None and event.time > last:
                os.write(fd, "".join(batch).encode())
                batch = []
                time.sleep(event.time - last)
            last = event.time
            batch.append(format_event_line(event))
        if batch:
            os.write(fd, "".join(batch).encode())
    finally:
        os.close(fd)


def make_fifo(path: Path | str) -> Path:
    """Create the scanner FIFO (and its folder) if it is not there."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    if p.exists() and not stat.S_ISFIFO(p.stat().st_mode):
        p.unlink()
    if not p.exists():
        os.mkfifo(p, 0o600)
    return p


def now_events(events: list[KeyEvent]) -> list[KeyEvent]:
    """The same events shifted so the first one is "now"."""
    if not events:
        return events
    shift = time.time() - events[0].time
    return [KeyEvent(e.time + shift, e.type, e.code, e.value) for e in events]
