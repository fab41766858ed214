"""A simulated ESC/POS network printer (TCP, port 9100 by default).

Records the byte stream of each connection (one receipt per connection, as the
agent sends them) and answers the real-time status queries (``DLE EOT 1/2/4``)
from its state, which a test or a technician sets:

- ``ok``: prints;
- ``paper_out`` / ``paper_low`` / ``cover_open``: answers so (and records anyway);
- ``hang``: stops reading and answering after ``hang_after`` bytes (a printer
  that froze mid-receipt);
- ``refuse``: closes every connection at once.

:class:`PtySimPrinter` is the same printer on a serial line (a pty).

``python -m hw_sim printer --port 9100 --dir DIR`` writes each receipt to
``DIR/receipt-NNNN.bin`` and reads the state from ``DIR/printer.state`` (one
word) at every connection, so ``echo paper_out > DIR/printer.state`` simulates it.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import threading
from pathlib import Path

from hw_sim.escpos_decode import Decoded, commands, decode

STATES = ("ok", "paper_out", "paper_low", "cover_open", "hang", "refuse")


def status_byte(n: int, state: str) -> int:
    """The answer to ``DLE EOT n`` in ``state`` (ESC/POS fixed bits 0x12)."""
    out = state == "paper_out"
    cover = state == "cover_open"
    if n == 1:
        return 0x12 | (0x08 if out or cover else 0)
    if n == 2:
        return 0x12 | (0x04 if cover else 0) | (0x20 if out else 0)
    if n == 4:
        return 0x12 | (0x60 if out else 0) | (0x0C if state == "paper_low" else 0)
    return 0x12


class SimPrinter:
    """The simulated printer; ``port=0`` picks a free port (see :attr:`port`)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, directory: Path | None = None,
                 state: str = "ok", hang_after: int = 0, max_bytes: int = 8 * 1024 * 1024):
        self.state = state
        self.hang_after = hang_after
        self.directory = directory
        self.max_bytes = max_bytes
        self.jobs: list[bytes] = []
        self.connections = 0
        self._lock = threading.Lock()
        self._done = threading.Condition(self._lock)
        self._sock = socket.create_server((host, port))
        self._sock.settimeout(0.2)
        self.host, self.port = self._sock.getsockname()[:2]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._hung: list[socket.socket] = []

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> SimPrinter:
        t = threading.Thread(target=self._accept, name="sim-printer", daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def close(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(2)
        self._sock.close()
        for s in self._hung:
            s.close()

    def __enter__(self) -> SimPrinter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _current_state(self) -> str:
        if self.directory is not None:
            try:
                word = (self.directory / "printer.state").read_text().strip()
                if word in STATES:
                    return word
            except OSError:
                pass
        return self.state

    def status_byte(self, n: int, state: str) -> int:
        """The answer to ``DLE EOT n`` in ``state``."""
        return status_byte(n, state)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            state = self._current_state()
            if state == "refuse":
                conn.close()
                continue
            t = threading.Thread(target=self._serve, args=(conn, state), daemon=True,
                                 name="sim-printer-conn")
            t.start()
            self._threads.append(t)

    def _serve(self, conn: socket.socket, state: str) -> None:
        data = bytearray()
        parsed = 0
        conn.settimeout(0.2)
        try:
            while not self._stop.is_set():
                if state == "hang" and len(data) >= self.hang_after:
                    self._hung.append(conn)  # never read again, never answer
                    self._stop.wait(60)
                    return
                try:
                    chunk = conn.recv(4096 if state != "hang" else
                                      max(1, min(4096, self.hang_after - len(data))))
                except TimeoutError:
                    continue
                except OSError:
                    break
                if not chunk:
                    break
                data += chunk
                if len(data) > self.max_bytes:
                    break
                for kind, cmd, end in commands(bytes(data), parsed):
                    parsed = end
                    if kind == "status":
                        conn.sendall(bytes([self.status_byte(cmd[2], state)]))
        finally:
            if state != "hang":
                conn.close()
            self._record(bytes(data))

    def _record(self, data: bytes) -> None:
        if not data:
            return
        with self._done:
            self.jobs.append(data)
            printed = any(kind != "status" for kind, _cmd, _end in commands(data))
            if self.directory is not None and printed:  # not the agent's idle status polls
                path = self.directory / f"receipt-{len(self.jobs):04d}.bin"
                path.write_bytes(data)
            self._done.notify_all()

    def receipts(self) -> list[Decoded]:
        """Every recorded connection that printed something, decoded."""
        with self._lock:
            jobs = list(self.jobs)
        return [d for d in (decode(j) for j in jobs) if d.lines or d.images or d.drawer]

    def wait_receipts(self, count: int, timeout_s: float = 10.0) -> list[Decoded]:
        """Wait until ``count`` receipts are recorded (or the timeout); return them."""
        import time
        deadline = time.monotonic() + timeout_s
        while True:
            found = self.receipts()
            left = deadline - time.monotonic()
            if len(found) >= count or left <= 0:
                return found
            with self._done:
                self._done.wait(min(0.2, left))


class PtySimPrinter:
    """The same printer on a serial line: a pseudo-terminal whose slave is linked at
    ``link`` (``kind = "serial"``, ``address`` = the link). A serial line has no
    connections: a receipt ends when the line stays quiet for ``gap_s``. The state
    is :attr:`state` (as :class:`SimPrinter`'s; ``refuse`` is not simulated)."""

    def __init__(self, link: Path, *, state: str = "ok", hang_after: int = 0,
                 gap_s: float = 0.5):
        import pty
        import tty

        self.link = link
        self.state = state
        self.hang_after = hang_after
        self.gap_s = gap_s
        self.jobs: list[bytes] = []
        self._lock = threading.Condition()
        self.master, self.slave = pty.openpty()
        tty.setraw(self.slave)
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(os.ttyname(self.slave))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sim-printer-pty", daemon=True)

    def start(self) -> PtySimPrinter:
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)
        with contextlib.suppress(OSError):
            self.link.unlink()

    def __enter__(self) -> PtySimPrinter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self) -> None:
        data = bytearray()
        parsed = 0
        total = 0
        while not self._stop.is_set():
            if self.state == "hang" and total >= self.hang_after:
                self._stop.wait(0.1)  # reads nothing: the line's buffer fills up
                continue
            ready, _, _ = select.select([self.master], [], [], self.gap_s)
            if not ready:
                if data:
                    self._finish(bytes(data))
                    data, parsed = bytearray(), 0
                continue
            try:
                chunk = os.read(self.master, 4096 if self.state != "hang"
                                else max(1, self.hang_after - total))
            except OSError:
                return
            total += len(chunk)
            data += chunk
            for kind, cmd, end in commands(bytes(data), parsed):
                parsed = end
                if kind == "status":
                    os.write(self.master, bytes([status_byte(cmd[2], self.state)]))

    def _finish(self, data: bytes) -> None:
        with self._lock:
            self.jobs.append(data)
            self._lock.notify_all()

    def receipts(self) -> list[Decoded]:
        """Every recorded receipt that printed something, decoded."""
        with self._lock:
            jobs = list(self.jobs)
        return [d for d in (decode(j) for j in jobs) if d.lines or d.images or d.drawer]

    def wait_receipts(self, count: int, timeout_s: float = 10.0) -> list[Decoded]:
        """Wait until ``count`` receipts are recorded (or the timeout); return them."""
        import time
        deadline = time.monotonic() + timeout_s
        while True:
            found = self.receipts()
            left = deadline - time.monotonic()
            if len(found) >= count or left <= 0:
                return found
            with self._lock:
                self._lock.wait(min(0.2, left))
