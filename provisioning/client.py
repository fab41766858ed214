"""The terminal side of the enrolment protocol over HTTPS (``docs/provisioning.md``).

Trust: the technician brings the club CA's SHA-256 fingerprint. :func:`fetch_pinned_ca`
downloads the CA certificate once without verification, and accepts it only if its
fingerprint equals the pin (and it is a self-signed CA). From then on every request
verifies the server against exactly that CA (``verify=ca_file``), so the enrolment
code and the CSR are only ever sent to a server that proves it holds a certificate
of the pinned CA. Library errors become :class:`ProvisioningError` here.

Every exchange has an overall deadline (``timeout``, the technician's
``--timeout``: connect, TLS, request and the whole answer, not one read) and a cap
on the answer's size (:data:`MAX_CA_BYTES`, :data:`MAX_ANSWER_BYTES`), so a server
that trickles or never stops sending fails the step with a clear message instead
of hanging it or filling memory (:mod:`agent.bounded_http`).
"""

from __future__ import annotations

import json
import logging
import ssl
from pathlib import Path
from typing import Any

from cryptography import x509

from agent.bounded_http import BoundedResponse, DownloadError, HttpLimits, open_bounded
from agent.errors import ProvisioningError
from provisioning.crypto import cert_fingerprint, check_ca_cert, load_cert, normalise_fingerprint

log = logging.getLogger(__name__)

NOTHING_CHANGED = "Nothing was changed on this terminal."

MAX_CA_BYTES = 64 * 1024  # a PEM CA certificate is 1-3 KiB
MAX_ANSWER_BYTES = 1024 * 1024  # the enrolment answer (certificates, keys, settings) is ~10 KiB


class EnrolmentCodeError(ProvisioningError):
    """The club refused the enrolment code; ``reason`` is the club's error code."""

    def __init__(self, reason: str, message: str):
        self.reason = reason
        super().__init__(message)


class CaPinMismatch(ProvisioningError):
    """The club offered a CA whose fingerprint is not the pinned one."""


class ClubUnreachable(ProvisioningError):
    """No HTTPS connection to the club could be made, or its answer did not arrive whole
    within the deadline and size limit (it may have been lost in flight)."""


_CODE_ADVICE = {
    "code_unknown": "The enrolment code is wrong: the club does not know it. Check it for typos "
                    "(letters and digits, dashes do not matter) or ask the club for the right one.",
    "code_used": "The enrolment code was already used. A code works once: ask the club for a new "
                 "code for this terminal.",
    "code_expired": "The enrolment code has expired. Ask the club for a new code.",
}


def _check_url(central_url: str) -> str:
    if not central_url.startswith("https://"):
        raise ProvisioningError(f"the club URL must start with https://, not {central_url!r}")
    return central_url.rstrip("/")


def _unreachable(url: str, exc: DownloadError, timeout: float) -> ClubUnreachable:
    if exc.reason == "deadline":
        why = (f"the club at {url} did not answer in full within {timeout:g} s: the network is "
               f"too slow or the server is not behaving. Check the network and the URL; on a "
               f"slow line try again with a longer --timeout (e.g. --timeout 60)")
    elif exc.reason == "too_large":
        why = (f"the club at {url} sent an answer larger than this step ever needs ({exc}); "
               f"check the URL: it must be the club's enrolment server")
    else:
        why = (f"cannot reach the club at {url} ({exc}). Check the network, the URL and that "
               f"the club server is up, then try again")
    return ClubUnreachable(f"{why}. {NOTHING_CHANGED}")


def _limits(timeout: float, max_bytes: int) -> HttpLimits:
    return HttpLimits(deadline_s=timeout, max_bytes=max_bytes, io_timeout_s=timeout)


def fetch_pinned_ca(central_url: str, pin: str, *, timeout: float = 15) -> x509.Certificate:
    """Download the club CA from ``/v1/ca`` and accept it only if it matches ``pin``.

    The download must finish within ``timeout`` seconds and be at most
    :data:`MAX_CA_BYTES`.
    """
    base = _check_url(central_url)
    expected = normalise_fingerprint(pin)
    # Deliberately unverified: what we fetch is checked against the pin below, and
    # nothing secret is sent on this connection.
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with open_bounded("the club's CA certificate", f"{base}/v1/ca",
                          _limits(timeout, MAX_CA_BYTES), ssl_context=ctx) as resp:
            if resp.status != 200:
                raise ProvisioningError(
                    f"the club at {base} did not hand out its CA certificate (HTTP "
                    f"{resp.status}); is this the right URL? {NOTHING_CHANGED}")
            body = resp.read_all()
    except DownloadError as exc:
        raise _unreachable(base, exc, timeout) from None
    ca = load_cert(body, "CA certificate")
    actual = cert_fingerprint(ca)
    if actual != expected:
        raise CaPinMismatch(
            f"the club's CA fingerprint does not match the one you gave.\n"
            f"  expected: {expected}\n  offered:  {actual}\n"
            f"Check the fingerprint on the enrolment sheet. If it still differs, do not go on: "
            f"this network may be intercepting the connection. {NOTHING_CHANGED}")
    check_ca_cert(ca)
    return ca


class ClubClient:
    """HTTPS calls to the club, verified against the pinned CA file."""

    def __init__(self, central_url: str, ca_file: Path, *, timeout: float = 15,
                 client_cert: tuple[Path, Path] | None = None):
        self.base = _check_url(central_url)
        self.ca_file = ca_file
        self.timeout = timeout
        self.client_cert = client_cert

    def _context(self) -> ssl.SSLContext:
        try:
            ctx = ssl.create_default_context(cafile=str(self.ca_file))
            if self.client_cert is not None:
                ctx.load_cert_chain(str(self.client_cert[0]), str(self.client_cert[1]))
        except (OSError, ssl.SSLError) as exc:
            raise ProvisioningError(f"cannot load the club CA or this terminal's certificate: "
                                    f"{exc}. {NOTHING_CHANGED}") from None
        return ctx

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST JSON; the whole exchange within ``timeout``, the answer ≤ MAX_ANSWER_BYTES."""
        url = f"{self.base}{path}"
        try:
            with open_bounded(f"the club's answer to {path}", url,
                              _limits(self.timeout, MAX_ANSWER_BYTES), method="POST",
                              body=json.dumps(body).encode(), ssl_context=self._context(),
                              headers={"Content-Type": "application/json",
                                       "Accept": "application/json"}) as resp:
                raw = resp.read_all()
                return self._answer(path, resp, raw)
        except DownloadError as exc:
            if exc.reason == "tls":
                raise ProvisioningError(
                    f"the server at {self.base} is not trusted: its certificate is not from the "
                    f"pinned club CA (or it refused this terminal's certificate). "
                    f"{NOTHING_CHANGED}") from None
            raise _unreachable(self.base, exc, self.timeout) from None

    @staticmethod
    def _answer(path: str, resp: BoundedResponse, raw: bytes) -> dict[str, Any]:
        try:
            data = json.loads(raw)
        except ValueError:
            data = None
        if resp.status == 200 and isinstance(data, dict):
            return data
        reason = data.get("error") if isinstance(data, dict) else None
        message = data.get("message") if isinstance(data, dict) else None
        if reason in _CODE_ADVICE:
            raise EnrolmentCodeError(reason, f"{_CODE_ADVICE[reason]} {NOTHING_CHANGED}")
        raise ProvisioningError(
            f"the club refused {path} (HTTP {resp.status}"
            f"{', ' + str(reason) if reason else ''}): {message or resp.reason}. {NOTHING_CHANGED}")

    def lookup(self, code: str, public_key_pem: bytes | None = None) -> dict[str, Any]:
        """Which terminal the code is for (does not use the code up).

        ``public_key_pem`` is the key of an interrupted earlier attempt, so the club
        can recognise the same device retrying with a code it already used.
        """
        body: dict[str, Any] = {"code": code}
        if public_key_pem is not None:
            body["public_key"] = public_key_pem.decode("ascii")
        answer = self._post("/v1/enrolment/lookup", body)
        for key in ("terminal_id", "club_id", "merchant_id"):
            if not isinstance(answer.get(key), str) or not answer[key]:
                raise ProvisioningError(f"the club's lookup answer has no {key}")
        return answer

    def enrol(self, code: str, csr_pem: bytes, *, profile: str, agent_version: str,
              hardware: dict[str, Any]) -> dict[str, Any]:
        """Use the code: send the CSR, get the signed certificate and the configuration."""
        return self._post("/v1/enrolment", {
            "code": code, "csr": csr_pem.decode("ascii"), "profile": profile,
            "agent_version": agent_version, "hardware": hardware,
        })

    def renew(self, terminal_id: str, csr_pem: bytes) -> dict[str, Any]:
        """A new certificate for a new key, authenticated by the current certificate."""
        return self._post(f"/v1/terminals/{terminal_id}/certificate",
                          {"csr": csr_pem.decode("ascii")})
