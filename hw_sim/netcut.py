"""A TCP proxy that can cut the network: for tests and benchmarks of the club link.

``cut()`` makes the network silent the way a dead uplink is: connections stay
open but no byte moves either way and new connections get no answer, so the
client only notices through its own keepalive. ``heal()`` lets bytes flow again
(connections made before the cut are closed then, as a NAT box that lost its
table would). ``reset()`` closes everything at once (a broker or router reboot).
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading

from hw_sim.broker import free_port


class NetCut:
    """Listens on ``127.0.0.1:port`` and forwards to ``target_port``."""

    def __init__(self, target_port: int, *, target_host: str = "127.0.0.1"):
        self.target = (target_host, target_port)
        self.port = free_port()
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", self.port))
        self._listener.listen(256)
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._cut = threading.Event()
        self._stopped = threading.Event()
        self._generation = 0
        self.connections = 0
        self._thread = threading.Thread(target=self._accept_loop, name="netcut", daemon=True)
        self._thread.start()

    def cut(self) -> None:
        """Stop moving bytes (existing connections hang, new ones get nothing)."""
        self._cut.set()

    def heal(self) -> None:
        """Move bytes again; connections from before the cut are dropped."""
        with self._lock:
            self._generation += 1
            pairs, self._pairs = self._pairs, []
        for a, b in pairs:
            _close(a, b)
        self._cut.clear()

    def reset(self) -> None:
        """Close every connection now."""
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for a, b in pairs:
            _close(a, b)

    def close(self) -> None:
        self._stopped.set()
        self.reset()
        self._listener.close()

    def _accept_loop(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        while self._cut.is_set():  # a dead uplink: the SYN "got through", nothing else
            if self._stopped.wait(0.1):
                client.close()
                return
        with self._lock:
            generation = self._generation
        try:
            upstream = socket.create_connection(self.target, timeout=5)
        except OSError:
            client.close()
            return
        with self._lock:
            self._pairs.append((client, upstream))
        socks = [client, upstream]
        try:
            while not self._stopped.is_set():
                if self._cut.is_set():
                    self._cut_wait(generation)
                    if self._generation != generation:
                        return
                r, _, _ = select.select(socks, [], [], 0.2)
                for s in r:
                    data = s.recv(65536)
                    if not data:
                        return
                    (upstream if s is client else client).sendall(data)
        except OSError:
            return
        finally:
            _close(client, upstream)

    def _cut_wait(self, generation: int) -> None:
        while self._cut.is_set() and not self._stopped.is_set() \
                and self._generation == generation:
            self._stopped.wait(0.1)


def _close(*socks: socket.socket) -> None:
    for s in socks:
        with contextlib.suppress(OSError):
            s.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            s.close()
