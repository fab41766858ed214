"""The club's one CA and one HTTPS server under attack (#14 item 5).

- Clients that connect and never start TLS (a port scanner, a stalled box) must not
  stop the club's HTTPS server from answering everyone else: the handshake runs in
  the connection's thread, not in the one accepting connections.
- A request announcing a huge body is refused before any of it is read, with a
  JSON 413, memory flat.
- A server certificate is a server certificate only: presented as a client
  certificate it opens neither the club's HTTPS routes nor the broker (where its CN,
  ``localhost``, would otherwise log in as a terminal of that name).
"""

from __future__ import annotations

import socket
import ssl
import time
import urllib.request
from collections.abc import Callable

import paho.mqtt.client as mqtt
import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from paho.mqtt.enums import CallbackAPIVersion

from hw_sim.broker import MosquittoBroker
from hw_sim.club.https import MAX_BODY_BYTES, ClubHttpServer, Request, Response
from tests.fixtures.club import ClubPki
from tests.fixtures.hostile import PeakRss

SILENT = 20


def whoami(req: Request) -> Response:
    return Response.json({"cn": req.client_cn})


def get(url: str, ctx: ssl.SSLContext, timeout: float = 3.0) -> bytes:
    with urllib.request.urlopen(url, context=ctx, timeout=timeout) as resp:
        return bytes(resp.read())


def test_silent_connections_do_not_stall_the_server(
        club_pki: ClubPki, club_https: Callable[..., ClubHttpServer]) -> None:
    server = club_https()
    server.add_route("GET", "/whoami", whoami)
    files = club_pki.terminal_cert("T-0001")
    ctx = ssl.create_default_context(cafile=str(club_pki.ca.cert_file))
    ctx.load_cert_chain(str(files.cert), str(files.key))
    silent = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(SILENT)]
    try:
        started = time.monotonic()
        body = get(f"{server.url}/whoami", ctx)
        took = time.monotonic() - started
    finally:
        for s in silent:
            s.close()
    print(f"figure: {SILENT} silent TCP connections open; a terminal's request answered in "
          f"{took * 1000:.0f} ms")
    assert body == b'{"cn": "T-0001"}'
    assert took < 2.0


@pytest.mark.parametrize("length", [str(MAX_BODY_BYTES + 1), str(10**12), "-5", "many"])
def test_a_huge_announced_body_is_refused_unread(
        club_pki: ClubPki, club_https: Callable[..., ClubHttpServer], length: str) -> None:
    server = club_https()
    server.add_route("POST", "/v1/enrolment", whoami, client_cert=False)
    ctx = ssl.create_default_context(cafile=str(club_pki.ca.cert_file))
    rss = PeakRss()
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw, \
            ctx.wrap_socket(raw, server_hostname="localhost") as tls:
        tls.sendall(f"POST /v1/enrolment HTTP/1.1\r\nHost: localhost\r\n"
                    f"Content-Length: {length}\r\n\r\n".encode() + b"x" * 1024)
        reply = b""
        while chunk := tls.recv(65536):
            reply += chunk
    took = time.monotonic() - started
    grew = rss.stop()
    print(f"figure: Content-Length {length}: answered {reply.split(b' ')[1].decode()} in "
          f"{took * 1000:.0f} ms; RSS +{grew / 2**20:.1f} MiB")
    assert reply.startswith(b"HTTP/1.0 413 ")
    assert b'"error": "body_too_large"' in reply
    assert took < 2.0 and grew < 16 * 2**20


def test_a_server_certificate_is_no_client_certificate_at_the_https_server(
        club_pki: ClubPki, club_https: Callable[..., ClubHttpServer]) -> None:
    cert = x509.load_pem_x509_certificate(club_pki.server.cert.read_bytes())
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]
    server = club_https()
    server.add_route("GET", "/whoami", whoami)
    ctx = ssl.create_default_context(cafile=str(club_pki.ca.cert_file))
    ctx.load_cert_chain(str(club_pki.server.cert), str(club_pki.server.key))
    with pytest.raises(OSError):  # the handshake is refused (ssl error or reset)
        get(f"{server.url}/whoami", ctx)
    print("figure: server certificate as a client at the club HTTPS server: refused")


@pytest.mark.needs_mosquitto
def test_a_server_certificate_cannot_log_in_to_the_broker(
        club_pki: ClubPki, mosquitto: MosquittoBroker) -> None:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="localhost", protocol=mqtt.MQTTv5)
    ctx = ssl.create_default_context(cafile=str(club_pki.ca.cert_file))
    ctx.load_cert_chain(str(club_pki.server.cert), str(club_pki.server.key))
    c.tls_set_context(ctx)
    connected: list[bool] = []
    c.on_connect = lambda cl, u, flags, rc, p: connected.append(not rc.is_failure)
    try:
        c.connect("localhost", mosquitto.tls_port or 0)
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and not connected:
            c.loop(0.1)
    except (OSError, ssl.SSLError):
        pass
    finally:
        c.disconnect()
    print(f"figure: server certificate as a client at the broker: connected={any(connected)}")
    assert not any(connected)
