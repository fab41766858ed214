"""agent.bounded_http against raw local servers that misbehave byte by byte."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from agent.bounded_http import DownloadError, HttpLimits, open_bounded

Script = Callable[[socket.socket], None]


class RawServer:
    """A TCP server on 127.0.0.1 that runs ``script`` on each connection (own thread)."""

    def __init__(self, script: Script):
        self.script = script
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        try:
            while True:
                conn, _ = self.sock.accept()
                self.conns.append(conn)
                threading.Thread(target=self._run, args=(conn,), daemon=True).start()
        except OSError:
            return

    def _run(self, conn: socket.socket) -> None:
        try:
            conn.recv(65536)  # the request
            self.script(conn)
        except OSError:
            pass

    def close(self) -> None:
        self.sock.close()
        for conn in self.conns:
            conn.close()


@pytest.fixture
def serve() -> Iterator[Callable[[Script], RawServer]]:
    made: list[RawServer] = []

    def make(script: Script) -> RawServer:
        made.append(RawServer(script))
        return made[-1]

    yield make
    for server in made:
        server.close()


def hold(seconds: float = 20.0) -> None:
    time.sleep(seconds)  # the server keeps the connection open, saying nothing more


def fetch(port: int, limits: HttpLimits, **kw: object) -> bytes:
    with open_bounded("test", f"http://127.0.0.1:{port}/x?y=1", limits, **kw) as resp:  # type: ignore[arg-type]
        return resp.read_all()


def test_headers_trickled_a_byte_at_a_time_hit_the_deadline(serve) -> None:
    def script(conn: socket.socket) -> None:
        for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 10_000:
            conn.sendall(bytes([byte]))
            time.sleep(0.02)  # every read returns: a socket timeout alone never fires

    server = serve(script)
    started = time.monotonic()
    with pytest.raises(DownloadError) as err:
        fetch(server.port, HttpLimits(deadline_s=1.0, max_bytes=1000, io_timeout_s=5))
    assert err.value.reason == "deadline"
    assert time.monotonic() - started < 1.5


def test_a_body_cut_by_the_deadline_never_passes_for_complete(serve) -> None:
    """A body without a length ends when the connection does; the deadline's shutdown
    must not look like that end."""
    def script(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.0 200 OK\r\n\r\nline 1\n")
        hold()

    server = serve(script)
    with pytest.raises(DownloadError) as err:
        fetch(server.port, HttpLimits(deadline_s=0.5, max_bytes=1000, io_timeout_s=5))
    assert err.value.reason == "deadline"


def test_cancel_ends_the_exchange_at_once(serve) -> None:
    def script(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.0 200 OK\r\n\r\n")
        hold()

    server = serve(script)
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    started = time.monotonic()
    with pytest.raises(DownloadError) as err:
        fetch(server.port, HttpLimits(deadline_s=30, max_bytes=1000), cancel=cancel)
    assert err.value.reason == "cancelled"
    assert time.monotonic() - started < 1.0


def test_an_announced_length_over_the_cap_is_refused_before_the_body(serve) -> None:
    def script(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n")
        hold()

    server = serve(script)
    started = time.monotonic()
    with pytest.raises(DownloadError) as err:
        fetch(server.port, HttpLimits(deadline_s=10, max_bytes=1000))
    assert err.value.reason == "too_large" and "99,999,999,999" in str(err.value)
    assert time.monotonic() - started < 1.0


def test_chunked_lines_split_anywhere_come_out_whole_and_a_long_one_is_refused(serve) -> None:
    body = b"first line\r\nsecond\n\n  \nthird without end"
    pieces = [body[i:i + 3] for i in range(0, len(body), 3)]

    def script(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for piece in pieces:
            conn.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
        conn.sendall(b"0\r\n\r\n")

    server = serve(script)
    url = f"http://127.0.0.1:{server.port}/"
    with open_bounded("test", url, HttpLimits(deadline_s=5, max_bytes=1000)) as resp:
        assert list(resp.iter_lines()) == [b"first line", b"second", b"third without end"]
    with open_bounded("test", url, HttpLimits(deadline_s=5, max_bytes=1000, max_line=10)) as resp:
        with pytest.raises(DownloadError) as err:
            list(resp.iter_lines())
    assert err.value.reason == "line_too_long"


def test_a_tls_handshake_that_never_comes_hits_the_deadline(serve) -> None:
    server = serve(lambda conn: hold())  # TCP accepted, no ServerHello
    started = time.monotonic()
    with pytest.raises(DownloadError) as err:
        with open_bounded("test", f"https://127.0.0.1:{server.port}/",
                          HttpLimits(deadline_s=0.8, max_bytes=1000, io_timeout_s=30)):
            pass
    assert err.value.reason == "deadline"
    assert time.monotonic() - started < 1.5
