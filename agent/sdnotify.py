"""systemd's notify protocol (``sd_notify(3)``) in a few lines, without a dependency.

Messages are ``KEY=VALUE`` lines sent as one datagram to ``$NOTIFY_SOCKET``
(a path, or an abstract socket when it starts with ``@``). Outside systemd the
variable is unset and every call is a no-op.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger(__name__)


class Notifier:
    """Sends READY, STATUS, WATCHDOG, RELOADING and STOPPING to systemd."""

    def __init__(self, env: Mapping[str, str] | None = None):
        env = os.environ if env is None else env
        self.address = env.get("NOTIFY_SOCKET") or None
        usec = env.get("WATCHDOG_USEC")
        pid = env.get("WATCHDOG_PID")
        self.watchdog_usec: int | None = None
        if usec and usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            self.watchdog_usec = int(usec)

    @property
    def enabled(self) -> bool:
        """True when running under systemd with a notify socket."""
        return self.address is not None

    def watchdog_interval(self) -> float | None:
        """Seconds between WATCHDOG=1 pings (half the timeout), or None if not asked."""
        return self.watchdog_usec / 2_000_000 if self.watchdog_usec else None

    def send(self, *fields: str) -> bool:
        """Send ``fields`` (``KEY=VALUE``) as one datagram; False if not sent."""
        if self.address is None:
            return False
        address = self.address
        if address.startswith("@"):
            address = "\0" + address[1:]
        message = "\n".join(f.replace("\n", " ") for f in fields).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.connect(address)
                sock.sendall(message)
        except OSError as exc:
            log.debug("sd_notify to %s failed: %s", self.address, exc)
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        """The service is up: READY=1 (and a STATUS line)."""
        fields = ["READY=1", f"MAINPID={os.getpid()}"]
        if status:
            fields.append(f"STATUS={status}")
        return self.send(*fields)

    def status(self, text: str) -> bool:
        """The one-line status ``systemctl status`` shows."""
        return self.send(f"STATUS={text}")

    def watchdog(self) -> bool:
        """The loop is alive: WATCHDOG=1."""
        return self.send("WATCHDOG=1")

    def reloading(self) -> bool:
        """A configuration reload begins (READY=1 follows when done)."""
        return self.send("RELOADING=1", f"MONOTONIC_USEC={_monotonic_usec()}")

    def stopping(self, status: str | None = None) -> bool:
        """Shutting down: STOPPING=1."""
        return self.send("STOPPING=1", *( [f"STATUS={status}"] if status else []))


def _monotonic_usec() -> int:
    return int(_clock_monotonic() * 1_000_000)


def _clock_monotonic() -> float:
    import time

    return time.clock_gettime(time.CLOCK_MONOTONIC)
