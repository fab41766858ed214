"""A virtual serial magstripe reader on a pseudo-terminal.

The driver opens ``link`` (a symlink to the pty's slave, like the udev-made
``/dev/clubterm-msr``); :meth:`VirtualSerialMsr.swipe` writes track data to the
master the way real readers send it: in small chunks with small delays, with
optional line noise before it. ``unplug`` closes the pty and removes the link
(the driver sees an I/O error); ``plug`` makes a new pty behind the same link.
"""

from __future__ import annotations

import os
import pty
import random
import time
import tty
from pathlib import Path

TEST_PANS = {"visa": "4111111111111111", "mastercard": "5555555555554444",
             "visa-debit": "4761739001010119"}


def track_data(pan: str, expiry: str = "2812", name: str = "TEST/CARDHOLDER",
               service_code: str = "201") -> str:
    """Tracks 1 and 2 of a test card, with sentinels, as a reader sends them."""
    t1 = f"%B{pan}^{name}^{expiry}{service_code}0000000000000000000?"
    t2 = f";{pan}={expiry}{service_code}00000000000000?"
    return t1 + t2


class VirtualSerialMsr:
    """A pty pretending to be a serial magstripe reader."""

    def __init__(self, link: Path | str, *, seed: int | None = None):
        self.link = Path(link)
        self.rng = random.Random(seed)
        self.master: int | None = None
        self.slave: int | None = None
        self.plug()

    def plug(self) -> None:
        """Create the pty and point the link at it."""
        self.master, self.slave = pty.openpty()
        tty.setraw(self.slave)
        self.link.parent.mkdir(parents=True, exist_ok=True)
        if self.link.is_symlink() or self.link.exists():
            self.link.unlink()
        self.link.symlink_to(os.ttyname(self.slave))

    def unplug(self) -> None:
        """Close the pty and remove the link."""
        for fd in (self.master, self.slave):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.master = self.slave = None
        if self.link.is_symlink():
            self.link.unlink()

    close = unplug

    def write(self, data: bytes) -> None:
        """Raw bytes to the driver."""
        assert self.master is not None, "unplugged"
        os.write(self.master, data)

    def swipe(self, text: str, *, chunk: tuple[int, int] = (3, 17), delay: float = 0.004,
              noise: bool = False, terminator: bytes = b"\r") -> None:
        """Send ``text`` in random chunks, optionally preceded by line noise."""
        data = text.encode("ascii") + terminator
        if noise:
            junk = bytes(self.rng.choice([0x00, 0xFF, 0x7F, 0x1B, 0x80, 0xFE, 0x3F, 0x41])
                         for _ in range(self.rng.randint(2, 8)))
            self.write(junk)
            time.sleep(delay)
        pos = 0
        while pos < len(data):
            size = self.rng.randint(*chunk)
            self.write(data[pos:pos + size])
            pos += size
            time.sleep(delay)

    def half_swipe(self, text: str) -> None:
        """Only the first part of a swipe, then silence (card pulled too fast)."""
        self.write(text[: len(text) // 3].encode("ascii"))
