"""The club's enrolment endpoint, as a real HTTPS server.

A faithful club side of the enrolment protocol in ``docs/provisioning.md``:

* :class:`ClubCA` — the club's certificate authority (made with ``cryptography``): it
  signs the HTTPS server certificate, the broker certificate and terminal CSRs.
* :class:`EnrolmentService` — one-time enrolment codes with expiry, the routes
  ``GET /v1/ca``, ``POST /v1/enrolment/lookup``, ``POST /v1/enrolment`` and
  ``POST /v1/terminals/{id}/certificate`` (renewal, mutual TLS). Its
  :meth:`EnrolmentService.routes` are ``(method, path_regex, handler)`` triples so the
  simulated club's HTTPS server can mount them with ``add_route``.
* :class:`HttpsServer` — a small threaded HTTPS server with ``add_route`` of the same
  shape, so the enrolment endpoint runs on its own in tests.

Handlers take a :class:`Request` and the path's ``re.Match`` and return a
:class:`Response`; mounting them on another server needs only a thin adapter.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
import secrets
import ssl
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from agent.config import TERMINAL_ID
from hw_sim.broker import is_terminal_id
from provisioning.crypto import cert_fingerprint, seal_for_device

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud over the phone


def _now() -> datetime:
    return datetime.now(UTC)


# --------------------------------------------------------------------------- CA


def issue_certificate(ca: Any, subject_cn: str, public_key: Any, *, days: float,
                      server_hosts: list[str] | None, client: bool,
                      not_before: datetime | None = None) -> x509.Certificate:
    """A leaf certificate signed by ``ca`` (any object with ``.cert`` and ``.key``)."""
    now = _now() if not_before is None else not_before
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject_cn)]))
        .issuer_name(ca.cert.subject).public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
                       critical=False)
    )
    usages = [ExtendedKeyUsageOID.CLIENT_AUTH] if client else []
    if server_hosts:
        usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
        alt: list[x509.GeneralName] = []
        for host in server_hosts:
            try:
                alt.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                alt.append(x509.DNSName(host))
        builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
    builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    return builder.sign(ca.key, hashes.SHA256())



class ClubCA:
    """The club's certificate authority (a P-256 key and a self-signed CA cert)."""

    def __init__(self, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate):
        self.key = key
        self.cert = cert

    @classmethod
    def create(cls, club_id: str, *, days: int = 3650) -> ClubCA:
        """A new CA named after the club."""
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{club_id} club CA")])
        now = _now()
        cert = (
            x509.CertificateBuilder()
            .subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(key, cert)

    @property
    def cert_pem(self) -> bytes:
        """The CA certificate in PEM."""
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def fingerprint(self) -> str:
        """SHA-256 fingerprint a technician pins (``--ca-fingerprint``)."""
        return cert_fingerprint(self.cert)

    def _issue(self, subject_cn: str, public_key: Any, *, days: float,
               server_hosts: list[str] | None, client: bool,
               not_before: datetime | None = None) -> x509.Certificate:
        return issue_certificate(self, subject_cn, public_key, days=days,
                                 server_hosts=server_hosts, client=client, not_before=not_before)

    def issue_server(self, hosts: list[str], *, days: float = 365) -> tuple[bytes, bytes]:
        """(cert PEM, key PEM) for a server reachable under ``hosts`` (HTTPS, broker)."""
        key = ec.generate_private_key(ec.SECP256R1())
        cert = self._issue(hosts[0], key.public_key(), days=days, server_hosts=hosts, client=False)
        return (cert.public_bytes(serialization.Encoding.PEM),
                key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))

    def issue_client(self, cn: str, *, days: float = 365) -> tuple[bytes, bytes]:
        """(cert PEM, key PEM) for a client such as the club's own publisher."""
        key = ec.generate_private_key(ec.SECP256R1())
        cert = self._issue(cn, key.public_key(), days=days, server_hosts=None, client=True)
        return (cert.public_bytes(serialization.Encoding.PEM),
                key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))

    def sign_csr(self, csr: x509.CertificateSigningRequest, terminal_id: str, *, days: float,
                 not_before: datetime | None = None) -> x509.Certificate:
        """A client certificate for a terminal (CN = ``terminal_id``).

        Refuses an id that is not a terminal id (``hw_sim.broker.TERMINAL_ID``): the
        broker trusts the CN as user name and client id, so a certificate with the
        club account's name would carry the club's rights.
        """
        if not is_terminal_id(terminal_id):
            raise ValueError(f"{terminal_id!r} is not a terminal id ({TERMINAL_ID.pattern})")
        return self._issue(terminal_id, csr.public_key(), days=days, server_hosts=None,
                           client=True, not_before=not_before)

    def write(self, folder: Path) -> Path:
        """Write ``ca.crt`` into ``folder`` (for brokers and clients) and return its path."""
        path = folder / "ca.crt"
        path.write_bytes(self.cert_pem)
        return path


# --------------------------------------------------------------------------- HTTP plumbing


@dataclass(frozen=True)
class Request:
    """One HTTP request as the handlers see it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    client_cn: str | None = None  # CN of a verified client certificate (mutual TLS)

    def json(self) -> Any:
        """The body as JSON, or raise :class:`HttpError` 400."""
        return json_body(self)


@dataclass
class Response:
    """What a handler answers."""

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, obj: Any) -> Response:
        """A JSON answer."""
        return cls(status, json.dumps(obj).encode())


class HttpError(Exception):
    """Raised by a handler to answer ``{"error": code, "message": …}``."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


Handler = Callable[[Request, "re.Match[str]"], Response]


class HttpsServer:
    """A threaded HTTPS server with ``add_route(method, path_regex, handler)``.

    The server certificate is issued by ``ca`` for 127.0.0.1 and localhost. A client
    certificate is optional; when one is presented it must chain to the CA, and its
    CN reaches the handler as ``Request.client_cn``. ``tls_ca`` lets a test serve a
    certificate from another CA (a man in the middle).
    """

    def __init__(self, ca: ClubCA, *, host: str = "127.0.0.1", port: int = 0,
                 tls_ca: ClubCA | None = None):
        self.ca = ca
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self._tmp = tempfile.TemporaryDirectory(prefix="clubterm-https-")
        folder = Path(self._tmp.name)
        cert_pem, key_pem = (tls_ca or ca).issue_server(["127.0.0.1", "localhost"])
        (folder / "server.crt").write_bytes(cert_pem)
        (folder / "server.key").write_bytes(key_pem)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(folder / "server.crt", folder / "server.key")
        ctx.load_verify_locations(cadata=ca.cert_pem.decode())
        ctx.verify_mode = ssl.CERT_OPTIONAL
        self.ssl_context = ctx
        server = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet in tests

            def _serve(self) -> None:
                server._dispatch(self)

            do_GET = _serve
            do_POST = _serve
            do_PUT = _serve
            do_DELETE = _serve

        self._httpd = ThreadingHTTPServer((host, port), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.socket = ctx.wrap_socket(self._httpd.socket, server_side=True,
                                             do_handshake_on_connect=False)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The TCP port it listens on."""
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """``https://127.0.0.1:PORT``."""
        return f"https://127.0.0.1:{self.port}"

    def add_route(self, method: str, path_regex: str, handler: Handler) -> None:
        """Serve ``method`` requests whose path fully matches ``path_regex``."""
        self.routes.append((method.upper(), re.compile(path_regex), handler))

    def start(self) -> HttpsServer:
        """Serve in a background thread."""
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="club-https",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port."""
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(5)
            self._thread = None
        self._httpd.server_close()
        self._tmp.cleanup()

    def __enter__(self) -> HttpsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _dispatch(self, h: BaseHTTPRequestHandler) -> None:
        split = urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        client_cn = None
        peer = h.connection.getpeercert() if isinstance(h.connection, ssl.SSLSocket) else None
        if peer:
            # getpeercert() gives the subject as a tuple of RDNs of (name, value) pairs.
            for rdn in peer.get("subject", ()):
                for pair in rdn:
                    if pair[0] == "commonName":
                        client_cn = str(pair[1])
        request = Request(method=h.command, path=split.path, query=parse_qs(split.query),
                          headers={k.lower(): v for k, v in h.headers.items()}, body=body,
                          client_cn=client_cn)
        response = self.handle(request)
        h.send_response(response.status)
        h.send_header("Content-Type", response.content_type)
        h.send_header("Content-Length", str(len(response.body)))
        for key, value in response.headers.items():
            h.send_header(key, value)
        h.end_headers()
        h.wfile.write(response.body)

    def handle(self, request: Request) -> Response:
        """Route one request (also usable without the socket, in unit tests)."""
        allowed = False
        for method, pattern, handler in self.routes:
            match = pattern.fullmatch(request.path)
            if match is None:
                continue
            allowed = True
            if method != request.method:
                continue
            try:
                return handler(request, match)
            except HttpError as exc:
                return Response.json(exc.status, {"error": exc.code, "message": exc.message})
        if allowed:
            return Response.json(405, {"error": "method_not_allowed",
                                       "message": "method not allowed"})
        return Response.json(404, {"error": "not_found", "message": f"no route for {request.path}"})


# --------------------------------------------------------------------------- enrolment


@dataclass
class EnrolmentCode:
    """One enrolment code the club handed to a technician."""

    terminal_id: str
    merchant_id: str
    expires_at: datetime
    profile: str | None = None
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

    def __init__(self, ca: Any, *, club_id: str, pan_key: bytes,
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
                    profile: str | None = None) -> str:
        """A new one-time code for ``terminal_id``, valid for ``ttl_s`` seconds."""
        if not is_terminal_id(terminal_id):
            raise ValueError(f"{terminal_id!r} cannot be a terminal id: letters, digits, "
                             f"'.', '_' and '-' only, 1-128, first a letter or digit")
        raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(12))
        code = f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"
        with self._lock:
            self._codes[_code_digest(code)] = EnrolmentCode(
                terminal_id=terminal_id, merchant_id=merchant_id, profile=profile,
                expires_at=self.clock() + timedelta(seconds=ttl_s))
        return code

    def routes(self) -> list[tuple[str, str, Handler]]:
        """``(method, path_regex, handler)`` for ``add_route``."""
        return [
            ("GET", r"/v1/ca", self.get_ca),
            ("POST", r"/v1/enrolment/lookup", self.lookup),
            ("POST", r"/v1/enrolment", self.enrol),
            ("POST", r"/v1/terminals/(?P<terminal_id>[^/]+)/certificate", self.renew),
        ]

    def _ca_pem(self) -> bytes:
        return bytes(self.ca.cert.public_bytes(serialization.Encoding.PEM))

    def mount(self, server: Any) -> None:
        """Add the routes to a server with ``add_route(method, path_regex, handler)``.

        On :class:`HttpsServer` the handlers go in as they are. On a server whose
        handlers take one request carrying ``.match`` and which asks per route for a
        client certificate (the simulated club's ``ClubHttpServer``), each handler is
        wrapped, and no route demands a certificate: enrolling terminals have none,
        and the renewal route checks ``client_cn`` itself.
        """
        for method, regex, handler in self.routes():
            if isinstance(server, HttpsServer):
                server.add_route(method, regex, handler)
            else:
                server.add_route(method, regex, _one_argument(handler), client_cert=False)

    # -- handlers

    def get_ca(self, request: Request, match: re.Match[str]) -> Response:
        """The club CA certificate (PEM), for the terminal to check against its pin."""
        return Response(200, self._ca_pem(), content_type="application/x-pem-file")

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

    def lookup(self, request: Request, match: re.Match[str]) -> Response:
        """Which terminal a code is for; does not use the code up.

        A used code is still answered to the device that used it (``public_key``
        in the request equals the key it enrolled), so it can retry a lost answer.
        """
        self.requests.append(request)
        body = json_body(request)
        with self._lock:
            record = self._code(body)
            if not self._same_device_retry(record, body.get("public_key")):
                self._check_usable(record)
            return Response.json(200, {
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

    def enrol(self, request: Request, match: re.Match[str]) -> Response:
        """Use a code: sign the CSR and answer the terminal's configuration bundle."""
        self.requests.append(request)
        body = json_body(request)
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
                return Response.json(200, answer)
            self._check_usable(record)
            if self._csr_cn(csr) != record.terminal_id:
                raise HttpError(400, "csr_mismatch",
                                f"the CSR must have CN={record.terminal_id} (from the lookup)")
            cert = issue_certificate(self.ca, record.terminal_id, csr.public_key(),
                                     days=self.cert_days, server_hosts=None, client=True)
            self.issued.append(cert)
            answer = {
                "terminal_id": record.terminal_id, "club_id": self.club_id,
                "merchant_id": record.merchant_id,
                "certificate": cert.public_bytes(serialization.Encoding.PEM).decode(),
                "ca_certificate": self._ca_pem().decode(),
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
            record.used_at = self.clock()
            record.used_by_key = der
            record.answer = answer
            sealed = seal_for_device(key, self.pan_key, record.terminal_id)
            return Response.json(200, {**answer, "pan_key": sealed.to_json()})

    def renew(self, request: Request, match: re.Match[str]) -> Response:
        """A new certificate for a new key, asked with the current certificate (mTLS)."""
        self.requests.append(request)
        terminal_id = match.group("terminal_id")
        if request.client_cn is None:
            raise HttpError(401, "client_cert_required",
                            "renewal needs the terminal's current client certificate")
        if request.client_cn != terminal_id:
            raise HttpError(403, "forbidden",
                            f"certificate of {request.client_cn} cannot renew {terminal_id}")
        body = json_body(request)
        if not isinstance(body, dict):
            raise HttpError(400, "bad_request", "the body must be a JSON object")
        csr = self._parse_csr(body.get("csr"))
        if self._csr_cn(csr) != terminal_id:
            raise HttpError(400, "csr_mismatch", f"the CSR must have CN={terminal_id}")
        cert = issue_certificate(self.ca, terminal_id, csr.public_key(), days=self.cert_days,
                                 server_hosts=None, client=True)
        self.issued.append(cert)
        return Response.json(200, {
            "certificate": cert.public_bytes(serialization.Encoding.PEM).decode(),
            "ca_certificate": self._ca_pem().decode(),
            "not_after": cert.not_valid_after_utc.isoformat(),
        })


def json_body(request: Any) -> Any:
    """The request body as JSON, or :class:`HttpError` 400 (any request with ``.body``)."""
    try:
        return json.loads(request.body or b"null")
    except (ValueError, UnicodeDecodeError):
        raise HttpError(400, "bad_request", "the body is not JSON") from None


def _one_argument(handler: Handler) -> Callable[[Any], Response]:
    """Adapt a ``(request, match)`` handler to servers that pass ``request.match``."""

    def call(request: Any) -> Response:
        try:
            response = handler(request, request.match)
        except HttpError as exc:
            response = Response.json(exc.status, {"error": exc.code, "message": exc.message})
        # Such servers send only ``headers``: carry the content type there.
        return Response(response.status, response.body, response.content_type,
                        {"Content-Type": response.content_type, **response.headers})

    return call


def serve_enrolment(service: EnrolmentService, *, tls_ca: ClubCA | None = None) -> HttpsServer:
    """Start a standalone HTTPS server with only the enrolment routes mounted."""
    server = HttpsServer(service.ca, tls_ca=tls_ca)
    service.mount(server)
    if service.central_url is None:
        service.central_url = server.url
    return server.start()


def main(argv: list[str] | None = None) -> int:
    """``python -m hw_sim.club.enrolment``: a standalone enrolment server for trying
    ``clubterm provision enrol`` by hand (prints the URL, CA fingerprint and codes)."""
    import argparse
    import os
    import time

    parser = argparse.ArgumentParser(prog="python -m hw_sim.club.enrolment",
                                     description=main.__doc__)
    parser.add_argument("--club", default="demo-club")
    parser.add_argument("--merchant", default="M-7")
    parser.add_argument("--terminal", action="append", default=None,
                        help="terminal id to make a code for (repeatable; default T-0001)")
    parser.add_argument("--broker-url", default="mqtts://localhost:8883")
    parser.add_argument("--ttl", type=float, default=3600, help="code lifetime in seconds")
    args = parser.parse_args(argv)
    ca = ClubCA.create(args.club)
    service = EnrolmentService(ca, club_id=args.club, pan_key=os.urandom(32),
                               rules_keys={f"{args.club}-1":
                                           ed25519.Ed25519PrivateKey.generate().public_key()},
                               broker_url=args.broker_url)
    server = serve_enrolment(service)
    print(f"club URL:        {server.url}")
    print(f"CA fingerprint:  {ca.fingerprint}")
    for terminal in args.terminal or ["T-0001"]:
        code = service.create_code(terminal, args.merchant, ttl_s=args.ttl)
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
