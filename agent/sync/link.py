"""The terminal's link to the club: ``protocol.md`` over MQTT (paho-mqtt 2.x) and HTTPS.

Three parts: :class:`agent.sync.core.LinkCore`, the protocol as a pure state
machine (inputs in, typed actions out); :class:`agent.sync.session.MqttSession`,
whose paho callbacks only convert and enqueue, reconnecting with jittered
backoff on its own thread; and this shell, :class:`ClubLink`, whose one worker
thread feeds the core what arrives and performs the actions it returns in
order. The worker owns the core, so the link's state has one writer and no
blocking work runs on the network thread.

Member snapshots are fetched on a thread of their own (one at a time, with a
deadline and caps, :mod:`agent.sync.snapshot`), whose outcome goes back to the
core through the worker: acks and sales keep flowing while a snapshot downloads.
The worker's loop beats a heartbeat (:meth:`ClubLink.heartbeat`); the daemon
stops feeding the systemd watchdog when it is older than ``stall_limit_s``, so a
stuck link gets the agent restarted rather than hidden.
"""

from __future__ import annotations

import logging
import queue
import random
import secrets
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt

from agent import __version__
from agent.config import Config
from agent.errors import ClubtermError, LinkError
from agent.staff import offline_only
from agent.sync.actions import (
    Action,
    CancelDocument,
    Emit,
    FetchDocument,
    FetchSnapshot,
    MarkSent,
    Publish,
    RecordAcks,
    Reject,
    SetLogLevel,
)
from agent.sync.core import LinkCore
from agent.sync.documents import DocumentOutcome
from agent.sync.download import DocumentClient, DocumentFailed
from agent.sync.messages import Manifest
from agent.sync.ports import (
    Bundles,
    CatalogueParts,
    Commands,
    LinkStore,
    Members,
    Outbox,
    RulesState,
    StaffRecords,
)
from agent.sync.session import Connected, ConnectFailed, Disconnected, Message, MqttSession
from agent.sync.snapshot import SnapshotClient, SnapshotFailed, club_tls_context
from agent.sync.topics import Topics
from agent.sync.tuning import LinkState, LinkTuning
from agent.sync.updates import SnapshotOutcome

log = logging.getLogger("agent.sync")

OnEvent = Callable[[dict[str, Any]], None]

__all__ = ["ClubLink", "LinkParts", "LinkState", "LinkTuning"]


@dataclass(frozen=True)
class LinkParts:
    """The store parts the link uses, each behind its own small Protocol."""

    outbox: Outbox
    members: Members
    bundles: Bundles
    commands: Commands
    records: StaffRecords
    # None: a store without a catalogue (the link then ignores the club's).
    catalogue: CatalogueParts | None = None

    @classmethod
    def of_store(cls, store: LinkStore | LinkParts) -> LinkParts:
        """The parts of one :class:`agent.offline_queue.Store` (the one place they are wired)."""
        if isinstance(store, LinkParts):
            return store
        return cls(outbox=store.outbox, members=store.members, bundles=store.bundles,
                   commands=store.commands, records=store.records,
                   catalogue=store.catalogue)


# ---- what the worker's queue carries besides the session's events ---------------

@dataclass(frozen=True)
class _Wake:
    pass


@dataclass(frozen=True)
class _Readers:
    readers: list[dict[str, Any]]


@dataclass(frozen=True)
class _Printer:
    printer: dict[str, Any] | None


@dataclass(frozen=True)
class _Resync:
    pass


@dataclass(frozen=True)
class _Stop:
    done: threading.Event = field(default_factory=threading.Event)


class ClubLink:
    """The terminal side of the club protocol.

    ``store`` is the :class:`agent.offline_queue.Store` (or its :class:`LinkParts`),
    ``bundle_state`` the :class:`agent.rules.BundleState` the sale path quotes
    from, and ``on_event`` is called (from the link's worker thread) with
    ``{"type": "link" | "rules" | "members" | "queue" | "staff" | "catalogue", ...}``
    notifications for the local API.
    """

    def __init__(self, config: Config, store: LinkStore | LinkParts, bundle_state: RulesState,
                 on_event: OnEvent | None = None, *, tuning: LinkTuning | None = None,
                 agent_version: str = __version__, rng: random.Random | None = None):
        if not config.broker_url:
            raise LinkError("no broker_url is configured; enrol the terminal first")
        self.config = config
        self.parts = LinkParts.of_store(store)
        self.on_event = on_event
        self.tuning = tuning or LinkTuning.from_config(config)
        self.topics = Topics(config.club_id, config.terminal_id, config.merchant_id,
                             config.member_scope)
        self.offline_only = offline_only(config.raw)  # local staff survive a club list
        rng = rng or random.Random(secrets.randbits(64))
        self.snapshots = (SnapshotClient(config.central_url, config.club_id, config.ca_file,
                                         config.cert_file, config.key_file,
                                         self.tuning.snapshot_timeout_s,
                                         self.tuning.snapshot_limits(),
                                         scope=config.member_scope)
                          if config.central_url else None)
        self.documents = (DocumentClient(config.central_url, config.ca_file, config.cert_file,
                                         config.key_file, self.tuning.document_limits())
                          if config.central_url else None)
        p = self.parts
        self.core = LinkCore(self.topics, self.tuning, outbox=p.outbox, members=p.members,
                             bundles=p.bundles, commands=p.commands, records=p.records,
                             rules=bundle_state, snapshots=self.snapshots is not None,
                             offline_only=self.offline_only,
                             agent_version=agent_version, rng=rng, catalogue=p.catalogue)
        self.counters = self.core.counters
        self._jobs: queue.Queue[Any] = queue.Queue()
        self.session = MqttSession(config.broker_urls or config.broker_url,
                                   f"clubterm-{config.terminal_id}",
                                   self.topics, self.tuning, self._jobs, tls=self._tls_context,
                                   allow_plain=config.allow_plain, rng=rng,
                                   mqtt_version=config.mqtt_version)
        self._worker: threading.Thread | None = None
        self._fetch: threading.Thread | None = None
        self._fetch_cancel = threading.Event()
        # Document fetches (one per kind at a time), each with its own cancel.
        self._downloads: dict[str, tuple[threading.Thread, threading.Event]] = {}
        self._wake_queued = threading.Event()
        self._started = False
        self._heartbeat = time.monotonic()

    # ---- public --------------------------------------------------------------

    @property
    def client(self) -> mqtt.Client:
        """The paho client (tests cut its socket)."""
        return self.session.client

    def start(self) -> None:
        """Connect in the background and start sending; returns at once."""
        if self._started:
            return
        self._started = True
        self._fetch_cancel.clear()
        self._perform(self.core.start(time.monotonic()))
        self._heartbeat = time.monotonic()
        self._worker = threading.Thread(target=self._work_loop, name="club-link", daemon=True)
        self._worker.start()
        self.session.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Say "offline" (retained), disconnect and stop the threads."""
        if not self._started:
            return
        self._started = False
        self._fetch_cancel.set()  # a snapshot being fetched is abandoned
        stop = _Stop()
        self._jobs.put(stop)
        stop.done.wait(timeout)
        if self._worker is not None:
            self._worker.join(timeout)
        fetch = self._fetch
        if fetch is not None:
            fetch.join(timeout)
        for thread, cancel in list(self._downloads.values()):
            cancel.set()
            thread.join(timeout)
        self.session.stop(timeout)

    def state(self) -> LinkState:
        """Online or not, since when, the last ack and the queue depth."""
        return self.core.state

    def status_payload(self) -> dict[str, Any]:
        """The retained status document (``protocol.md``, "Status")."""
        return self.core.status_payload()

    def rules_problem(self) -> str | None:
        """Why the newest rule bundle is not in use: a fetch by manifest that failed,
        else the last refusal (the status's ``rules_problem``)."""
        return self.core.updates.rules_problem()

    def heartbeat(self) -> float:
        """``time.monotonic()`` of the worker's last loop (at least once a second when healthy)."""
        return self._heartbeat

    def stalled(self, now: float | None = None) -> str | None:
        """Why the worker looks stuck (heartbeat older than ``stall_limit_s``), else None."""
        if not self._started:
            return None
        age = (time.monotonic() if now is None else now) - self._heartbeat
        if age <= self.tuning.stall_limit_s:
            return None
        return (f"the club link's worker has not run for {age:.0f} s "
                f"(limit {self.tuning.stall_limit_s:g} s)")

    def snapshot_running(self) -> bool:
        """Whether a member snapshot is being fetched right now."""
        fetch = self._fetch
        return fetch is not None and fetch.is_alive()

    def wake(self) -> None:
        """New events were appended: send them now rather than at the next tick."""
        if not self._wake_queued.is_set():
            self._wake_queued.set()
            self._jobs.put(_Wake())

    def set_readers(self, readers: list[dict[str, Any]]) -> None:
        """The readers' states for the status (``[{name, kind, state}]``)."""
        self._jobs.put(_Readers(list(readers)))

    def set_printer(self, printer: dict[str, Any] | None) -> None:
        """The receipt printer's state for the status (``{kind, state, detail}``)."""
        self._jobs.put(_Printer(None if printer is None else dict(printer)))

    def resync_members(self) -> None:
        """Fetch the full member snapshot in the background."""
        self._jobs.put(_Resync())

    # ---- the worker ----------------------------------------------------------

    def _work_loop(self) -> None:
        while True:
            jobs = self._next_jobs()
            self._heartbeat = time.monotonic()
            acks: list[bytes] = []
            for job in [*jobs, None]:
                # Acks that queued up together are recorded in one store transaction.
                if isinstance(job, Message) and job.topic == self.topics.acks:
                    acks.append(job.payload)
                    continue
                if acks:
                    self._perform(self.core.received_acks(acks, time.monotonic()))
                    acks = []
                if job is None:
                    break
                if isinstance(job, _Stop):
                    self._shutdown(job)
                    return
                self._perform(self._handle(job, time.monotonic()))
                self._heartbeat = time.monotonic()
            self._perform(self.core.tick(time.monotonic()))
            self._heartbeat = time.monotonic()

    def _next_jobs(self, most: int = 64) -> list[Any]:
        """The next job (waiting at most until the core's next deadline) and whatever
        else is queued already."""
        try:
            jobs = [self._jobs.get(timeout=self.core.next_wakeup(time.monotonic()))]
        except queue.Empty:
            return []
        while len(jobs) < most:
            try:
                jobs.append(self._jobs.get_nowait())
            except queue.Empty:
                break
        return jobs

    def _handle(self, job: object, now: float) -> list[Action]:
        core = self.core
        match job:
            case Message(topic=topic, payload=payload):
                return core.received(topic, payload, now)
            case Connected(broker=broker, session_present=present):
                return core.connected(now, broker=broker or None, session_present=present)
            case Disconnected(reason=reason):
                return core.disconnected(reason, now)
            case ConnectFailed(error=error):
                core.failed(error)
            case _Wake():
                self._wake_queued.clear()
                return core.wake(now)
            case _Readers(readers=readers):
                core.set_readers(readers)
            case _Printer(printer=printer):
                core.set_printer(printer)
            case _Resync():
                return core.resync(now)
            case SnapshotOutcome():
                fetch, self._fetch = self._fetch, None
                if fetch is not None:
                    fetch.join(1.0)  # it has put its outcome: it is ending
                return core.snapshot_done(job, now)
            case DocumentOutcome(manifest=manifest):
                # The core starts the next fetch of a kind only after this outcome.
                running = self._downloads.pop(manifest.kind, None)
                if running is not None:
                    running[0].join(1.0)  # it has put its outcome: it is ending
                return core.document_done(job, now)
        return []

    def _perform(self, actions: list[Action]) -> None:
        """Carry the core's actions out in order; one that fails is logged and shown."""
        for action in actions:
            try:
                self._do(action)
            except ClubtermError as exc:
                log.error("club link: %s", exc)
                self.core.failed(str(exc))
            except Exception:
                log.exception("club link: unexpected error")

    def _do(self, action: Action) -> mqtt.MQTTMessageInfo | None:
        outbox = self.parts.outbox
        match action:
            case Publish(topic=topic, payload=payload, qos=qos, retain=retain):
                return self.session.publish(topic, payload, qos, retain)
            case RecordAcks(accepted=accepted, applied_seq=applied):
                outbox.apply_ack(list(accepted), [], applied)
            case Reject(rejected=rejected):
                outbox.apply_ack([], list(rejected), None)
            case MarkSent(ids=ids):
                outbox.mark_sent(list(ids))
            case FetchSnapshot(since=since):
                self._fetch = threading.Thread(target=self._fetch_snapshot, args=(since,),
                                               name="club-snapshot", daemon=True)
                self._fetch.start()
            case FetchDocument(manifest=manifest):
                self._start_download(manifest)
            case CancelDocument(kind=kind):
                running = self._downloads.get(kind)
                if running is not None:
                    running[1].set()
            case Emit(event=event):
                if self.on_event is not None:
                    self.on_event(event)
            case SetLogLevel(level=level):
                logging.getLogger().setLevel(level)
        return None

    def _shutdown(self, stop: _Stop) -> None:
        for action in self.core.stopping(time.monotonic()):
            try:
                info = self._do(action)
                if info is not None:
                    info.wait_for_publish(2.0)  # the retained "offline"
            except (RuntimeError, ValueError):
                pass
            except Exception:
                log.exception("club link: stopping")
        stop.done.set()

    # ---- member snapshots ------------------------------------------------------

    def _fetch_snapshot(self, since: int) -> None:
        """The snapshot thread: fetch into the store, then hand the outcome to the worker."""
        assert self.snapshots is not None
        started = time.monotonic()
        version: int | None = None
        error: str | None = None
        reason: str | None = None
        try:
            version = self.snapshots.fetch_into(self.parts.members, since,
                                                cancel=self._fetch_cancel)
        except SnapshotFailed as exc:
            error, reason = str(exc), exc.reason
        except ClubtermError as exc:
            error = str(exc)
        except Exception as exc:
            # A bug must not leave the link waiting for this fetch for ever.
            log.exception("member snapshot: unexpected error")
            error = f"unexpected error: {exc.__class__.__name__}"
        self._jobs.put(SnapshotOutcome(since, time.monotonic() - started, version, error, reason))

    # ---- documents named by manifests -------------------------------------------

    def _start_download(self, manifest: Manifest) -> None:
        cancel = threading.Event()
        thread = threading.Thread(target=self._download, args=(manifest, cancel),
                                  name=f"club-{manifest.kind}", daemon=True)
        self._downloads[manifest.kind] = (thread, cancel)
        thread.start()

    def _download(self, manifest: Manifest, cancel: threading.Event) -> None:
        """A document thread: fetch and check, then hand the outcome to the worker."""
        started = time.monotonic()
        document: bytes | None = None
        error: str | None = None
        reason: str | None = None
        try:
            if self.documents is None:
                raise DocumentFailed("unreachable", "no central_url is configured")
            document = self.documents.fetch(manifest, cancel=cancel)
        except DocumentFailed as exc:
            error, reason = str(exc), exc.reason
        except ClubtermError as exc:
            error = str(exc)
        except Exception as exc:
            log.exception("%s fetch: unexpected error", manifest.kind)
            error = f"unexpected error: {exc.__class__.__name__}"
        self._jobs.put(DocumentOutcome(manifest, time.monotonic() - started, document, error,
                                       reason))

    def _tls_context(self) -> ssl.SSLContext:
        cfg = self.config
        return club_tls_context(cfg.ca_file, cfg.cert_file, cfg.key_file)
