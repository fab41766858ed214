"""A virtual smart card client for vsmartcard's ``vpcd`` pcscd driver.

``vpcd`` (loaded by pcscd from a ``reader.conf.d`` entry) listens on a TCP port
(35963 by default, the entry's ``CHANNELID``); a virtual card "is inserted" when
a client connects and "removed" when it disconnects. Every message, both ways,
is a 2-byte big-endian length followed by the payload. A 1-byte message from
vpcd is a control code: 0x00 power off, 0x01 power on, 0x02 reset, 0x04 get ATR
(answered with the ATR). Anything longer is a command APDU, answered with the
response APDU.
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
from typing import Protocol

log = logging.getLogger(__name__)

DEFAULT_PORT = 35963
CTRL_OFF = 0x00
CTRL_ON = 0x01
CTRL_RESET = 0x02
CTRL_ATR = 0x04


class VirtualCard(Protocol):
    """What a card personality implements (see :mod:`hw_sim.cards`)."""

    atr: bytes

    def reset(self) -> None:
        """Power on / reset: forget the selected application."""

    def answer(self, apdu: bytes) -> bytes | None:
        """The response APDU; None to vanish (a card pulled away mid-read)."""


def _recv_exact(sock: socket.socket, size: int) -> bytes | None:
    buf = b""
    while len(buf) < size:
        try:
            chunk = sock.recv(size - len(buf))
        except OSError:
            return None
        if not chunk:
            return None
        buf += chunk
        # vpcd writes a frame's length and body in two send() calls; with Nagle on
        # its side, a delayed ACK from ours would stall every APDU by ~40 ms.
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        except (OSError, AttributeError):
            pass
    return buf


class VpcdSession:
    """One inserted card: a connection to vpcd served by a thread.

    ``insert()`` connects (the card appears in the reader), ``remove()`` closes
    the connection (the card leaves). ``apdus`` counts the APDUs answered.
    """

    def __init__(self, card: VirtualCard, port: int = DEFAULT_PORT, host: str = "127.0.0.1"):
        self.card = card
        self.port = port
        self.host = host
        self.apdus = 0
        self.commands: list[bytes] = []
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self.closed = threading.Event()

    def insert(self, timeout: float = 5.0) -> VpcdSession:
        """Connect to vpcd and start answering."""
        self._sock = socket.create_connection((self.host, self.port), timeout=timeout)
        self._sock.settimeout(None)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.closed.clear()
        self._thread = threading.Thread(target=self._serve, name="vpcd-card", daemon=True)
        self._thread.start()
        return self

    def remove(self) -> None:
        """Disconnect (the card leaves the reader) and wait for the thread."""
        sock = self._sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(5)
        self._sock = None
        self._thread = None

    def __enter__(self) -> VpcdSession:
        return self.insert() if self._sock is None else self

    def __exit__(self, *exc: object) -> None:
        self.remove()

    def _send(self, payload: bytes) -> None:
        assert self._sock is not None
        self._sock.sendall(struct.pack(">H", len(payload)) + payload)

    def _serve(self) -> None:
        sock = self._sock
        try:
            while sock is not None:
                head = _recv_exact(sock, 2)
                if head is None:
                    break
                (size,) = struct.unpack(">H", head)
                msg = _recv_exact(sock, size)
                if msg is None:
                    break
                if size == 1:
                    code = msg[0]
                    if code in (CTRL_ON, CTRL_RESET):
                        self.card.reset()
                    elif code == CTRL_ATR:
                        self._send(self.card.atr)
                    continue
                self.commands.append(msg)
                answer = self.card.answer(msg)
                if answer is None:
                    # The card "leaves the field": close without answering.
                    try:
                        sock.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    sock.close()
                    break
                self.apdus += 1
                self._send(answer)
        except OSError as exc:
            log.debug("vpcd session ended: %s", exc)
        finally:
            self.closed.set()
