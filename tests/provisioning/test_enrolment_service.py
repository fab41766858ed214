"""The club's enrolment service on its own: codes, CSR checks, and mounting it on
a server whose handlers take one request (the simulated club's ClubHttpServer)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519

from hw_sim.club.enrolment import ClubCA, EnrolmentService, HttpsServer, Request
from provisioning.crypto import generate_device_key, make_csr


class OneArgumentServer:
    """The shape of hw_sim.club.https.ClubHttpServer.add_route."""

    def __init__(self) -> None:
        self.routes: list[tuple[str, re.Pattern[str], Any, bool]] = []

    def add_route(self, method: str, path_regex: str, handler: Any, *,
                  client_cert: bool = True) -> None:
        self.routes.append((method, re.compile(path_regex), handler, client_cert))

    def call(self, method: str, path: str, body: dict | None = None,
             client_cn: str | None = None) -> Any:
        for m, pattern, handler, _ in self.routes:
            match = pattern.fullmatch(path)
            if match and m == method:
                req = SimpleNamespace(method=method, path=path, query={}, headers={},
                                      body=json.dumps(body).encode() if body else b"",
                                      match=match, client_cn=client_cn)
                return handler(req)
        raise AssertionError(f"no route {method} {path}")


def service(ca: Any, clock=lambda: datetime.now(UTC)) -> EnrolmentService:
    return EnrolmentService(ca, club_id="c", pan_key=b"p" * 32,
                            rules_keys={"k": ed25519.Ed25519PrivateKey.generate().public_key()},
                            broker_url="mqtts://b:8883", central_url="https://c", clock=clock)


def test_mounts_on_a_one_argument_server_with_any_ca_object() -> None:
    real = ClubCA.create("c")
    ca = SimpleNamespace(cert=real.cert, key=real.key)  # like hw_sim.club.pki.ClubCA
    svc = service(ca)
    server = OneArgumentServer()
    svc.mount(server)
    assert all(client_cert is False for *_, client_cert in server.routes)
    pem = server.call("GET", "/v1/ca")
    assert pem.body == real.cert_pem and pem.headers["Content-Type"] == "application/x-pem-file"

    code = svc.create_code("T-1", "M-1")
    missing = server.call("POST", "/v1/enrolment/lookup", {"code": "NOPE"})
    assert missing.status == 404 and json.loads(missing.body)["error"] == "code_unknown"
    key = generate_device_key()
    answer = server.call("POST", "/v1/enrolment",
                         {"code": code, "csr": make_csr(key, "T-1").decode()})
    assert answer.status == 200 and answer.headers["Content-Type"] == "application/json"
    cert = x509.load_pem_x509_certificate(json.loads(answer.body)["certificate"].encode())
    cert.verify_directly_issued_by(real.cert)

    renew = server.call("POST", "/v1/terminals/T-1/certificate",
                        {"csr": make_csr(generate_device_key(), "T-1").decode()})
    assert renew.status == 401
    renew = server.call("POST", "/v1/terminals/T-1/certificate",
                        {"csr": make_csr(generate_device_key(), "T-1").decode()}, client_cn="T-2")
    assert renew.status == 403


def test_csr_checks_and_expiry_by_the_service_clock() -> None:
    now = [datetime(2026, 11, 22, tzinfo=UTC)]
    svc = service(ClubCA.create("c"), clock=lambda: now[0])
    server = HttpsServer(svc.ca)
    svc.mount(server)
    try:
        code = svc.create_code("T-1", "M-1", ttl_s=3600)

        def post(path: str, body: dict) -> tuple[int, dict]:
            resp = server.handle(Request("POST", path, {}, {}, json.dumps(body).encode()))
            return resp.status, json.loads(resp.body)

        key = generate_device_key()
        assert post("/v1/enrolment", {"code": code, "csr": "junk"})[1]["error"] == "csr_invalid"
        status, body = post("/v1/enrolment", {"code": code, "csr": make_csr(key, "T-9").decode()})
        assert (status, body["error"]) == (400, "csr_mismatch")
        assert server.handle(Request("POST", "/v1/enrolment", {}, {}, b"{")).status == 400
        now[0] += timedelta(hours=2)
        status, body = post("/v1/enrolment", {"code": code, "csr": make_csr(key, "T-1").decode()})
        assert (status, body["error"]) == (410, "code_expired")
        assert server.handle(Request("GET", "/v1/enrolment", {}, {}, b"")).status == 405
        assert server.handle(Request("GET", "/nowhere", {}, {}, b"")).status == 404
    finally:
        server.stop()
