"""The simulated club's HTTPS server: routes mounted with :meth:`ClubHttpServer.add_route`.

One server for everything the club serves over HTTPS: the member snapshot and the
enrolment routes (:mod:`hw_sim.club.enrolment`). TLS asks every client for a
certificate signed by the club CA; a route says whether it needs one (the member
snapshot does; the enrolment routes, used by a terminal that has no certificate
yet, do not). Handlers get a :class:`Request` (the path's match in ``.match``) and
return a :class:`Response` whose body may be an iterator of chunks (streamed, the
connection closed at the end), or raise :class:`HttpError` for a JSON error
``{"error": code, "message": …}``.

The TLS handshake runs in the connection's own thread, not in the accepting one:
a client that connects and never speaks holds only its own thread, until
:data:`IDLE_TIMEOUT_S`. A request body over :data:`MAX_BODY_BYTES` (or with a
Content-Length that is no number) is refused with 413 before it is read.
"""

from __future__ import annotations

import json
import logging
import re
import ssl
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger("hw_sim.club.https")

IDLE_TIMEOUT_S = 30.0  # a connection that neither sends nor reads for this long is dropped
MAX_BODY_BYTES = 1024 * 1024  # a request body (a CSR, a code) is a few KiB


class HttpError(Exception):
    """Raised by a handler to answer ``{"error": code, "message": …}`` with ``status``."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass
class Request:
    """One HTTP request as a handler sees it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    match: re.Match[str]
    client_cn: str | None  # CN of a verified client certificate (mutual TLS)

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def json(self) -> Any:
        """The body as JSON (an empty body is ``None``), or :class:`HttpError` 400."""
        try:
            return json.loads(self.body or b"null")
        except (ValueError, UnicodeDecodeError):
            raise HttpError(400, "bad_request", "the body is not JSON") from None


@dataclass
class Response:
    """A handler's answer; ``body`` bytes or an iterable of byte chunks (streamed)."""

    status: int = 200
    body: bytes | Iterable[bytes] = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, obj: Any, status: int = 200) -> Response:
        return cls(status, json.dumps(obj).encode(), {"Content-Type": "application/json"})

    @classmethod
    def error(cls, status: int, code: str, message: str) -> Response:
        return cls.json({"error": code, "message": message}, status)


Handler = Callable[[Request], Response]


@dataclass
class _Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    client_cert: bool


class ClubHttpServer:
    """A threaded HTTP(S) server on 127.0.0.1 with regex routes."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0,
                 tls: tuple[Path, Path, Path] | None = None):
        """``tls`` is ``(ca_file, cert_file, key_file)``; None serves plain HTTP (demo only)."""
        self.routes: list[_Route] = []
        outer = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # a streamed body ends when the connection closes
            timeout = IDLE_TIMEOUT_S

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("%s " + format, self.client_address[0], *args)

            def _serve(self) -> None:
                outer._dispatch(self)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

        self.httpd = ThreadingHTTPServer((host, port), _Handler)
        self.httpd.daemon_threads = True
        self.tls = tls is not None
        if tls is not None:
            ca, cert, key = tls
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            ctx.load_cert_chain(str(cert), str(key))
            ctx.load_verify_locations(str(ca))
            ctx.verify_mode = ssl.CERT_OPTIONAL  # each route decides whether it needs one
            # The handshake happens on the first read, in the connection's thread.
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True,
                                                do_handshake_on_connect=False)
        self.port = int(self.httpd.server_address[1])
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        host = "localhost" if self.tls else "127.0.0.1"
        return f"{scheme}://{host}:{self.port}"

    def add_route(self, method: str, path_regex: str, handler: Handler, *,
                  client_cert: bool = True) -> None:
        """Serve ``method`` on paths fully matching ``path_regex`` with ``handler``."""
        self.routes.append(_Route(method.upper(), re.compile(path_regex), handler, client_cert))

    def start(self) -> ClubHttpServer:
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="club-https",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join(5)
            self._thread = None
        self.httpd.server_close()

    def handle(self, method: str, target: str, *, body: bytes = b"",
               headers: dict[str, str] | None = None, client_cn: str | None = None) -> Response:
        """Route one request to its handler (the socket part left out, for unit tests)."""
        parts = urlsplit(target)
        found_path = False
        for route in self.routes:
            m = route.pattern.fullmatch(parts.path)
            if m is None:
                continue
            found_path = True
            if route.method != method:
                continue
            if route.client_cert and self.tls and client_cn is None:
                return Response.error(401, "client_cert_required",
                                      "this needs a client certificate of the club CA")
            req = Request(method, parts.path, parse_qs(parts.query),
                          {k.lower(): v for k, v in (headers or {}).items()}, body, m,
                          client_cn)
            try:
                return route.handler(req)
            except HttpError as exc:
                return Response.error(exc.status, exc.code, exc.message)
            except Exception:
                log.exception("handler for %s failed", parts.path)
                return Response.error(500, "internal_error", "the handler failed")
        if found_path:
            return Response.error(405, "method_not_allowed", f"{method} is not allowed here")
        return Response.error(404, "not_found", f"no route for {parts.path}")

    def _dispatch(self, h: BaseHTTPRequestHandler) -> None:
        cn = None
        if isinstance(h.connection, ssl.SSLSocket):
            peer = h.connection.getpeercert()
            # getpeercert() gives the subject as a tuple of RDNs of (name, value) pairs.
            for rdn in (peer or {}).get("subject", ()):
                for pair in rdn:
                    if pair[0] == "commonName":
                        cn = str(pair[1])
        try:
            length = int(h.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY_BYTES:
            # Refused before reading: the body is never held in memory.
            h.close_connection = True
            self._send(h, Response.error(413, "body_too_large",
                                         f"a request body is at most {MAX_BODY_BYTES} bytes"))
            return
        body = h.rfile.read(length) if length else b""
        self._send(h, self.handle(h.command, h.path, body=body, headers=dict(h.headers.items()),
                                  client_cn=cn))

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, resp: Response) -> None:
        try:
            h.send_response(resp.status)
            for key, value in resp.headers.items():
                h.send_header(key, value)
            if isinstance(resp.body, bytes):
                h.send_header("Content-Length", str(len(resp.body)))
                h.end_headers()
                h.wfile.write(resp.body)
            else:
                h.end_headers()
                for chunk in resp.body:
                    h.wfile.write(chunk)
        except (OSError, ssl.SSLError):  # gone away, reset, or stopped reading (timeout)
            log.debug("client went away")
