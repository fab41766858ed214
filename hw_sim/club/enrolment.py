"""The club's enrolment routes, mounted on the simulated club's HTTPS server.

The club side of the enrolment protocol in ``docs/provisioning.md``:
:class:`EnrolmentService` keeps one-time enrolment codes with expiry and serves
``GET /v1/ca``, ``POST /v1/enrolment/lookup``, ``POST /v1/enrolment`` and
``POST /v1/terminals/{id}/certificate`` (renewal, mutual TLS). It signs with the
club CA (:class:`hw_sim.club.pki.ClubCA`) and is mounted with :meth:`EnrolmentService.mount`
on a :class:`hw_sim.club.https.ClubHttpServer` — the simulated club's own, or one
started for it alone (:func:`serve_enrolment`).
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID

from hw_sim.broker import is_terminal_id
from hw_sim.club.https import ClubHttpServer, Handler, HttpError, Request, Response
from hw_sim.club.pki import LOCAL_HOSTS, ClubCA
from provisioning.crypto import seal_for_device

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud over the phone


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class EnrolmentCode:
    """One enrolment code the club handed to a technician."""

    terminal_id: str
    merchant_id: str
    expires_at: datetime
    profile: str | None = None
    member_scope: str | None = None  # the terminal's member scope (None: club-wide, v1)
    used_at: datetime | None = None
    used_by_key: bytes | None = None  # DER public key of the device that used it
    answer: dict[str, Any] | None = None  # kept to answer a retry by the same device


def normalise_code(code: str) -> str:
    """Codes compare without dashes, spaces or case (they are read aloud and typed)."""
    return "".join(c for c in code.upper() if c.isalnum())


def _code_digest(code: str) -> str:
    # The club keeps only a hash of each code, as it would a password.
    return hashlib.sha256(normalise_code(code).encode()).hexdigest()


class EnrolmentService:
    """The club's enrolment logic, independent of the HTTP server it is mounted on."""

    def __init__(self, ca: ClubCA, *, club_id: str, pan_key: bytes,
                 rules_keys: dict[str, ed25519.Ed25519PublicKey], broker_url: str,
                 central_url: str | None = None, default_country_code: str = "98",
                 cert_days: float = 365, clock: Callable[[], datetime] = _now):
        self.ca = ca
        self.club_id = club_id
        self.pan_key = pan_key
        self.rules_keys = rules_keys
        self.broker_url = broker_url
        self.central_url = central_url
        self.default_country_code = default_country_code
        self.cert_days = cert_days
        self.clock = clock
        self._codes: dict[str, EnrolmentCode] = {}
        self._lock = threading.Lock()
        self.issued: list[x509.Certificate] = []
        self.requests: list[Request] = []

    def create_code(self, terminal_id: str, merchant_id: str, *, ttl_s: float = 86400,
                    profile: str | None = None, member_scope: str | None = None) -> str:
        """A new one-time code for ``terminal_id``, valid for ``ttl_s`` seconds."""
        if not is_terminal_id(terminal_id):
            raise ValueError(f"{terminal_id!r} cannot be a terminal id: letters, digits, "
                             f"'.', '_' and '-' only, 1-128, first a letter or digit")
        raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(12))
        code = f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"
        with self._lock:
            self._codes[_code_digest(code)] = EnrolmentCode(
                terminal_id=terminal_id, merchant_id=merchant_id, profile=profile,
                member_scope=member_scope, expires_at=self.clock() + timedelta(seconds=ttl_s))
        return code

    def routes(self) -> list[tuple[str, str, Handler]]:
        """``(method, path_regex, handler)`` for ``add_route``."""
        return [
            ("GET", r"/v1/ca", self.get_ca),
            ("POST", r"/v1/enrolment/lookup", self.lookup),
            ("POST", r"/v1/enrolment", self.enrol),
            ("POST", r"/v1/terminals/(?P<terminal_id>[^/]+)/certificate", self.renew),
        ]

    def mount(self, server: ClubHttpServer) -> None:
        """Add the routes to ``server``. None demands a client certificate: enrolling
        terminals have none, and the renewal route checks ``client_cn`` itself."""
        for method, regex, handler in self.routes():
            server.add_route(method, regex, handler, client_cert=False)

    # -- handlers

    def get_ca(self, request: Request) -> Response:
        """The club CA certificate (PEM), for the terminal to check against its pin."""
        return Response(200, self.ca.cert_pem, {"Content-Type": "application/x-pem-file"})

    def _code(self, body: Any) -> EnrolmentCode:
        if not isinstance(body, dict) or not isinstance(body.get("code"), str):
            raise HttpError(400, "bad_request", "the request needs a 'code' string")
        record = self._codes.get(_code_digest(body["code"]))
        if record is None:
            raise HttpError(404, "code_unknown", "this enrolment code is not known to the club")
        return record

    def _check_usable(self, record: EnrolmentCode) -> None:
        if record.used_at is not None:
            raise HttpError(409, "code_used",
                            f"this enrolment code was already used at {record.used_at.isoformat()}")
        if self.clock() >= record.expires_at:
            raise HttpError(410, "code_expired",
                            f"this enrolment code expired at {record.expires_at.isoformat()}")

    @staticmethod
    def _same_device_retry(record: EnrolmentCode, public_key_pem: Any) -> bool:
        """The device that used this code asks again (its answer was lost)."""
        if record.used_by_key is None or not isinstance(public_key_pem, str):
            return False
        try:
            key = serialization.load_pem_public_key(public_key_pem.encode())
        except ValueError:
            return False
        der = key.public_bytes(serialization.Encoding.DER,
                               serialization.PublicFormat.SubjectPublicKeyInfo)
        return der == record.used_by_key

    def lookup(self, request: Request) -> Response:
        """Which terminal a code is for; does not use the code up.

        A used code is still answered to the device that used it (``public_key``
        in the request equals the key it enrolled), so it can retry a lost answer.
        """
        self.requests.append(request)
        body = request.json()
        with self._lock:
            record = self._code(body)
            if not self._same_device_retry(record, body.get("public_key")):
                self._check_usable(record)
            return Response.json({
                "terminal_id": record.terminal_id, "club_id": self.club_id,
                "merchant_id": record.merchant_id, "profile": record.profile,
                "expires_at": record.expires_at.isoformat(),
            })

    def _parse_csr(self, pem: Any) -> x509.CertificateSigningRequest:
        if not isinstance(pem, str):
            raise HttpError(400, "bad_request", "the request needs a 'csr' PEM string")
        try:
            csr = x509.load_pem_x509_csr(pem.encode())
        except ValueError:
            raise HttpError(400, "csr_invalid",
                            "the CSR is not a PEM certificate request") from None
        if not csr.is_signature_valid:
            raise HttpError(400, "csr_invalid", "the CSR signature does not verify")
        key = csr.public_key()
        if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
            raise HttpError(400, "csr_invalid", "the device key must be ECDSA P-256")
        return csr

    @staticmethod
    def _csr_cn(csr: x509.CertificateSigningRequest) -> str | None:
        cns = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        return str(cns[0].value) if len(cns) == 1 else None

    def enrol(self, request: Request) -> Response:
        """Use a code: sign the CSR and answer the terminal's configuration bundle."""
        self.requests.append(request)
        body = request.json()
        with self._lock:
            record = self._code(body)
            csr = self._parse_csr(body.get("csr"))
            key = csr.public_key()
            assert isinstance(key, ec.EllipticCurvePublicKey)
            der = key.public_bytes(serialization.Encoding.DER,
                                   serialization.PublicFormat.SubjectPublicKeyInfo)
            if record.used_at is not None and record.used_by_key == der and record.answer:
                # The same device retrying after a lost answer: say the same thing again,
                # with the pan_key sealed afresh.
                answer = dict(record.answer)
                answer["pan_key"] = seal_for_device(key, self.pan_key, record.terminal_id).to_json()
                return Response.json(answer)
            self._check_usable(record)
            if self._csr_cn(csr) != record.terminal_id:
                raise HttpError(400, "csr_mismatch",
                                f"the CSR must have CN={record.terminal_id} (from the lookup)")
            cert = self.ca.sign_terminal(record.terminal_id, csr.public_key(),
                                         days=self.cert_days)
            self.issued.append(cert)
            answer = {
                "terminal_id": record.terminal_id, "club_id": self.club_id,
                "merchant_id": record.merchant_id,
                "certificate": cert.public_bytes(serialization.Encoding.PEM).decode(),
                "ca_certificate": self.ca.cert_pem.decode(),
                "broker_url": self.broker_url,
                "central_url": self.central_url,
                "default_country_code": self.default_country_code,
                "rules_keys": {
                    key_id: pub.public_bytes(serialization.Encoding.PEM,
                                             serialization.PublicFormat.SubjectPublicKeyInfo).decode()
                    for key_id, pub in self.rules_keys.items()
                },
                "profile": record.profile,
            }
            if record.member_scope is not None:  # 1.2: docs/protocol/club.md, "Member scopes"
                answer["member_scope"] = record.member_scope
            record.used_at = self.clock()
            record.used_by_key = der
            record.answer = answer
            sealed = seal_for_device(key, self.pan_key, record.terminal_id)
            return Response.json({**answer, "pan_key": sealed.to_json()})

    def renew(self, request: Request) -> Response:
        """A new certificate for a new key, asked with the current certificate (mTLS)."""
        self.requests.append(request)
        terminal_id = request.match.group("terminal_id")
        if request.client_cn is None:
            raise HttpError(401, "client_cert_required",
                            "renewal needs the terminal's current client certificate")
        if request.client_cn != terminal_id:
            raise HttpError(403, "forbidden",
                            f"certificate of {request.client_cn} cannot renew {terminal_id}")
        body = request.json()
        if not isinstance(body, dict):
            raise HttpError(400, "bad_request", "the body must be a JSON object")
        csr = self._parse_csr(body.get("csr"))
        if self._csr_cn(csr) != terminal_id:
            raise HttpError(400, "csr_mismatch", f"the CSR must have CN={terminal_id}")
        if not is_terminal_id(terminal_id):
            raise HttpError(403, "forbidden", f"{terminal_id!r} is not a terminal id")
        cert = self.ca.sign_terminal(terminal_id, csr.public_key(), days=self.cert_days)
        self.issued.append(cert)
        return Response.json({
            "certificate": cert.public_bytes(serialization.Encoding.PEM).decode(),
            "ca_certificate": self.ca.cert_pem.decode(),
            "not_after": cert.not_valid_after_utc.isoformat(),
        })


def serve_enrolment(service: EnrolmentService, *, tls: tuple[Path, Path, Path]) -> ClubHttpServer:
    """Start a club HTTPS server with only the enrolment routes mounted.

    ``tls`` is ``(ca_file, cert_file, key_file)`` as :class:`ClubHttpServer` takes it.
    """
    server = ClubHttpServer(tls=tls)
    service.mount(server)
    if service.central_url is None:
        service.central_url = server.url
    return server.start()


def main(argv: list[str] | None = None) -> int:
    """``python -m hw_sim.club.enrolment``: a standalone enrolment server for trying
    ``clubterm provision enrol`` by hand (prints the URL, CA fingerprint and codes)."""
    import argparse
    import os
    import tempfile
    import time

    parser = argparse.ArgumentParser(prog="python -m hw_sim.club.enrolment",
                                     description=main.__doc__)
    parser.add_argument("--club", default="demo-club")
    parser.add_argument("--merchant", default="M-7")
    parser.add_argument("--terminal", action="append", default=None,
                        help="terminal id to make a code for (repeatable; default T-0001)")
    parser.add_argument("--broker-url", default="mqtts://localhost:8883")
    parser.add_argument("--pki", type=Path, default=None,
                        help="club CA folder, made on first use (default: a new temporary one)")
    parser.add_argument("--ttl", type=float, default=3600, help="code lifetime in seconds")
    parser.add_argument("--member-scope", default=None,
                        help='the terminals\' member scope: "merchant" or "group:<id>" '
                             "(default: none, club-wide as a v1 club)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="clubterm-enrolment-") as tmp:
        pki_dir = args.pki or Path(tmp)
        ca = ClubCA.load_or_create(pki_dir)
        server_files = ca.issue(pki_dir, "localhost", server=True, hosts=LOCAL_HOSTS)
        service = EnrolmentService(ca, club_id=args.club, pan_key=os.urandom(32),
                                   rules_keys={f"{args.club}-1":
                                               ed25519.Ed25519PrivateKey.generate().public_key()},
                                   broker_url=args.broker_url)
        server = serve_enrolment(service, tls=(ca.cert_file, server_files.cert,
                                               server_files.key))
        print(f"club URL:        {server.url}")
        print(f"CA fingerprint:  {ca.fingerprint}")
        for terminal in args.terminal or ["T-0001"]:
            code = service.create_code(terminal, args.merchant, ttl_s=args.ttl,
                                       member_scope=args.member_scope)
            print(f"code for {terminal}: {code}")
        print("Ctrl-C to stop.", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
