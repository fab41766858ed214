"""The member snapshot over HTTPS (mutual TLS), streamed into the store.

``GET {central_url}/v1/clubs/{club_id}/members?since={version}`` answers NDJSON, one
record a line, and ``X-Members-Version``. The body is handed to the store line by
line as it arrives, so a large club never sits in memory whole.

A fetch has hard limits (:class:`SnapshotLimits`): an overall deadline, and caps
on bytes, records and one line's length. A server that trickles, never ends or
sends one endless line is abandoned at the first limit it breaks; the store's
``members_version`` only moves when a snapshot arrived whole, so an abandoned one
is simply fetched again later.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol
from urllib.parse import quote, urlencode

from agent.bounded_http import BoundedResponse, DownloadError, HttpLimits, open_bounded
from agent.errors import ClubtermError, LinkError


class SnapshotSink(Protocol):
    """The part of the store a snapshot is written to."""

    def import_snapshot(self, lines: Iterable[bytes | str], version: int, full: bool) -> object: ...


def club_tls_context(ca_file: Path | None, cert_file: Path | None, key_file: Path | None,
                     *, what: str = "") -> ssl.SSLContext:
    """TLS 1.2+ verified against the club CA, with this terminal's certificate when given
    (the MQTT link and the HTTPS snapshot use the same one)."""
    try:
        ctx = ssl.create_default_context(cafile=str(ca_file) if ca_file is not None else None)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if cert_file is not None and key_file is not None:
            ctx.load_cert_chain(str(cert_file), str(key_file))
    except (OSError, ssl.SSLError) as exc:
        raise LinkError(f"{what}cannot load the club CA or this terminal's certificate: "
                        f"{exc}") from None
    return ctx


@dataclass(frozen=True)
class SnapshotLimits:
    """What one snapshot fetch may take (``[club] snapshot_*`` in the configuration)."""

    deadline_s: float = 600.0  # the whole fetch, import into the store included
    max_bytes: int = 1024 * 1024 * 1024
    max_records: int = 2_000_000
    max_line: int = 1024 * 1024  # one member record
    io_timeout_s: float = 60.0  # one read


@dataclass(frozen=True)
class SnapshotClient:
    """Fetches member snapshots with the terminal's certificate."""

    central_url: str
    club_id: str
    ca_file: Path | None
    cert_file: Path | None
    key_file: Path | None
    timeout_s: float = 30.0  # one read; the whole fetch is bounded by limits.deadline_s
    limits: SnapshotLimits = field(default_factory=SnapshotLimits)
    #: The member scope (``[club] member_scope``); not "club": ``&scope=`` is asked for.
    scope: str = "club"

    def url(self) -> str:
        return f"{self.central_url.rstrip('/')}/v1/clubs/{quote(self.club_id)}/members"

    def _context(self) -> ssl.SSLContext:
        return club_tls_context(self.ca_file, self.cert_file, self.key_file,
                                what="member snapshot: ")

    def fetch_into(self, sink: SnapshotSink, since: int, *,
                   cancel: threading.Event | None = None) -> int:
        """Fetch the records changed after ``since`` into ``sink``; returns the new version.

        ``since`` 0 is the full set (the store replaces its cache). Raises
        :class:`SnapshotFailed` (a :class:`LinkError`) for network, TLS and HTTP
        failures, a bad answer and a broken limit, the message saying which; the
        store's own errors pass through. ``cancel`` abandons the fetch.
        """
        limits = self.limits
        http = HttpLimits(deadline_s=limits.deadline_s, max_bytes=limits.max_bytes,
                          max_line=limits.max_line,
                          io_timeout_s=min(self.timeout_s, limits.io_timeout_s))
        url = f"{self.url()}?{urlencode(self._query(since))}"
        context = self._context() if url.startswith("https:") else None
        try:
            with open_bounded("member snapshot", url, http, ssl_context=context, cancel=cancel,
                              headers={"Accept": "application/x-ndjson"}) as resp:
                if resp.status != 200:
                    raise SnapshotFailed("http", f"member snapshot: HTTP {resp.status} from "
                                                 f"{self.url()}", status=resp.status)
                header = resp.headers.get("X-Members-Version", "")
                if not header.isdigit():
                    raise SnapshotFailed("protocol",
                                         "member snapshot: no usable X-Members-Version header")
                version = int(header)
                self._check_scope(resp.headers.get("X-Members-Scope"))
                sink.import_snapshot(self._records(resp), version, since == 0)
                return version
        except DownloadError as exc:
            raise SnapshotFailed(exc.reason, f"{exc} (from {self.url()})") from exc
        except ClubtermError:
            raise
        except (OSError, ValueError) as exc:
            raise LinkError(f"member snapshot from {self.url()} failed: {exc}") from None

    def _query(self, since: int) -> dict[str, str | int]:
        return {"since": since} if self.scope == "club" else {"since": since,
                                                              "scope": self.scope}

    def _check_scope(self, answered: str | None) -> None:
        """A scoped snapshot must say it is one: a v1 club ignores ``scope`` and sends
        every member, with versions of the club-wide stream."""
        if self.scope != "club" and answered != self.scope:
            raise SnapshotFailed(
                "protocol", f"member snapshot: asked for scope {self.scope!r}, the club "
                f"answered scope {answered or 'none (a v1 club?)'}; set [club] member_scope "
                f"= \"club\" if this club does not scope member changes")

    def _records(self, resp: BoundedResponse) -> Iterator[bytes]:
        cap = self.limits.max_records
        for count, line in enumerate(resp.iter_lines(), start=1):
            if count > cap:
                raise DownloadError("too_many_records",
                                    f"member snapshot: more than {cap:,} records")
            yield line


class SnapshotFailed(LinkError):
    """A fetch failed; ``reason`` is :class:`DownloadError`'s (``deadline``, ``too_large``,
    ``line_too_long``, ``cancelled``, ``tls``, ``unreachable``, ``network``), or
    ``too_many_records``, ``http`` (``status`` says which) or ``protocol``."""

    def __init__(self, reason: str, message: str, *, status: int | None = None):
        self.reason = reason
        self.status = status
        super().__init__(message)
