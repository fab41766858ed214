"""Documents too large for one MQTT message, fetched over HTTPS (mutual TLS) from a
signed manifest (``docs/protocol/club.md``, "Large documents").

:func:`fetch_document` is the one fetch-and-check of every kind (``bundle`` now,
``catalogue`` later): the body at the manifest's path on ``central_url`` must be
exactly ``size`` bytes whose SHA-256 is ``sha256``; a gzip body is then inflated
within the same byte cap. What comes back is the document's own signed envelope,
whose signature the caller checks as it checks an inline one. The exchange has the
limits of :mod:`agent.bounded_http`: a deadline, a byte cap, no redirects (a 3xx
is an HTTP error like any other), and ``cancel``.
"""

from __future__ import annotations

import hashlib
import threading
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from agent.bounded_http import DownloadError, HttpLimits, open_bounded
from agent.errors import LinkError
from agent.sync.messages import Manifest
from agent.sync.snapshot import club_tls_context


@dataclass(frozen=True)
class DocumentLimits:
    """What one document fetch may take (``[club] document_*`` in the configuration)."""

    deadline_s: float = 120.0  # the whole fetch
    max_bytes: int = 32 * 1024 * 1024  # the body as sent, and again once inflated
    io_timeout_s: float = 30.0  # one read


class DocumentFailed(LinkError):
    """A document fetch failed; ``reason`` is :class:`DownloadError`'s (``deadline``,
    ``too_large``, ``cancelled``, ``tls``, ``unreachable``, ``network``), or ``http``,
    ``size`` (not the manifest's size), ``digest`` (not its SHA-256) or ``encoding``
    (a gzip body that does not inflate)."""

    def __init__(self, reason: str, message: str):
        self.reason = reason
        super().__init__(message)


@dataclass(frozen=True)
class DocumentClient:
    """Fetches documents named by manifests from the club's HTTPS server."""

    central_url: str
    ca_file: Path | None
    cert_file: Path | None
    key_file: Path | None
    limits: DocumentLimits = field(default_factory=DocumentLimits)

    def url(self, manifest: Manifest) -> str:
        return self.central_url.rstrip("/") + manifest.path

    def fetch(self, manifest: Manifest, *, cancel: threading.Event | None = None) -> bytes:
        """The document's bytes (its signed envelope, inflated), checked against ``manifest``."""
        return fetch_document(self, manifest, cancel=cancel)


def fetch_document(client: DocumentClient, manifest: Manifest, *,
                   cancel: threading.Event | None = None) -> bytes:
    """Fetch the document ``manifest`` names and check its size and digest.

    Works for every ``manifest.kind``; the caller verifies the envelope's signature.
    Raises :class:`DocumentFailed` saying what was wrong.
    """
    what = f"{manifest.kind} version {manifest.version}"
    limits = client.limits
    if manifest.size > limits.max_bytes:
        raise DocumentFailed("too_large", f"{what}: the manifest announces {manifest.size:,} "
                                          f"bytes, over the limit of {limits.max_bytes:,}")
    url = client.url(manifest)
    # One byte over the announced size is enough to know the body is wrong.
    http = HttpLimits(deadline_s=limits.deadline_s, max_bytes=manifest.size + 1,
                      io_timeout_s=limits.io_timeout_s)
    context = (club_tls_context(client.ca_file, client.cert_file, client.key_file,
                                what=f"{what}: ") if url.startswith("https:") else None)
    try:
        with open_bounded(what, url, http, ssl_context=context, cancel=cancel) as resp:
            if resp.status != 200:
                raise DocumentFailed("http", f"{what}: HTTP {resp.status} from {url}")
            body = resp.read_all()
    except DownloadError as exc:
        reason = "size" if exc.reason == "too_large" else exc.reason
        raise DocumentFailed(reason, f"{exc} (from {url})") from exc
    if len(body) != manifest.size:
        raise DocumentFailed("size", f"{what}: {len(body):,} bytes arrived, the manifest "
                                     f"says {manifest.size:,}")
    digest = hashlib.sha256(body).hexdigest()
    if digest != manifest.sha256:
        raise DocumentFailed("digest", f"{what}: SHA-256 {digest[:16]}… is not the "
                                       f"manifest's {manifest.sha256[:16]}…")
    if manifest.content_encoding == "gzip":
        return _gunzip(body, limits.max_bytes, what)
    return body


def _gunzip(body: bytes, cap: int, what: str) -> bytes:
    """Inflate a gzip body, never beyond ``cap`` bytes (a small body may inflate hugely)."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, cap + 1)
    except zlib.error as exc:
        raise DocumentFailed("encoding", f"{what}: the gzip body does not inflate "
                                         f"({exc})") from None
    if len(out) > cap or inflater.unconsumed_tail:
        raise DocumentFailed("too_large", f"{what}: inflates to over the limit of {cap:,} bytes")
    if not inflater.eof:
        raise DocumentFailed("encoding", f"{what}: the gzip body is cut short")
    return out
