"""The club's enrolment service on the club's HTTPS server, routed in-process
(``ClubHttpServer.handle``): codes, CSR checks, renewal rights, JSON errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519

from hw_sim.broker import club_account
from hw_sim.club.enrolment import EnrolmentService
from hw_sim.club.https import ClubHttpServer, Response
from hw_sim.club.pki import ClubCA
from provisioning.crypto import generate_device_key, make_csr
from tests.fixtures.club import ClubPki


def service(ca: ClubCA, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
            ) -> EnrolmentService:
    return EnrolmentService(ca, club_id="c", pan_key=b"p" * 32,
                            rules_keys={"k": ed25519.Ed25519PrivateKey.generate().public_key()},
                            broker_url="mqtts://b:8883", central_url="https://c", clock=clock)


def post(server: ClubHttpServer, path: str, body: Any, client_cn: str | None = None
         ) -> Response:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return server.handle("POST", path, body=raw, client_cn=client_cn)


def error(resp: Response) -> tuple[int, str]:
    assert isinstance(resp.body, bytes)
    return resp.status, json.loads(resp.body)["error"]


def test_the_routes_need_no_client_certificate_and_renewal_checks_the_caller(
        club_pki: ClubPki, club_https: Callable[..., ClubHttpServer]) -> None:
    svc = service(club_pki.ca)
    server = club_https()
    svc.mount(server)
    assert [r.client_cert for r in server.routes] == [False] * 4
    pem = server.handle("GET", "/v1/ca")
    assert pem.body == club_pki.ca.cert_pem
    assert pem.headers["Content-Type"] == "application/x-pem-file"

    code = svc.create_code("T-1", "M-1")
    assert error(post(server, "/v1/enrolment/lookup", {"code": "NOPE"})) == (404, "code_unknown")
    answer = post(server, "/v1/enrolment",
                  {"code": code, "csr": make_csr(generate_device_key(), "T-1").decode()})
    assert answer.status == 200 and answer.headers["Content-Type"] == "application/json"
    assert isinstance(answer.body, bytes)
    cert = x509.load_pem_x509_certificate(json.loads(answer.body)["certificate"].encode())
    cert.verify_directly_issued_by(club_pki.ca.cert)

    csr = {"csr": make_csr(generate_device_key(), "T-1").decode()}
    assert error(post(server, "/v1/terminals/T-1/certificate", csr)) == (
        401, "client_cert_required")
    assert error(post(server, "/v1/terminals/T-1/certificate", csr, client_cn="T-2")) == (
        403, "forbidden")
    # The club back end's own account may not renew itself into a fresh key.
    account = club_account("c")
    club_csr = {"csr": make_csr(generate_device_key(), account).decode()}
    assert error(post(server, f"/v1/terminals/{account}/certificate", club_csr,
                      client_cn=account)) == (403, "forbidden")
    assert len(svc.issued) == 1


def test_csr_checks_and_expiry_by_the_service_clock(
        club_pki: ClubPki, club_https: Callable[..., ClubHttpServer]) -> None:
    now = [datetime(2026, 11, 22, tzinfo=UTC)]
    svc = service(club_pki.ca, clock=lambda: now[0])
    server = club_https()
    svc.mount(server)
    code = svc.create_code("T-1", "M-1", ttl_s=3600)
    key = generate_device_key()
    assert error(post(server, "/v1/enrolment", {"code": code, "csr": "junk"})) == (
        400, "csr_invalid")
    assert error(post(server, "/v1/enrolment",
                      {"code": code, "csr": make_csr(key, "T-9").decode()})) == (
        400, "csr_mismatch")
    assert error(post(server, "/v1/enrolment", b"{")) == (400, "bad_request")
    now[0] += timedelta(hours=2)
    assert error(post(server, "/v1/enrolment",
                      {"code": code, "csr": make_csr(key, "T-1").decode()})) == (
        410, "code_expired")
    assert error(server.handle("GET", "/v1/enrolment")) == (405, "method_not_allowed")
    assert error(server.handle("GET", "/nowhere")) == (404, "not_found")
