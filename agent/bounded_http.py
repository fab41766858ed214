"""HTTP(S) exchanges with hard limits: one overall deadline, a cap on the body, a cap on a line.

A socket timeout bounds one read only: a server that trickles a byte every few
seconds, or never stops sending, holds a plain ``requests`` call for ever and
fills memory. Here a watcher thread shuts the TCP socket down when the deadline
passes (or the caller cancels), which wakes a read blocked anywhere (connect,
TLS handshake, headers, body); the reader then reports the deadline, never a cut
body as a complete one. The body is read in pieces as they arrive and counted.

Used for the member snapshot (:mod:`agent.sync.snapshot`) and every download of
enrolment (:mod:`provisioning.client`). Proxies (``HTTPS_PROXY``) are not used.
Errors are :class:`DownloadError` with a short ``reason``.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from urllib.parse import urlsplit

from agent.errors import ClubtermError

_PIECE = 64 * 1024
_EPSILON_S = 0.05  # a socket timeout ending this close to the deadline is the deadline


@dataclass(frozen=True)
class HttpLimits:
    """How long an exchange may take and how much it may bring."""

    deadline_s: float  # the whole exchange: connect, TLS, request, headers, body
    max_bytes: int  # the body
    max_line: int = 1024 * 1024  # one line, for :meth:`BoundedResponse.iter_lines`
    io_timeout_s: float = 15.0  # one connect or one read (never beyond the deadline)


class DownloadError(ClubtermError):
    """An exchange failed or broke a limit.

    ``reason`` is one of ``deadline``, ``cancelled``, ``too_large``,
    ``line_too_long``, ``tls`` (the server's certificate was refused, or ours),
    ``unreachable`` (connect failed) and ``network`` (the exchange broke).
    """

    def __init__(self, reason: str, message: str):
        self.reason = reason
        super().__init__(message)


class _Watch:
    """Shuts the socket down at the deadline or on ``cancel``; a thread of its own."""

    def __init__(self, deadline_s: float, cancel: threading.Event | None):
        self.deadline_s = deadline_s
        self.deadline_at = time.monotonic() + deadline_s
        self.cancel = cancel
        self.fired: str | None = None
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._sock: socket.socket | None = None
        self._thread = threading.Thread(target=self._run, name="http-deadline", daemon=True)
        self._thread.start()

    def left(self) -> float:
        return self.deadline_at - time.monotonic()

    def attach(self, sock: socket.socket) -> None:
        with self._lock:
            self._sock = sock
            fired = self.fired is not None
        if fired:
            self._shutdown(sock)

    def _run(self) -> None:
        while True:
            left = self.left()
            if left <= 0:
                self._fire("deadline")
                return
            # Without a cancel event one wait to the deadline; with one, look at it often.
            if self._done.wait(left if self.cancel is None else min(left, 0.1)):
                return
            if self.cancel is not None and self.cancel.is_set():
                self._fire("cancelled")
                return

    def _fire(self, reason: str) -> None:
        with self._lock:
            if self._done.is_set():
                return
            self.fired = reason
            sock = self._sock
        if sock is not None:
            self._shutdown(sock)

    @staticmethod
    def _shutdown(sock: socket.socket) -> None:
        # The plain socket's shutdown (not SSLSocket's, which drops its TLS state
        # under a thread that may be reading): the blocked read sees end of stream.
        with contextlib.suppress(OSError):
            socket.socket.shutdown(sock, socket.SHUT_RDWR)

    def finish(self) -> None:
        with self._lock:
            self._done.set()


class BoundedResponse:
    """The status and headers of an answer; its body is read with the limits."""

    def __init__(self, what: str, conn: http.client.HTTPConnection,
                 resp: http.client.HTTPResponse, watch: _Watch, limits: HttpLimits):
        self.what = what
        self.status = resp.status
        self.reason = resp.reason
        self.headers = resp.headers
        self.bytes_read = 0
        self.lines_read = 0
        self._conn = conn
        self._resp = resp
        self._watch = watch
        self._limits = limits
        length = resp.getheader("Content-Length")
        if length is not None and length.strip().isdigit() and int(length) > limits.max_bytes:
            self.close()
            raise DownloadError("too_large", f"{what}: the answer announces {int(length):,} bytes, "
                                             f"over the limit of {limits.max_bytes:,}")

    def __enter__(self) -> BoundedResponse:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Stop the watcher and close the connection (idempotent)."""
        self._watch.finish()
        with contextlib.suppress(OSError, http.client.HTTPException):
            self._resp.close()
        self._conn.close()

    def _piece(self) -> bytes:
        try:
            data = self._resp.read1(_PIECE)
        except (OSError, http.client.HTTPException) as exc:
            raise _failure(self.what, self._watch, exc) from None
        if not data and self._watch.fired is not None:
            # The watcher's shutdown looks like the end of a body sent without a
            # length: it must not pass for a complete answer.
            raise _failure(self.what, self._watch, None)
        self.bytes_read += len(data)
        if self.bytes_read > self._limits.max_bytes:
            raise DownloadError("too_large", f"{self.what}: the answer is over the limit of "
                                             f"{self._limits.max_bytes:,} bytes")
        return data

    def read_all(self) -> bytes:
        """The whole body (at most ``max_bytes``)."""
        out = bytearray()
        while piece := self._piece():
            out += piece
        return bytes(out)

    def iter_lines(self) -> Iterator[bytes]:
        """The non-blank lines of the body, without line ends, as they arrive.

        Memory stays within one line (``max_line``) and one read.
        """
        limit = self._limits.max_line
        buf = bytearray()
        while piece := self._piece():
            buf += piece
            start = 0
            while (end := buf.find(b"\n", start)) >= 0:
                line = bytes(buf[start:end]).rstrip(b"\r")
                start = end + 1
                if len(line) > limit:
                    raise self._too_long()
                if line.strip():
                    self.lines_read += 1
                    yield line
            del buf[:start]
            if len(buf) > limit:
                raise self._too_long()
        if bytes(buf).strip():
            self.lines_read += 1
            yield bytes(buf)

    def _too_long(self) -> DownloadError:
        return DownloadError("line_too_long", f"{self.what}: line {self.lines_read + 1} is "
                                              f"over the limit of {self._limits.max_line:,} bytes")


def open_bounded(what: str, url: str, limits: HttpLimits, *, method: str = "GET",
                 body: bytes | None = None, headers: Mapping[str, str] | None = None,
                 ssl_context: ssl.SSLContext | None = None,
                 cancel: threading.Event | None = None) -> BoundedResponse:
    """Send one request and return the answer's head; read the body from the result.

    ``what`` names the exchange in error messages ("member snapshot"). ``url`` is
    ``https://`` (with ``ssl_context``) or ``http://``. The deadline runs from this
    call until the result is closed; ``cancel`` ends the exchange early.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DownloadError("unreachable", f"{what}: {url!r} is not an http(s) URL")
    tls = parts.scheme == "https"
    host = parts.hostname
    port = parts.port or (443 if tls else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    watch = _Watch(limits.deadline_s, cancel)
    conn: http.client.HTTPConnection | None = None
    try:
        try:
            raw = socket.create_connection((host, port), timeout=_io(limits, watch))
        except OSError as exc:
            if watch.fired is not None or watch.left() <= _EPSILON_S:
                raise _failure(what, watch, exc) from None
            raise DownloadError("unreachable", f"{what}: cannot connect to {host}:{port} "
                                               f"({exc.__class__.__name__}: {exc})") from None
        watch.attach(raw)
        sock: socket.socket = raw
        if tls:
            context = ssl_context or ssl.create_default_context()
            # The TLS socket takes the descriptor over: the watcher must hold it
            # before the handshake, which may trickle too.
            sock = context.wrap_socket(raw, server_hostname=host,
                                       do_handshake_on_connect=False)
            watch.attach(sock)
            try:
                sock.do_handshake()
            except ssl.SSLCertVerificationError as exc:
                sock.close()
                raise DownloadError("tls", f"{what}: the server at {host}:{port} is not "
                                           f"trusted ({exc.verify_message})") from None
            except (OSError, ssl.SSLError) as exc:
                sock.close()
                in_time = watch.fired is None and watch.left() > _EPSILON_S
                if in_time and isinstance(exc, ssl.SSLError):
                    raise DownloadError("tls", f"{what}: TLS with {host}:{port} failed "
                                               f"({exc.reason or exc})") from None
                raise _failure(what, watch, exc) from None
            conn = http.client.HTTPSConnection(host, port, timeout=limits.io_timeout_s,
                                               context=context)
        else:
            conn = http.client.HTTPConnection(host, port, timeout=limits.io_timeout_s)
        conn.sock = sock
        sock.settimeout(_io(limits, watch))
        try:
            conn.request(method, target, body=body,
                         headers={"Connection": "close", **(headers or {})})
            resp = conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            raise _failure(what, watch, exc) from None
        return BoundedResponse(what, conn, resp, watch, limits)
    except BaseException:
        watch.finish()
        if conn is not None:
            conn.close()
        raise


def _io(limits: HttpLimits, watch: _Watch) -> float:
    return max(0.05, min(limits.io_timeout_s, watch.left()))


def _failure(what: str, watch: _Watch, exc: BaseException | None) -> DownloadError:
    # A read's socket timeout is cut to the time left, so it may end at the deadline
    # a moment before the watcher does.
    if watch.fired == "deadline" or (watch.fired is None and watch.left() <= _EPSILON_S):
        return DownloadError("deadline", f"{what}: not finished within the deadline of "
                                         f"{watch.deadline_s:g} s")
    if watch.fired == "cancelled":
        return DownloadError("cancelled", f"{what}: cancelled")
    if isinstance(exc, ssl.SSLError):
        return DownloadError("tls", f"{what}: TLS failed ({exc.reason or exc}); the server "
                                    f"may have refused this terminal's certificate")
    if isinstance(exc, TimeoutError):
        return DownloadError("network", f"{what}: the server sent nothing for too long "
                                        f"(read timeout)")
    detail = f"{exc.__class__.__name__}: {exc}" if exc is not None else "end of stream"
    return DownloadError("network", f"{what}: the connection broke ({detail})")
