"""The simulated club's HTTPS server: routes mounted with :meth:`ClubHttpServer.add_route`.

TLS asks every client for a certificate signed by the club CA; a route says whether
it needs one (the member snapshot does; an enrolment endpoint, used by a terminal
that has no certificate yet, does not). Handlers get a :class:`Request` and return a
:class:`Response` whose body may be an iterator of chunks (streamed, the connection
closed at the end).
"""

from __future__ import annotations

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


@dataclass
class Request:
    """One HTTP request as a handler sees it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    match: re.Match[str]
    client_cn: str | None

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default


@dataclass
class Response:
    """A handler's answer; ``body`` bytes or an iterable of byte chunks (streamed)."""

    status: int = 200
    body: bytes | Iterable[bytes] = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, obj: Any, status: int = 200) -> Response:
        import json
        return cls(status, json.dumps(obj).encode(), {"Content-Type": "application/json"})


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
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
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

    def start(self) -> None:
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="club-https",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _dispatch(self, h: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(h.path)
        cn = None
        if self.tls:
            peer = h.connection.getpeercert()
            if peer:
                for rdn in peer.get("subject", ()):
                    for key, value in rdn:
                        if key == "commonName":
                            cn = value
        found_path = False
        for route in self.routes:
            m = route.pattern.fullmatch(parts.path)
            if m is None:
                continue
            found_path = True
            if route.method != h.command:
                continue
            if route.client_cert and self.tls and cn is None:
                self._send(h, Response(401, b"client certificate required\n"))
                return
            length = int(h.headers.get("Content-Length") or 0)
            body = h.rfile.read(length) if length else b""
            req = Request(h.command, parts.path, parse_qs(parts.query),
                          {k.lower(): v for k, v in h.headers.items()}, body, m, cn)
            try:
                resp = route.handler(req)
            except Exception:
                log.exception("handler for %s failed", parts.path)
                resp = Response(500, b"internal error\n")
            self._send(h, resp)
            return
        self._send(h, Response(405 if found_path else 404, b"no such route\n"))

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
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            log.debug("client went away")
