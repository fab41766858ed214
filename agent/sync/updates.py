"""What the club sends down besides acks: rule bundles, the staff list, the
product catalogue, member change sets, and the member snapshots that fill a gap
(pure: no thread, no network; time passed in).

A snapshot is asked for with :class:`FetchSnapshot`; the shell fetches it off the
worker and hands the outcome back (:class:`SnapshotOutcome`). A failed one is
tried again after a jittered, doubling pause.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from agent.catalogue import CatalogueRefused, decide, parse_catalogue, verify_catalogue
from agent.errors import BundleRejected, ClubtermError
from agent.rules.envelope import acceptance_refusal, verify_signed_payload
from agent.staff.staff_list import StaffListRefused, accept_staff_list, load_envelope
from agent.sync.actions import Action, Emit, FetchSnapshot
from agent.sync.backoff import backoff_ceiling
from agent.sync.commands import CommandRunner
from agent.sync.documents import DocumentOutcome, PendingDocuments
from agent.sync.messages import (
    Manifest,
    MessageError,
    is_manifest,
    parse_change_set,
    parse_envelope,
    parse_manifest,
)
from agent.sync.ports import Bundles, CatalogueParts, Members, RulesState, StaffRecords
from agent.sync.topics import Topics
from agent.sync.tuning import LinkTuning

log = logging.getLogger("agent.sync")


@dataclass(frozen=True)
class SnapshotOutcome:
    """How a snapshot fetch ended: the new ``version``, or an ``error`` (and its reason)."""

    since: int
    seconds: float
    version: int | None = None
    error: str | None = None
    reason: str | None = None


class ClubUpdates:
    """Rules, staff, members: each message checked, stored, and announced with :class:`Emit`."""

    def __init__(self, topics: Topics, tuning: LinkTuning, *, members: Members,
                 bundles: Bundles, records: StaffRecords, rules: RulesState,
                 commands: CommandRunner, snapshots: bool, offline_only: bool,
                 wall_clock: Callable[[], datetime], rng: random.Random,
                 documents: bool | None = None,
                 catalogue: CatalogueParts | None = None):
        self.topics = topics
        self.tuning = tuning
        self.members = members
        self.bundles = bundles
        self.records = records
        self.rules = rules
        self.catalogue = catalogue
        self.commands = commands
        self.snapshots = snapshots
        self.offline_only = offline_only
        self.wall_clock = wall_clock
        self.rng = rng
        self.members_problem: str | None = None  # why the last snapshot failed, until one works
        self.staff_problem: str | None = None
        self._staff_seen: tuple[Any, ...] | None = None
        self._last_refused: tuple[Any, ...] | None = None
        self._catalogue_seen: tuple[Any, ...] | None = None
        self.catalogue_problem: str | None = None
        self.snapshot_due: float | None = None
        self.snapshot_since = 0
        self.snapshot_failures = 0
        self.fetching = False
        self.snapshots_done = 0
        # Documents named by manifests come from the same HTTPS server as snapshots.
        self.documents_enabled = snapshots if documents is None else documents
        self.documents = PendingDocuments(tuning.document_retry_s, tuning.document_retry_cap_s,
                                          rng)
        self.bundle_problem: str | None = None  # why the manifest's bundle is not in use yet

    # ---- rule bundles -----------------------------------------------------------

    def restore_bundle(self) -> None:
        """Put the stored bundle in force when the rules state has none yet."""
        if self.rules.version is not None:
            return
        envelope = self.bundles.current_bundle()
        if envelope is None:
            return
        try:
            self.rules.restore(envelope)
        except ClubtermError as exc:
            log.error("the stored rule bundle cannot be used: %s", exc)

    def rules_problem(self) -> str | None:
        """For the status ``rules_problem``: a bundle fetch's failure, else the last refusal."""
        return self.bundle_problem or self.rules.problem()

    def on_rules(self, payload: bytes, out: list[Action], now: float = 0.0) -> None:
        if not payload:
            return  # a cleared retained message
        envelope = parse_envelope(payload)
        if is_manifest(envelope):
            self._on_manifest(envelope, now, out)
            return
        self._offer_bundle(envelope, out)

    def _offer_bundle(self, envelope: dict[str, Any], out: list[Action]) -> bool:
        """Offer a signed bundle (inline or fetched); True when it is now in use."""
        before = self.rules.problem()
        if self.rules.offer(envelope, self.wall_clock()):
            version = self.rules.version
            assert version is not None
            self.bundles.save_bundle(envelope, version)
            self.documents.forget("bundle", version)
            self.bundle_problem = None
            log.info("rule bundle version %d is now in use", version)
            out.append(Emit({"type": "rules", "version": version, "problem": None}))
            return True
        problem = self.rules.problem()
        key = (envelope.get("payload"), envelope.get("sig"), problem)
        if problem is not None and (problem != before or key != self._last_refused):
            self._last_refused = key
            self.bundles.save_refused_bundle(envelope, problem.split(":", 1)[0])
            log.warning("refused a rule bundle: %s", problem)
            out.append(Emit({"type": "rules", "version": self.rules.version,
                             "problem": problem}))
        return False

    def _on_manifest(self, envelope: dict[str, Any], now: float, out: list[Action]) -> None:
        """A signed manifest for a bundle too large to send inline: checked like the
        bundle itself (signature, club, merchant, newer), then its bundle is fetched."""
        try:
            manifest = parse_manifest(verify_signed_payload(envelope, self.rules.trusted))
        except BundleRejected as exc:
            self._bundle_refused(f"{exc.reason}: bundle manifest: {exc}", out)
            return
        except MessageError as exc:
            self._bundle_refused(f"malformed: bundle manifest: {exc}", out)
            return
        if manifest.kind != "bundle":
            self._bundle_refused(f"malformed: a {manifest.kind!r} manifest on the rules topic",
                                 out)
            return
        current = self.rules.version
        if current is not None and manifest.version == current:
            return  # the bundle in use (the retained manifest seen again)
        refusal = acceptance_refusal("bundle manifest", club_of=manifest.club,
                                     merchant_of=manifest.merchant, version=manifest.version,
                                     club=self.topics.club_id, merchant=self.topics.merchant_id,
                                     current_version=current, not_newer="downgrade")
        if refusal is not None:
            self._bundle_refused(f"{refusal[0]}: {refusal[1]}", out)
            return
        if not self.documents_enabled:
            self._bundle_refused("fetch_failed: bundle version "
                                 f"{manifest.version} must be fetched over HTTPS and no "
                                 "central_url is configured", out)
            return
        if self.documents.want(manifest, now, out):
            log.info("rule bundle version %d (%d bytes, %s) is announced: fetching it from %s",
                     manifest.version, manifest.size, manifest.content_encoding, manifest.path)

    def _bundle_refused(self, problem: str, out: list[Action]) -> None:
        if problem == self.bundle_problem:
            return
        self.bundle_problem = problem
        log.warning("rule bundle: %s; the bundle in use (version %s) stays", problem,
                    self.rules.version)
        out.append(Emit({"type": "rules", "version": self.rules.version, "problem": problem}))

    def document_done(self, outcome: DocumentOutcome, now: float, out: list[Action]) -> None:
        """A manifest's document was fetched (or not): offer it, or try again later."""
        manifest = outcome.manifest
        if not self.documents.done(outcome):
            log.info("%s version %d: superseded by a newer manifest", manifest.kind,
                     manifest.version)
            return
        if outcome.document is None or outcome.error is not None:
            if outcome.reason == "cancelled":
                return
            delay = self.documents.retry_later(manifest.kind, now)
            log.warning("%s version %d: fetch failed after %.1f s, trying again in %.0f s: %s",
                        manifest.kind, manifest.version, outcome.seconds, delay, outcome.error)
            self._bundle_refused(f"fetch_failed: {outcome.reason or 'error'}: {outcome.error}",
                                 out)
            return
        if manifest.kind == "bundle":
            self._fetched_bundle(manifest, outcome.document, now, out)

    def _fetched_bundle(self, manifest: Manifest, document: bytes, now: float,
                        out: list[Action]) -> None:
        try:
            envelope = load_document(document)
        except MessageError as exc:
            delay = self.documents.retry_later("bundle", now)
            self._bundle_refused(f"malformed: bundle version {manifest.version}: {exc} "
                                 f"(trying again in {delay:.0f} s)", out)
            return
        if self._offer_bundle(envelope, out):
            self.documents.settled("bundle")
            log.info("rule bundle version %d fetched (%d bytes)", manifest.version,
                     manifest.size)
            return
        if self.rules.version is not None and self.rules.version >= manifest.version:
            self.documents.settled("bundle")
            return
        delay = self.documents.retry_later("bundle", now)
        self._bundle_refused(f"{self.rules.problem() or 'refused'} (bundle version "
                             f"{manifest.version} fetched; trying again in {delay:.0f} s)", out)

    # ---- the staff list ---------------------------------------------------------

    def on_staff(self, payload: bytes, out: list[Action]) -> None:
        """The merchant's staff list: verified, then put in force or refused (the
        list in force stays). ``docs/protocol/staff.md``."""
        if not payload:
            return  # a cleared retained message: the list in force stays
        current: int | None = None
        try:
            envelope = load_envelope(payload)
            key = (envelope.get("payload"), envelope.get("sig"))
            if key == self._staff_seen:
                return  # the same retained message again (reconnect)
            self._staff_seen = key
            current = self.records.staff_list_version()
            staff_list = accept_staff_list(envelope, self.rules.trusted,
                                           club=self.topics.club_id,
                                           merchant=self.topics.merchant_id,
                                           current_version=current)
            done = self.records.replace_club_staff(staff_list, envelope,
                                                   keep_local=self.offline_only)
        except StaffListRefused as exc:
            if exc.reason == "stale" and exc.version == current:
                log.debug("staff list version %s is already in force", current)
                return
            self._staff_refused(f"{exc.reason}: {exc}", current, out)
            log.warning("refused a staff list (%s): %s; the list in force (version %s) stays",
                        exc.reason, exc, current)
            return
        except ClubtermError as exc:
            self._staff_seen = None  # try again when it comes again
            self._staff_refused(f"storage: {exc}", current, out)
            log.error("could not save the club's staff list: %s", exc)
            return
        if staff_list.ignored:
            log.info("staff list version %d: permissions this agent does not know were "
                     "ignored: %s", staff_list.version, ", ".join(staff_list.ignored[:20]))
        log.info("staff list version %d is in force: %d staff, %d deactivated",
                 staff_list.version, done["staff"], len(done["deactivated"]))
        self.staff_problem = None
        out.append(Emit({"type": "staff", "version": staff_list.version, "problem": None,
                         "deactivated": list(done["deactivated"])}))

    def _staff_refused(self, problem: str, version: int | None, out: list[Action]) -> None:
        self.staff_problem = problem
        out.append(Emit({"type": "staff", "version": version, "problem": problem}))

    # ---- the product catalogue ---------------------------------------------------

    def on_catalogue(self, payload: bytes, out: list[Action]) -> None:
        """A signed catalogue, whole (retained topic) or a change set (its ``changes``
        topic): verified, then taken or refused — the catalogue in use stays.
        ``docs/protocol/catalogue.md``."""
        if not payload or self.catalogue is None:
            return  # a cleared retained message: the catalogue in use stays
        envelope = parse_envelope(payload)
        key = (envelope.get("payload"), envelope.get("sig"))
        if key == self._catalogue_seen:
            return  # the same retained message again (reconnect)
        self._catalogue_seen = key
        try:
            data = verify_catalogue(envelope, self.rules.trusted)
        except CatalogueRefused as exc:
            self._catalogue_refused(f"{exc.reason}: {exc}", out)
            return
        if not self.catalogue_bytes(data, out) and \
                (self.catalogue_problem or "").startswith("storage"):
            self._catalogue_seen = None  # try again when it comes again

    def catalogue_bytes(self, data: bytes, out: list[Action]) -> bool:
        """Take the verified bytes of a catalogue document (the signature already
        checked: inline from the retained message today, fetched from a signed
        manifest's address later). True when it is now in use or already was."""
        assert self.catalogue is not None
        current: int | None = None
        try:
            doc = parse_catalogue(data)
            current = self.catalogue.catalogue_version()
            action = decide(doc, club=self.topics.club_id, merchant=self.topics.merchant_id,
                            current_version=current)
            if action == "skip":
                log.debug("catalogue version %d is already in use", doc.version)
                return True
            if action == "replace":
                count = self.catalogue.replace_catalogue(doc)
            else:
                count = self.catalogue.apply_changes(doc)
        except CatalogueRefused as exc:
            self._catalogue_refused(f"{exc.reason}: {exc}", out)
            return False
        except ClubtermError as exc:
            self._catalogue_refused(f"storage: {exc}", out)
            log.error("could not save the club's catalogue: %s", exc)
            return False
        log.info("catalogue version %d is in use: %d products (%s)", doc.version, count,
                 "a change set" if doc.is_delta else "whole")
        self.catalogue_problem = None
        out.append(Emit({"type": "catalogue", "version": doc.version, "products": count,
                         "problem": None}))
        return True

    def _catalogue_refused(self, problem: str, out: list[Action]) -> None:
        assert self.catalogue is not None
        log.warning("refused a catalogue: %s; the catalogue in use stays", problem)
        self.catalogue_problem = problem
        try:
            self.catalogue.save_problem(problem[:500])
            version = self.catalogue.catalogue_version()
        except ClubtermError as exc:
            log.error("could not save the catalogue's status: %s", exc)
            version = None
        out.append(Emit({"type": "catalogue", "version": version, "problem": problem}))

    # ---- members ----------------------------------------------------------------

    def on_change_set(self, payload: bytes, now: float, out: list[Action]) -> None:
        change = parse_change_set(payload)
        current = self.members.members_version()
        if change.to_version <= current:
            return  # already have it (a repeat, or older than a snapshot)
        # An overlapping set (from_version below ours) is applied record by record by
        # each record's version; only a gap needs a snapshot.
        if change.from_version <= current and self.members.apply_changes(change.raw):
            self.members_problem = None
            out.append(Emit({"type": "members", "version": change.to_version}))
            return
        log.info("member change set %d..%d does not follow version %d: fetching a snapshot",
                 change.from_version, change.to_version, current)
        self.request_snapshot(current, now)

    def request_snapshot(self, since: int, now: float, *, at_once: bool = False) -> None:
        """Fetch a snapshot ``since`` when the fetcher is free (at once if ``at_once``,
        else not before a failed one's backoff is over)."""
        if not self.snapshots:
            self.members_problem = "member changes have a gap and no central_url is configured"
            return
        if self.snapshot_due is None:
            self.snapshot_since = since
            self.snapshot_due = now
        else:
            self.snapshot_since = min(self.snapshot_since, since)
            if at_once:
                self.snapshot_due = min(self.snapshot_due, now)

    def maybe_fetch(self, now: float, out: list[Action]) -> bool:
        """Start the due fetch (one at a time); True when one was started."""
        if self.snapshot_due is None or now < self.snapshot_due or self.fetching:
            return False
        since = self.snapshot_since
        self.snapshot_due = None
        self.fetching = True
        self.commands.snapshot_started(full=since == 0)
        log.info("fetching the member snapshot since %d", since)
        out.append(FetchSnapshot(since))
        return True

    def snapshot_done(self, outcome: SnapshotOutcome, now: float, out: list[Action]) -> None:
        self.fetching = False
        since = outcome.since
        if outcome.error is not None or outcome.version is None:
            error = outcome.error or "no version"
            if outcome.reason == "cancelled":
                self.commands.resync_running = []
                return
            self.snapshot_failures += 1
            ceiling = backoff_ceiling(self.snapshot_failures - 1, self.tuning.snapshot_retry_s,
                                      self.tuning.snapshot_retry_cap_s)
            delay = self.rng.uniform(ceiling / 2, ceiling)
            self.snapshot_since = (since if self.snapshot_due is None
                                   else min(since, self.snapshot_since))
            self.snapshot_due = now + delay
            log.warning("member snapshot since %d failed after %.1f s (attempt %d), trying again "
                        "in %.0f s: %s", since, outcome.seconds, self.snapshot_failures, delay,
                        error)
            self.members_problem = error
            self.commands.snapshot_finished({"ok": False, "detail": f"snapshot failed: {error}"},
                                            out)
            return
        version = outcome.version
        self.snapshot_failures = 0
        self.snapshots_done += 1
        if self.snapshot_due is not None and self.snapshot_since >= since:
            # Asked for again meanwhile (a gap seen during the fetch): what this one
            # brought need not come again.
            self.snapshot_since = max(self.snapshot_since, version)
        log.info("member snapshot since %d: now at version %d (%.1f s)", since, version,
                 outcome.seconds)
        self.members_problem = None
        out.append(Emit({"type": "members", "version": version, "snapshot": True}))
        self.commands.snapshot_finished({"ok": True, "detail": f"members version {version}"},
                                        out)

    def next_due(self) -> float | None:
        """When a snapshot or document fetch falls due (None: none waits)."""
        dues = [d for d in (None if self.fetching else self.snapshot_due,
                            self.documents.next_due()) if d is not None]
        return min(dues) if dues else None


def load_document(document: bytes) -> dict[str, Any]:
    """A fetched document's envelope: a JSON object (its size was capped by the fetch)."""
    try:
        doc = json.loads(document.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise MessageError(f"not UTF-8 JSON: {exc}") from None
    except RecursionError:
        raise MessageError("nested too deeply to read") from None
    if not isinstance(doc, dict):
        raise MessageError("not a JSON object")
    return doc
