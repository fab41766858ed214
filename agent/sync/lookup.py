"""The online lookup of a member the cache does not hold (HTTPS, mutual TLS, bounded).

A terminal whose club scopes member changes (``[club] member_scope``) holds only the
members of its merchant or merchant group; a card of another merchant's member is
looked up at the club while the customer waits:

``POST {central_url}/v1/clubs/{club_id}/members/lookup`` with
``{"token": "<identifier token>", "terminal_id": "T-0001"}`` answers 200
``{"member": <member record>}`` or 404 ``{"error": "unknown_member"}`` (1.3: or
``{"error": "card_lost", "member_id": …}`` for a card reported lost)
(``docs/protocol/club.md``, "Online lookup").

HTTPS rather than MQTT 5 request/response: the answer is wanted now or never (a
queued request is useless once the customer has left), the snapshot's client and
certificates already do mutual TLS with hard limits, a 3.1.1 broker has no response
topics, and the club answers from stateless HTTPS servers behind a load balancer
instead of a back end holding per-terminal response topics.

Every exchange is bounded (:class:`LookupLimits`: a short deadline, a small body);
an answer that is not one member record holding the token asked for is refused.
After a failure the club is not asked again for ``retry_after_s``: a tap at a till
whose club is away answers at once instead of waiting the deadline every time.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from agent.bounded_http import DownloadError, HttpLimits, open_bounded
from agent.config import Config
from agent.errors import CardReportedLost, LinkError
from agent.sync.snapshot import club_tls_context

#: The most a lookup answer may be (one record; the protocol's 256 KiB would let a
#: hostile club hold a till's memory for nothing).
MAX_ANSWER_BYTES = 64 * 1024


class LookupFailed(LinkError):
    """The club could not be asked, or answered what cannot be used.

    ``reason``: ``unavailable`` (asked too recently after a failure), ``disabled``,
    ``deadline``, ``unreachable``, ``tls``, ``network``, ``too_large``, ``http``,
    ``bad_answer``.
    """

    def __init__(self, reason: str, message: str):
        self.reason = reason
        super().__init__(message)


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2 ** 53


def parse_lookup_answer(token: str, body: bytes) -> dict[str, Any]:
    """The member record of a 200 answer, checked (pure); :class:`LookupFailed`
    ``bad_answer`` for anything else: not JSON, not ``{"member": {...}}``, a record
    without ``member_id``/``version``, with malformed ``identifiers``/``balances``,
    or one that does not hold ``token`` (the wrong member)."""
    if len(body) > MAX_ANSWER_BYTES:
        raise LookupFailed("too_large", f"member lookup: the answer is over "
                                        f"{MAX_ANSWER_BYTES // 1024} KiB")
    try:
        doc = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise LookupFailed("bad_answer", "member lookup: the answer is not JSON") from None
    record = doc.get("member") if isinstance(doc, dict) else None
    if not isinstance(record, dict):
        raise LookupFailed("bad_answer", "member lookup: the answer holds no member record")
    member_id = record.get("member_id")
    if not isinstance(member_id, str) or not member_id or len(member_id) > 200:
        raise LookupFailed("bad_answer", "member lookup: the record has no member_id")
    if not _whole(record.get("version")):
        raise LookupFailed("bad_answer", "member lookup: the record has no whole version")
    identifiers = record.get("identifiers")
    if not isinstance(identifiers, list) or not all(isinstance(t, str) for t in identifiers):
        raise LookupFailed("bad_answer", "member lookup: identifiers must be a list of tokens")
    if token not in identifiers:
        raise LookupFailed("bad_answer", f"member lookup: the club answered member "
                                         f"{member_id[:40]}, who does not hold this card")
    balances = record.get("balances", {})
    if not isinstance(balances, dict) or not all(
            isinstance(k, str) and _whole(v) for k, v in balances.items()):
        raise LookupFailed("bad_answer", "member lookup: balances must be whole numbers")
    if not isinstance(record.get("status", "active"), str):
        raise LookupFailed("bad_answer", "member lookup: status must be a string")
    # Keys the terminal keeps for itself are never the club's to set.
    return {k: v for k, v in record.items() if not k.startswith("_")}


def parse_not_found(body: bytes) -> CardReportedLost | None:
    """What a 404 answer says beyond "unknown member" (pure): a lost card's holder,
    else None (an empty, foreign or malformed body reads as unknown, as in 1.2)."""
    try:
        doc = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(doc, dict) or doc.get("error") != "card_lost":
        return None
    member_id = doc.get("member_id")
    if not isinstance(member_id, str) or not 0 < len(member_id) <= 200:
        return None
    return CardReportedLost(member_id)


@dataclass(frozen=True)
class LookupLimits:
    """What one lookup may take (``[club] lookup_timeout_s``; docs/limits.md)."""

    deadline_s: float = 2.0  # connect, TLS, request and answer
    max_bytes: int = MAX_ANSWER_BYTES
    retry_after_s: float = 30.0  # after a failure, the club is not asked again before this


@dataclass
class MemberLookupClient:
    """Asks the club for one member by token (blocking; run it off the event loop)."""

    central_url: str
    club_id: str
    terminal_id: str
    ca_file: Path | None
    cert_file: Path | None
    key_file: Path | None
    limits: LookupLimits = field(default_factory=LookupLimits)
    monotonic: Callable[[], float] = time.monotonic
    _down_until: float = field(default=0.0, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def url(self) -> str:
        return f"{self.central_url.rstrip('/')}/v1/clubs/{quote(self.club_id)}/members/lookup"

    def _context(self) -> ssl.SSLContext:
        return club_tls_context(self.ca_file, self.cert_file, self.key_file,
                                what="member lookup: ")

    def lookup(self, token: str) -> dict[str, Any] | None:
        """The club's record of the member holding ``token``, or None (the club says
        no member holds it). Raises :class:`LookupFailed`, or :class:`CardReportedLost`
        (1.3: the club says the card was reported lost)."""
        with self._lock:
            if self.monotonic() < self._down_until:
                raise LookupFailed("unavailable", "member lookup: the club did not answer a "
                                                  "moment ago; not asked again yet")
        try:
            return self._ask(token)
        except LookupFailed:
            with self._lock:
                self._down_until = self.monotonic() + self.limits.retry_after_s
            raise

    def _ask(self, token: str) -> dict[str, Any] | None:
        limits = self.limits
        http = HttpLimits(deadline_s=limits.deadline_s, max_bytes=limits.max_bytes,
                          max_line=limits.max_bytes, io_timeout_s=limits.deadline_s)
        url = self.url()
        context = self._context() if url.startswith("https:") else None
        body = json.dumps({"token": token, "terminal_id": self.terminal_id}).encode()
        try:
            with open_bounded("member lookup", url, http, method="POST", body=body,
                              ssl_context=context,
                              headers={"Content-Type": "application/json",
                                       "Accept": "application/json"}) as resp:
                if resp.status == 404:
                    # No such member (a v1 club without the route: the same), or
                    # (1.3) a card reported lost.
                    lost = parse_not_found(resp.read_all())
                    if lost is not None:
                        raise lost
                    return None
                if resp.status != 200:
                    raise LookupFailed("http", f"member lookup: HTTP {resp.status} from {url}")
                data = resp.read_all()
        except DownloadError as exc:
            raise LookupFailed(exc.reason, f"{exc} (from {url})") from exc
        except (OSError, ValueError) as exc:
            raise LookupFailed("network", f"member lookup at {url} failed: {exc}") from None
        return parse_lookup_answer(token, data)


def member_lookup(config: Config) -> Callable[[str], dict[str, Any] | None] | None:
    """The agent's lookup (``AgentView.lookup_member``), or None when the configuration
    has no ``central_url`` or ``[club] lookup_timeout_s = 0``."""
    if not config.central_url or config.lookup_timeout_s <= 0:
        return None
    client = MemberLookupClient(config.central_url, config.club_id, config.terminal_id,
                                config.ca_file, config.cert_file, config.key_file,
                                LookupLimits(deadline_s=config.lookup_timeout_s))
    return client.lookup
