"""The club HTTPS server's routing (hw_sim.club.https), in-process through
``ClubHttpServer.handle``: every answer the server makes itself is a JSON error."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest

from hw_sim.club.https import ClubHttpServer, HttpError, Request, Response
from tests.fixtures.club import ClubPki


@pytest.fixture
def server(club_https: Callable[..., ClubHttpServer]) -> ClubHttpServer:
    s = club_https()

    def echo(req: Request) -> Response:
        return Response.json({"id": req.match.group("id"), "since": req.arg("since"),
                              "body": req.json(), "cn": req.client_cn})

    def refuse(req: Request) -> Response:
        raise HttpError(409, "busy", "try later")

    def crash(req: Request) -> Response:
        raise RuntimeError("bug")

    s.add_route("POST", r"/items/(?P<id>\d+)", echo)
    s.add_route("GET", r"/open", lambda req: Response(200, b"ok"), client_cert=False)
    s.add_route("GET", r"/refuse", refuse, client_cert=False)
    s.add_route("GET", r"/crash", crash, client_cert=False)
    return s


def answer(resp: Response) -> tuple[int, object]:
    assert isinstance(resp.body, bytes)
    assert resp.headers.get("Content-Type") == "application/json"
    return resp.status, json.loads(resp.body)


def test_a_route_gets_its_match_query_json_and_client(server: ClubHttpServer) -> None:
    resp = server.handle("POST", "/items/7?since=3", body=b'{"a": 1}', client_cn="T-1")
    assert answer(resp) == (200, {"id": "7", "since": "3", "body": {"a": 1}, "cn": "T-1"})
    assert server.handle("GET", "/open").body == b"ok"


@pytest.mark.parametrize(("method", "path", "kw", "status", "code"), [
    ("POST", "/items/7", {}, 401, "client_cert_required"),
    ("POST", "/items/7", {"client_cn": "T-1", "body": b"{"}, 400, "bad_request"),
    ("POST", "/items/7", {"client_cn": "T-1", "body": b"\xff"}, 400, "bad_request"),
    ("GET", "/items/7", {"client_cn": "T-1"}, 405, "method_not_allowed"),
    ("GET", "/items/x", {"client_cn": "T-1"}, 404, "not_found"),
    ("GET", "/refuse", {}, 409, "busy"),
    ("GET", "/crash", {}, 500, "internal_error"),
])
def test_errors_are_json(server: ClubHttpServer, method: str, path: str, kw: dict[str, object],
                         status: int, code: str) -> None:
    got_status, body = answer(server.handle(method, path, **kw))  # type: ignore[arg-type]
    assert got_status == status
    assert isinstance(body, dict) and body["error"] == code and body["message"]


def test_a_streamed_body_is_sent_whole(club_pki: ClubPki, server: ClubHttpServer) -> None:
    import ssl
    import urllib.request

    def chunks() -> Iterator[bytes]:
        for i in range(100):
            yield f"{i}\n".encode()

    server.add_route("GET", "/stream", lambda req: Response(200, chunks()), client_cert=False)
    ctx = ssl.create_default_context(cafile=str(club_pki.ca.cert_file))
    with urllib.request.urlopen(f"{server.url}/stream", context=ctx, timeout=5) as resp:
        assert resp.read() == b"".join(f"{i}\n".encode() for i in range(100))
