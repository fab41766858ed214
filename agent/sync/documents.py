"""Which manifest-named documents to fetch, and when (pure: time passed in).

Per kind (``bundle``, later ``catalogue``) one manifest is wanted — the newest
seen — and at most one fetch runs. A newer manifest supersedes the one waiting
and cancels a running fetch of an older one; a failed fetch (or a document then
refused) is tried again after a jittered, doubling pause. The shell performs the
fetch (:class:`agent.sync.actions.FetchDocument`) and hands back a
:class:`DocumentOutcome`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from agent.sync.actions import Action, CancelDocument, FetchDocument
from agent.sync.backoff import backoff_ceiling
from agent.sync.messages import Manifest


@dataclass(frozen=True)
class DocumentOutcome:
    """How a document fetch ended: the ``document`` bytes, or an ``error`` and its reason."""

    manifest: Manifest
    seconds: float
    document: bytes | None = None
    error: str | None = None
    reason: str | None = None


class PendingDocuments:
    """The wanted manifest per kind, the running fetches, failures and backoff."""

    def __init__(self, retry_s: float, retry_cap_s: float, rng: random.Random):
        self.retry_s = retry_s
        self.retry_cap_s = retry_cap_s
        self.rng = rng
        self.wanted: dict[str, Manifest] = {}
        self.due: dict[str, float] = {}
        self.fetching: dict[str, Manifest] = {}
        self.failures: dict[str, int] = {}

    def want(self, manifest: Manifest, now: float, out: list[Action]) -> bool:
        """Fetch ``manifest``'s document (at once); False when it is wanted already."""
        kind = manifest.kind
        if self.wanted.get(kind) == manifest:
            return False
        self.wanted[kind] = manifest
        self.due[kind] = now
        self.failures[kind] = 0
        running = self.fetching.get(kind)
        if running is not None and running != manifest:
            out.append(CancelDocument(kind))
        return True

    def forget(self, kind: str, up_to_version: int) -> None:
        """The version in use reached ``up_to_version`` by other means: nothing older is wanted."""
        wanted = self.wanted.get(kind)
        if wanted is not None and wanted.version <= up_to_version:
            del self.wanted[kind]
            self.due.pop(kind, None)
            self.failures.pop(kind, None)

    def start_due(self, now: float, out: list[Action]) -> bool:
        """Start the fetches that are due (one per kind); True when one started."""
        started = False
        for kind, manifest in self.wanted.items():
            due = self.due.get(kind)
            if due is None or now < due or kind in self.fetching:
                continue
            del self.due[kind]
            self.fetching[kind] = manifest
            out.append(FetchDocument(manifest))
            started = True
        return started

    def done(self, outcome: DocumentOutcome) -> bool:
        """A fetch ended; True when it is for the manifest still wanted (else superseded)."""
        kind = outcome.manifest.kind
        if self.fetching.get(kind) == outcome.manifest:
            del self.fetching[kind]
        return self.wanted.get(kind) == outcome.manifest

    def retry_later(self, kind: str, now: float) -> float:
        """The wanted document failed (fetch or check): try again after a pause; returns it."""
        failures = self.failures.get(kind, 0) + 1
        self.failures[kind] = failures
        ceiling = backoff_ceiling(failures - 1, self.retry_s, self.retry_cap_s)
        delay = self.rng.uniform(ceiling / 2, ceiling)
        self.due[kind] = now + delay
        return delay

    def settled(self, kind: str) -> None:
        """The wanted document is in use (or never will be): stop wanting it."""
        self.wanted.pop(kind, None)
        self.due.pop(kind, None)
        self.failures.pop(kind, None)

    def next_due(self) -> float | None:
        """When a fetch falls due (None: none waits)."""
        waits = [due for kind, due in self.due.items() if kind not in self.fetching]
        return min(waits) if waits else None
