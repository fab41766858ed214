"""The terminal's link to the club: ``protocol.md`` over MQTT (paho-mqtt 2.x) and HTTPS.

Threads: paho's network thread only moves bytes and turns callbacks into jobs on
a queue; one worker thread owns everything else (the store, the batches in
flight, status, rules, members, commands), so no blocking work runs on the
network thread and the link's state has one writer.

Sending: the worker keeps up to ``max_inflight_batches`` batches (≤ 500 events,
≤ 256 KiB) in flight, taken from the store in ``seq`` order. Only an ack naming
an event removes it from the send list (``Store.apply_ack``); a batch whose ack
does not come within ``ack_timeout_s``, or every batch when the connection
drops, is simply offered again.

Reconnecting: exponential backoff with full jitter (:mod:`agent.sync.backoff`);
the session is persistent (MQTT 5, clean start off, session expiry 8 days) so
change sets published while the terminal was away wait for it at the broker.

Member snapshots are fetched on a thread of their own (one at a time, with a
deadline and caps, :mod:`agent.sync.snapshot`), which hands its outcome back to
the worker as a job: acks and sales keep flowing while a snapshot downloads. The
worker's loop beats a heartbeat (:meth:`ClubLink.heartbeat`); the daemon stops
feeding the systemd watchdog when it is older than ``stall_limit_s``, so a stuck
link gets the agent restarted rather than hidden.
"""

from __future__ import annotations

import json
import logging
import math
import os
import queue
import random
import secrets
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from agent import __version__
from agent.config import LOG_LEVELS, Config
from agent.errors import ClubtermError, LinkError
from agent.offline_queue.store import EncodedBatch
from agent.staff import offline_only
from agent.staff.staff_list import StaffList, StaffListRefused, accept_staff_list, load_envelope
from agent.sync.backoff import backoff_ceiling, full_jitter_delay
from agent.sync.messages import (
    MAX_PAYLOAD,
    Command,
    MessageError,
    parse_ack,
    parse_change_set,
    parse_command,
    parse_envelope,
)
from agent.sync.outflight import Outflight
from agent.sync.snapshot import SnapshotClient, SnapshotFailed, SnapshotLimits, club_tls_context
from agent.sync.topics import Topics

log = logging.getLogger("agent.sync")

OnEvent = Callable[[dict[str, Any]], None]


class LinkOutbox(Protocol):
    """What the link needs of :class:`agent.offline_queue.Outbox`."""

    def next_batch(self, max_events: int = 500, max_bytes: int = 262144,
                   exclude_ids: Iterable[str] = ()) -> list[dict[str, Any]]: ...
    def next_batch_encoded(self, batch_id: str, terminal_id: str, max_events: int = 500,
                           max_bytes: int = 262144,
                           exclude_ids: Iterable[str] = (), *,
                           after_seq: int = 0) -> EncodedBatch | None: ...
    def mark_sent(self, ids: list[str]) -> None: ...
    def apply_ack(self, accepted: list[str], rejected: list[tuple[str, str]],
                  applied_seq: int | None) -> Any: ...
    def queue_stats(self) -> Any: ...


class LinkMembers(Protocol):
    """What the link needs of :class:`agent.offline_queue.MemberCache`."""

    def members_version(self) -> int: ...
    def apply_changes(self, change: dict[str, Any]) -> bool: ...
    def import_snapshot(self, lines: Iterable[bytes | str], version: int, full: bool) -> Any: ...


class LinkBundles(Protocol):
    """What the link needs of :class:`agent.offline_queue.Bundles`."""

    def save_bundle(self, envelope: dict[str, Any], version: int) -> None: ...
    def current_bundle(self) -> dict[str, Any] | None: ...
    def save_refused_bundle(self, envelope: dict[str, Any], reason: str) -> None: ...


class LinkCommands(Protocol):
    """What the link needs of :class:`agent.offline_queue.CommandResults`."""

    def command_result(self, command_id: str) -> dict[str, Any] | None: ...
    def begin_command(self, command_id: str, command_type: str) -> dict[str, Any] | None: ...
    def interrupt_running_commands(self) -> list[dict[str, Any]]: ...
    def save_command_result(self, command_id: str,
                            result: dict[str, Any]) -> dict[str, Any]: ...


class LinkRecords(Protocol):
    """What the link needs of :class:`agent.offline_queue.LocalRecords`."""

    def staff_list_version(self) -> int | None: ...
    def replace_club_staff(self, staff_list: StaffList, envelope: Mapping[str, Any], *,
                           keep_local: bool) -> dict[str, Any]: ...


class LinkStore(Protocol):
    """The parts of :class:`agent.offline_queue.Store` the link uses."""

    @property
    def outbox(self) -> LinkOutbox: ...
    @property
    def members(self) -> LinkMembers: ...
    @property
    def bundles(self) -> LinkBundles: ...
    @property
    def commands(self) -> LinkCommands: ...
    @property
    def records(self) -> LinkRecords: ...


class RulesState(Protocol):
    """What the link needs of :class:`agent.rules.BundleState`."""

    @property
    def version(self) -> int | None: ...
    @property
    def trusted(self) -> Mapping[str, Any]: ...  # the club's signing keys (staff lists too)
    def problem(self) -> str | None: ...
    def offer(self, envelope: Mapping[str, Any], now: datetime) -> bool: ...
    def restore(self, envelope: Mapping[str, Any]) -> Any: ...


@dataclass(frozen=True)
class LinkState:
    """The link as the rest of the agent sees it."""

    online: bool
    since: datetime | None  # when it last went online or offline
    last_ack_at: datetime | None
    pending: int  # events not yet acked (queue depth)
    in_flight: int = 0  # batches waiting for an ack
    last_error: str | None = None
    members_problem: str | None = None  # why the last member snapshot failed, until one works

    def to_dict(self) -> dict[str, Any]:
        return {"online": self.online, "since": _iso(self.since),
                "last_ack_at": _iso(self.last_ack_at), "pending": self.pending,
                "in_flight": self.in_flight, "last_error": self.last_error,
                "members_problem": self.members_problem}


@dataclass(frozen=True)
class LinkTuning:
    """Timings and sizes; defaults suit a shop, tests shorten them.

    Each can be set in the configuration's ``[club]`` table under the same name.
    """

    keepalive_s: int = 30
    reconnect_base_s: float = 1.0
    reconnect_cap_s: float = 120.0
    ack_timeout_s: float = 30.0
    max_inflight_batches: int = 8
    max_batch_events: int = 500
    max_batch_bytes: int = MAX_PAYLOAD
    status_interval_s: float = 300.0
    status_min_gap_s: float = 1.0
    session_expiry_s: int = 8 * 24 * 3600
    snapshot_retry_s: float = 30.0  # the first retry of a failed snapshot; doubles each time
    snapshot_retry_cap_s: float = 900.0  # ... up to this
    snapshot_timeout_s: float = 60.0  # one read of the snapshot
    snapshot_deadline_s: float = 600.0  # the whole snapshot, import into the store included
    snapshot_max_bytes: int = 1024 * 1024 * 1024
    snapshot_max_records: int = 2_000_000
    snapshot_max_line: int = 1024 * 1024
    # The worker's heartbeat older than this stops the systemd watchdog pings (≥ 3 s:
    # an idle worker beats once a second).
    stall_limit_s: float = 30.0

    def snapshot_limits(self, io_timeout_s: float | None = None) -> SnapshotLimits:
        """The member snapshot's limits (one read at most ``io_timeout_s`` if given)."""
        return SnapshotLimits(deadline_s=self.snapshot_deadline_s,
                              max_bytes=self.snapshot_max_bytes,
                              max_records=self.snapshot_max_records,
                              max_line=self.snapshot_max_line,
                              io_timeout_s=io_timeout_s or self.snapshot_timeout_s)

    @classmethod
    def from_config(cls, config: Config) -> LinkTuning:
        """Defaults, overridden by keys of the configuration's ``[club]`` table."""
        club = config.raw.get("club", {}) if isinstance(config.raw, Mapping) else {}
        values: dict[str, Any] = {}
        defaults = cls()
        for name in cls.__dataclass_fields__:
            if name in club:
                value = club[name]
                kind = type(getattr(defaults, name))
                if kind is float and isinstance(value, int) and not isinstance(value, bool):
                    value = float(value)
                if not isinstance(value, kind) or isinstance(value, bool) or value <= 0:
                    raise LinkError(f"[club] {name} must be a positive {kind.__name__}")
                values[name] = value
        if values.get("stall_limit_s", defaults.stall_limit_s) < _MIN_STALL_LIMIT_S:
            # An idle worker beats once a tick (up to 1 s): less would restart a healthy agent.
            raise LinkError(f"[club] stall_limit_s must be at least {_MIN_STALL_LIMIT_S:g} s")
        return cls(**values)


class _JitterClient(mqtt.Client):
    """paho's client, waiting between reconnects with full jitter instead of plain doubling.

    paho's network thread calls ``_reconnect_wait`` before each reconnect; its own
    ``reconnect_delay_set`` has no jitter, so a fleet reconnects in waves.
    """

    delay_for_next_attempt: Callable[[], float] = staticmethod(lambda: 1.0)

    def _reconnect_wait(self) -> None:
        deadline = time.monotonic() + self.delay_for_next_attempt()
        while not self._thread_terminate:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, 0.2))


@dataclass
class _Job:
    kind: str
    topic: str = ""
    payload: bytes = b""
    data: dict[str, Any] = field(default_factory=dict)


class ClubLink:
    """The terminal side of the club protocol.

    ``store`` is the :class:`agent.offline_queue.Store`, ``bundle_state`` the
    :class:`agent.rules.BundleState` the sale path quotes from, and ``on_event``
    is called (from the link's worker thread) with ``{"type": "link", ...}``,
    ``{"type": "rules", ...}``, ``{"type": "members", ...}`` and
    ``{"type": "queue", ...}`` notifications for the local API.
    """

    def __init__(self, config: Config, store: LinkStore, bundle_state: RulesState,
                 on_event: OnEvent | None = None, *, tuning: LinkTuning | None = None,
                 agent_version: str = __version__, rng: random.Random | None = None):
        if not config.broker_url:
            raise LinkError("no broker_url is configured; enrol the terminal first")
        self.config = config
        self.store = store
        self.bundle_state = bundle_state
        self.on_event = on_event
        self.tuning = tuning or LinkTuning.from_config(config)
        self.agent_version = agent_version
        self.topics = Topics(config.club_id, config.terminal_id, config.merchant_id)
        self.offline_only = offline_only(config.raw)
        self._staff_problem: str | None = None
        self._staff_seen: tuple[Any, ...] | None = None
        self._rng = rng or random.Random(secrets.randbits(64))
        self._jobs: queue.Queue[_Job] = queue.Queue()
        self._lock = threading.Lock()
        self._state = LinkState(False, None, None, 0)
        self._outflight = Outflight(self.tuning.max_inflight_batches, self.tuning.ack_timeout_s)
        self._attempt = 0
        self._worker: threading.Thread | None = None
        self._started = False
        self._wake_queued = threading.Event()
        self._online = False
        self._readers: list[dict[str, Any]] = []
        self._last_status_key: str | None = None
        self._last_status_at = 0.0
        self._status_wanted = False
        self._status_dirty = False
        self._stats: Any = None
        self._pending_stale = False
        self._pending_at = 0.0
        # Acks and "sent" marks not yet written to the store (see _flush_store_writes).
        self._acked_unflushed: list[str] = []
        self._applied_unflushed: int | None = None
        self._flush_due: float | None = None
        # Every waiting event with a seq up to this is in flight or acked (batches go
        # out in seq order); back to 0 when a batch is dropped. Saves the store
        # stepping over thousands of in-flight ids for every batch.
        self._send_cursor = 0
        self._snapshot_due: float | None = None
        self._snapshot_since: int = 0
        self._snapshot_failures = 0
        self._snapshot_thread: threading.Thread | None = None
        self._snapshot_cancel = threading.Event()
        # resync_members commands waiting for the next full snapshot / the running one.
        self._resync_waiting: list[str] = []
        self._resync_running: list[str] = []
        self._interrupted: list[dict[str, Any]] = []
        self._heartbeat = time.monotonic()
        self._members_problem: str | None = None
        self._recent_rejections: list[dict[str, str]] = []
        self._last_refused: tuple[Any, ...] | None = None
        self.counters: dict[str, int] = {"batches_sent": 0, "events_sent": 0, "acks": 0,
                                         "ack_timeouts": 0, "dropped_messages": 0,
                                         "connects": 0, "snapshots": 0}
        self.snapshots = (SnapshotClient(config.central_url, config.club_id, config.ca_file,
                                         config.cert_file, config.key_file,
                                         self.tuning.snapshot_timeout_s,
                                         self.tuning.snapshot_limits())
                          if config.central_url else None)
        self.client = self._make_client()

    # ---- public --------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background and start sending; returns at once."""
        if self._started:
            return
        self._started = True
        self._snapshot_cancel.clear()
        self._restore_bundle()
        # Commands left running by an agent that died: answered "interrupted" once
        # online, never run again (docs/sync.md, "Commands").
        self._interrupted = self.store.commands.interrupt_running_commands()
        for result in self._interrupted:
            log.warning("command %s was running when the agent stopped: answered "
                        "interrupted", result["id"])
        self._refresh_pending()
        self._heartbeat = time.monotonic()
        self._worker = threading.Thread(target=self._work_loop, name="club-link", daemon=True)
        self._worker.start()
        u = urlsplit(self.config.broker_url or "")
        default_port = 8883 if u.scheme == "mqtts" else 1883
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self.tuning.session_expiry_s
        self.client.connect_async(u.hostname or "localhost", u.port or default_port,
                                  keepalive=self.tuning.keepalive_s, clean_start=False,
                                  properties=props)
        self.client.loop_start()
        if self.snapshots is not None and self.store.members.members_version() == 0:
            self._jobs.put(_Job("snapshot", data={"since": 0}))  # a newly provisioned terminal

    def stop(self, timeout: float = 10.0) -> None:
        """Say "offline" (retained), disconnect and stop the threads."""
        if not self._started:
            return
        self._started = False
        self._snapshot_cancel.set()  # a snapshot being fetched is abandoned
        done = threading.Event()
        self._jobs.put(_Job("stop", data={"done": done}))
        done.wait(timeout)
        if self._worker is not None:
            self._worker.join(timeout)
        fetch = self._snapshot_thread
        if fetch is not None:
            fetch.join(timeout)
        self.client.disconnect()
        self.client.loop_stop()

    def state(self) -> LinkState:
        """Online or not, since when, the last ack and the queue depth."""
        with self._lock:
            return self._state

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
        fetch = self._snapshot_thread
        return fetch is not None and fetch.is_alive()

    def wake(self) -> None:
        """New events were appended: send them now rather than at the next tick."""
        if not self._wake_queued.is_set():
            self._wake_queued.set()
            self._jobs.put(_Job("wake"))

    def set_readers(self, readers: list[dict[str, Any]]) -> None:
        """The readers' states for the status (``[{name, kind, state}]``)."""
        self._jobs.put(_Job("readers", data={"readers": list(readers)}))

    def resync_members(self) -> None:
        """Fetch the full member snapshot in the background."""
        self._jobs.put(_Job("snapshot", data={"since": 0}))

    # ---- the MQTT client -----------------------------------------------------

    def _make_client(self) -> _JitterClient:
        cfg = self.config
        u = urlsplit(cfg.broker_url or "")
        client = _JitterClient(CallbackAPIVersion.VERSION2,
                               client_id=f"clubterm-{cfg.terminal_id}", protocol=mqtt.MQTTv5)
        client.delay_for_next_attempt = self._next_delay
        if u.scheme == "mqtts":
            client.tls_set_context(self._tls_context())
        elif not cfg.allow_plain:
            raise LinkError(f"{cfg.broker_url} is not TLS and [club] allow_plain is not set")
        client.will_set(self.topics.status, json.dumps({"state": "offline"}), qos=1, retain=True)
        client.max_inflight_messages_set(max(20, 2 * self.tuning.max_inflight_batches + 8))
        client.max_queued_messages_set(0)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    def _tls_context(self) -> ssl.SSLContext:
        cfg = self.config
        return club_tls_context(cfg.ca_file, cfg.cert_file, cfg.key_file)

    def _next_delay(self) -> float:
        delay = full_jitter_delay(self._attempt, self.tuning.reconnect_base_s,
                                  self.tuning.reconnect_cap_s, self._rng)
        self._attempt += 1
        log.info("reconnecting to the club in %.1f s (attempt %d)", delay, self._attempt)
        return delay

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                    properties: Any) -> None:
        if reason.is_failure:
            self._set_error(f"the broker refused the connection: {reason}")
            return
        self._attempt = 0
        client.subscribe([(t, 1) for t in self.topics.subscriptions()])
        self._jobs.put(_Job("connected", data={"session_present": flags.session_present}))

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        # TCP or TLS failed before MQTT began (broker down, certificate refused).
        self._set_error("cannot reach the club broker (TCP or TLS failed)")

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                       properties: Any) -> None:
        self._jobs.put(_Job("disconnected", data={"reason": str(reason)}))

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        self._jobs.put(_Job("message", topic=msg.topic, payload=bytes(msg.payload)))

    # ---- the worker ----------------------------------------------------------

    def _work_loop(self) -> None:
        while True:
            jobs = self._next_jobs()
            self._heartbeat = time.monotonic()
            acks: list[bytes] = []
            for job in [*jobs, None]:
                # Acks that queued up together are recorded in one store transaction.
                if job is not None and job.kind == "message" and job.topic == self.topics.acks:
                    acks.append(job.payload)
                    continue
                if acks:
                    self._guarded(self._on_acks, acks)
                    acks = []
                if job is None:
                    break
                if job.kind == "stop":
                    self._shutdown(job)
                    return
                self._guarded(self._handle, job)
                self._heartbeat = time.monotonic()
            self._guarded(self._housekeeping)
            self._heartbeat = time.monotonic()

    def _next_jobs(self, most: int = 64) -> list[_Job]:
        """The next job (waiting at most one tick) and whatever else is queued already."""
        try:
            jobs = [self._jobs.get(timeout=self._tick())]
        except queue.Empty:
            return []
        while len(jobs) < most:
            try:
                jobs.append(self._jobs.get_nowait())
            except queue.Empty:
                break
        return jobs

    def _guarded(self, fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except ClubtermError as exc:
            log.error("club link: %s", exc)
            self._set_error(str(exc))
        except Exception:
            # A bug must not stop the link: log it and carry on with the next job.
            log.exception("club link: unexpected error")

    def _tick(self) -> float:
        waits = [1.0]
        deadline = self._outflight.next_deadline()
        if deadline is not None:
            waits.append(deadline - time.monotonic())
        if self._snapshot_due is not None and self._snapshot_thread is None:
            waits.append(self._snapshot_due - time.monotonic())
        if self._pending_stale:
            waits.append(self._pending_at + _PENDING_REFRESH_S - time.monotonic())
        if self._flush_due is not None:
            waits.append(self._flush_due - time.monotonic())
        return max(0.01, min(waits))

    def _handle(self, job: _Job) -> None:
        if job.kind == "wake":
            self._wake_queued.clear()
            self._refresh_pending()
        elif job.kind == "connected":
            self._went_online()
        elif job.kind == "disconnected":
            self._went_offline(job.data.get("reason", ""))
        elif job.kind == "message":
            self._on_club_message(job.topic, job.payload)
        elif job.kind == "snapshot":
            self._request_snapshot(int(job.data["since"]), now=True)
        elif job.kind == "snapshot_done":
            self._snapshot_done(job.data)
        elif job.kind == "readers":
            self._readers = job.data["readers"]
            self._status_dirty = True

    def _housekeeping(self) -> None:
        now = time.monotonic()
        if self._flush_due is not None and now >= self._flush_due:
            self._flush_store_writes()
        if self._online:
            late = self._outflight.expire(now)
            if late:
                self._send_cursor = 0  # their events are sent again, from the start
                self._schedule_flush()  # their "sent" marks
                self.counters["ack_timeouts"] += len(late)
                log.warning("no ack for %d batch(es) within %.0f s; sending them again",
                            len(late), self.tuning.ack_timeout_s)
            self._fill_window()
        if self._pending_stale and (not self._outflight.batches
                                    or now - self._pending_at >= _PENDING_REFRESH_S):
            self._refresh_pending()
        if self._snapshot_due is not None and now >= self._snapshot_due \
                and self._snapshot_thread is None and self._started:
            self._start_snapshot()
        self._maybe_status()

    def _shutdown(self, job: _Job) -> None:
        self._guarded(lambda: self._flush_store_writes(final=True))
        if self._online:
            info = self.client.publish(self.topics.status, json.dumps(
                {"state": "offline", "at": _iso(_now())}), qos=1, retain=True)
            try:
                info.wait_for_publish(2.0)
            except (RuntimeError, ValueError):
                pass
        done = job.data.get("done")
        if isinstance(done, threading.Event):
            done.set()

    # ---- state ---------------------------------------------------------------

    def _update_state(self, **changes: Any) -> LinkState:
        with self._lock:
            fields = self._state.__dict__ | changes
            self._state = LinkState(**fields)
            return self._state

    def _emit(self, event: dict[str, Any]) -> None:
        if self.on_event is None:
            return
        try:
            self.on_event(event)
        except Exception:
            log.exception("club link: the on_event callback failed")

    def _set_error(self, text: str) -> None:
        self._update_state(last_error=text)

    def _refresh_pending(self) -> None:
        stats = self.store.outbox.queue_stats()
        self._stats = stats
        self._pending_stale = False
        self._pending_at = time.monotonic()
        self._status_dirty = True
        old = self.state().pending
        self._update_state(pending=int(stats.pending))
        if int(stats.pending) != old:
            self._emit({"type": "queue", "pending": int(stats.pending),
                        "rejected": int(stats.rejected)})

    def _went_online(self) -> None:
        self.counters["connects"] += 1
        self._online = True
        self._outflight.clear()  # whatever was in flight before is sent again
        self._send_cursor = 0
        self._schedule_flush()  # their "sent" marks
        state = self._update_state(online=True, since=_now(), last_error=None, in_flight=0)
        log.info("connected to the club broker")
        self._emit({"type": "link", **state.to_dict()})
        self._status_wanted = True
        for result in self._interrupted:
            self.client.publish(self.topics.command_results, json.dumps(result), qos=1)
        self._interrupted = []
        self._refresh_pending()

    def _went_offline(self, reason: str) -> None:
        if not self._online:
            return
        self._online = False
        self._outflight.clear()
        self._send_cursor = 0
        self._schedule_flush()  # their "sent" marks
        state = self._update_state(online=False, since=_now(), in_flight=0,
                                   last_error=f"disconnected: {reason}")
        log.warning("lost the club broker (%s)", reason)
        self._emit({"type": "link", **state.to_dict()})

    # ---- sending -------------------------------------------------------------

    def _fill_window(self) -> None:
        while self._online and self._outflight.can_send():
            skip = self._outflight.event_ids()
            skip.update(self._acked_unflushed)
            batch_id = uuid7_str()
            # The store hands over the stored JSON text as the finished payload:
            # no decoding and re-encoding of every event on the send path.
            batch = self.store.outbox.next_batch_encoded(
                batch_id, self.config.terminal_id, self.tuning.max_batch_events,
                self.tuning.max_batch_bytes - _BATCH_OVERHEAD, exclude_ids=skip,
                after_seq=self._send_cursor)
            if batch is None:
                if self._send_cursor:  # never let the cursor hide an event
                    self._send_cursor = 0
                    continue
                break
            if len(batch.payload) > MAX_PAYLOAD:
                # Only a single event over the limit gets here (the store cuts
                # batches to size); the slow path rejects it or splits.
                self._send_batch(json.loads(batch.payload)["events"])
            else:
                self._publish(batch_id, batch.ids, batch.payload)
            self._send_cursor = batch.last_seq  # published (or rejected as too large)
            self._schedule_flush()
        self._update_state(in_flight=len(self._outflight.batches))

    def _schedule_flush(self) -> None:
        if self._flush_due is None:
            self._flush_due = time.monotonic() + _STORE_FLUSH_S

    def _flush_store_writes(self, *, final: bool = False) -> None:
        """Write the acks and "sent" marks gathered in the last ``_STORE_FLUSH_S``.

        Each store write is a durable transaction (an fsync); one per batch would cap
        the drain rate. Deferring is safe: an event whose ack is lost in a crash is
        simply sent again and the club answers it as a duplicate; "sent" is
        bookkeeping only, written for batches unacked after ``_SENT_MARK_AFTER_S``
        or dropped (an accepted event is recorded as sent by ``apply_ack``).
        Rejections are written at once (they change balances).
        """
        self._flush_due = None
        acked, self._acked_unflushed = self._acked_unflushed, []
        applied, self._applied_unflushed = self._applied_unflushed, None
        due = math.inf if final else time.monotonic() - _SENT_MARK_AFTER_S
        sent = self._outflight.take_sent_marks(due)
        if acked or applied is not None:
            self.store.outbox.apply_ack(acked, [], applied)
            self._pending_stale = True
        if sent:
            self.store.outbox.mark_sent(sent)
        if self._outflight.has_unmarked():
            self._schedule_flush()

    def _send_batch(self, events: list[dict[str, Any]]) -> list[str]:
        """Publish one batch (split if over the size limit); returns the ids sent."""
        batch_id = uuid7_str()
        payload = encode_batch(batch_id, self.config.terminal_id, events)
        if len(payload) > MAX_PAYLOAD:
            if len(events) == 1:
                # One event over the message limit can never be delivered: keep it,
                # marked rejected with the reason, for the manager (docs/sync.md).
                log.error("event %s is %d bytes, over the 256 KiB limit; not sent",
                          events[0]["id"], len(payload))
                self.store.outbox.apply_ack([], [(events[0]["id"], "too_large")], None)
                return []
            half = len(events) // 2
            return self._send_batch(events[:half]) + self._send_batch(events[half:])
        ids = [e["id"] for e in events]
        self._publish(batch_id, ids, payload)
        return ids

    def _publish(self, batch_id: str, ids: list[str], payload: bytes) -> None:
        info = self.client.publish(self.topics.events, payload, qos=1)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            raise LinkError(f"publishing a batch failed: {mqtt.error_string(info.rc)}")
        self._outflight.add(batch_id, ids, time.monotonic(), len(payload))
        self.counters["batches_sent"] += 1
        self.counters["events_sent"] += len(ids)

    def _on_acks(self, payloads: list[bytes]) -> None:
        acks = []
        for payload in payloads:
            try:
                acks.append(parse_ack(payload))
            except MessageError as exc:
                self.counters["dropped_messages"] += 1
                log.warning("dropped an ack: %s", exc)
        if not acks:
            return
        applied = [a.applied_seq for a in acks if a.applied_seq is not None]
        if applied:
            self._applied_unflushed = max([*applied, self._applied_unflushed or 0])
        self._acked_unflushed += [i for a in acks for i in a.accepted]
        rejected = [r for a in acks for r in a.rejected]
        for ack in acks:
            self._outflight.on_ack(ack.batch, ack.accepted + [i for i, _ in ack.rejected])
            for event_id, reason in ack.rejected:
                log.warning("the club rejected event %s: %s", event_id, reason)
                self._recent_rejections.append({"id": event_id, "reason": reason})
        if rejected:
            self._flush_store_writes()
            self.store.outbox.apply_ack([], rejected, None)
        else:
            # Refill the window before writing anything: the club must not wait for
            # our fsync (acked events are left out of new batches until written).
            self._fill_window()
            if len(self._acked_unflushed) >= _FLUSH_MAX_IDS or not self._outflight.batches:
                # Nothing left to send, so no further ack is coming to share the
                # write with: record these now, so the queue depth is true at once.
                self._flush_store_writes()
            else:
                self._schedule_flush()
        self._recent_rejections = self._recent_rejections[-10:]
        self.counters["acks"] += len(acks)
        self._status_dirty = True
        self._update_state(last_ack_at=_now())
        # Counting the queue costs a query; during a drain once per 0.25 s is enough.
        self._pending_stale = True

    # ---- receiving -----------------------------------------------------------

    def _on_club_message(self, topic: str, payload: bytes) -> None:
        t = self.topics
        self._status_dirty = True
        try:
            if topic == t.acks:
                self._on_acks([payload])
            elif topic == t.member_changes:
                self._on_change_set(payload)
            elif topic == t.rules:
                self._on_rules(payload)
            elif topic == t.staff:
                self._on_staff(payload)
            elif topic == t.commands:
                self._on_command(parse_command(payload))
            else:
                log.debug("ignoring a message on %s", topic)
        except MessageError as exc:
            self.counters["dropped_messages"] += 1
            log.warning("dropped a message on %s: %s", topic, exc)

    def _on_rules(self, payload: bytes) -> None:
        if not payload:
            return  # a cleared retained message
        envelope = parse_envelope(payload)
        before = self.bundle_state.problem()
        if self.bundle_state.offer(envelope, _now()):
            version = self.bundle_state.version
            assert version is not None
            self.store.bundles.save_bundle(envelope, version)
            log.info("rule bundle version %d is now in use", version)
            self._emit({"type": "rules", "version": version, "problem": None})
            return
        problem = self.bundle_state.problem()
        key = (envelope.get("payload"), envelope.get("sig"), problem)
        if problem is not None and (problem != before or key != self._last_refused):
            self._last_refused = key
            reason = problem.split(":", 1)[0]
            self.store.bundles.save_refused_bundle(envelope, reason)
            log.warning("refused a rule bundle: %s", problem)
            self._emit({"type": "rules", "version": self.bundle_state.version,
                        "problem": problem})

    def _on_staff(self, payload: bytes) -> None:
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
            current = self.store.records.staff_list_version()
            staff_list = accept_staff_list(envelope, self.bundle_state.trusted,
                                           club=self.config.club_id,
                                           merchant=self.config.merchant_id,
                                           current_version=current)
            done = self.store.records.replace_club_staff(staff_list, envelope,
                                                 keep_local=self.offline_only)
        except StaffListRefused as exc:
            if exc.reason == "stale" and exc.version == current:
                log.debug("staff list version %s is already in force", current)
                return
            self._set_staff_problem(f"{exc.reason}: {exc}", current)
            log.warning("refused a staff list (%s): %s; the list in force (version %s) stays",
                        exc.reason, exc, current)
            return
        except ClubtermError as exc:
            self._staff_seen = None  # try again when it comes again
            self._set_staff_problem(f"storage: {exc}", current)
            log.error("could not save the club's staff list: %s", exc)
            return
        if staff_list.ignored:
            log.info("staff list version %d: permissions this agent does not know were "
                     "ignored: %s", staff_list.version, ", ".join(staff_list.ignored[:20]))
        log.info("staff list version %d is in force: %d staff, %d deactivated",
                 staff_list.version, done["staff"], len(done["deactivated"]))
        self._staff_problem = None
        self._emit({"type": "staff", "version": staff_list.version, "problem": None,
                    "deactivated": list(done["deactivated"])})

    def _set_staff_problem(self, problem: str, version: int | None) -> None:
        self._staff_problem = problem
        self._emit({"type": "staff", "version": version, "problem": problem})

    def _on_change_set(self, payload: bytes) -> None:
        change = parse_change_set(payload)
        current = self.store.members.members_version()
        if change.to_version <= current:
            return  # already have it (a repeat, or older than a snapshot)
        if change.from_version == current and self.store.members.apply_changes(change.raw):
            self._set_members_problem(None)
            self._emit({"type": "members", "version": change.to_version})
            return
        log.info("member change set %d..%d does not follow version %d: fetching a snapshot",
                 change.from_version, change.to_version, current)
        self._request_snapshot(current)

    def _request_snapshot(self, since: int, *, now: bool = False) -> None:
        """Fetch a snapshot ``since`` when the fetcher is free (at once if ``now``,
        else not before a failed one's backoff is over)."""
        if self.snapshots is None:
            self._set_members_problem(
                "member changes have a gap and no central_url is configured")
            return
        at = time.monotonic()
        if self._snapshot_due is None:
            self._snapshot_since = since
            self._snapshot_due = at
        else:
            self._snapshot_since = min(self._snapshot_since, since)
            if now:
                self._snapshot_due = min(self._snapshot_due, at)

    def _start_snapshot(self) -> None:
        """Start the fetch on its own thread; :meth:`_snapshot_done` gets the outcome."""
        since = self._snapshot_since
        self._snapshot_due = None
        if since == 0:
            self._resync_running, self._resync_waiting = self._resync_waiting, []
        self._status_dirty = True
        log.info("fetching the member snapshot since %d", since)
        self._snapshot_thread = threading.Thread(target=self._fetch_snapshot, args=(since,),
                                                 name="club-snapshot", daemon=True)
        self._snapshot_thread.start()

    def _fetch_snapshot(self, since: int) -> None:
        """The snapshot thread: fetch into the store, then hand the outcome to the worker."""
        assert self.snapshots is not None
        started = time.monotonic()
        data: dict[str, Any] = {"since": since, "version": None, "error": None, "reason": None}
        try:
            data["version"] = self.snapshots.fetch_into(self.store.members, since,
                                                        cancel=self._snapshot_cancel)
        except SnapshotFailed as exc:
            data["error"], data["reason"] = str(exc), exc.reason
        except ClubtermError as exc:
            data["error"] = str(exc)
        except Exception as exc:
            # A bug must not leave the link waiting for this fetch for ever.
            log.exception("member snapshot: unexpected error")
            data["error"] = f"unexpected error: {exc.__class__.__name__}"
        data["seconds"] = time.monotonic() - started
        self._jobs.put(_Job("snapshot_done", data=data))

    def _snapshot_done(self, data: dict[str, Any]) -> None:
        fetch, self._snapshot_thread = self._snapshot_thread, None
        if fetch is not None:
            fetch.join(1.0)  # it has put its last job: it is ending
        waiters, self._resync_running = self._resync_running, []
        since, seconds = int(data["since"]), float(data["seconds"])
        self._status_dirty = True
        error = data["error"]
        if error is not None:
            if data["reason"] == "cancelled":
                return
            self._snapshot_failures += 1
            ceiling = backoff_ceiling(self._snapshot_failures - 1, self.tuning.snapshot_retry_s,
                                      self.tuning.snapshot_retry_cap_s)
            delay = self._rng.uniform(ceiling / 2, ceiling)
            self._snapshot_since = (since if self._snapshot_due is None
                                    else min(since, self._snapshot_since))
            self._snapshot_due = time.monotonic() + delay
            log.warning("member snapshot since %d failed after %.1f s (attempt %d), trying again "
                        "in %.0f s: %s", since, seconds, self._snapshot_failures, delay, error)
            self._set_members_problem(str(error))
            self._answer_resyncs(waiters, {"ok": False, "detail": f"snapshot failed: {error}"})
            return
        version = int(data["version"])
        self._snapshot_failures = 0
        self.counters["snapshots"] += 1
        if self._snapshot_due is not None and self._snapshot_since >= since:
            # Asked for again meanwhile (a gap seen during the fetch): what this one
            # brought need not come again.
            self._snapshot_since = max(self._snapshot_since, version)
        log.info("member snapshot since %d: now at version %d (%.1f s)", since, version, seconds)
        self._set_members_problem(None)
        self._emit({"type": "members", "version": version, "snapshot": True})
        self._answer_resyncs(waiters, {"ok": True, "detail": f"members version {version}"})

    def _set_members_problem(self, problem: str | None) -> None:
        self._members_problem = problem
        if self.state().members_problem != problem:
            state = self._update_state(members_problem=problem)
            self._emit({"type": "link", **state.to_dict()})

    def _answer_resyncs(self, command_ids: list[str], answer: dict[str, Any]) -> None:
        for command_id in command_ids:
            self._answer_command(command_id, answer)

    # ---- commands ------------------------------------------------------------

    def _answer_command(self, command_id: str, answer: dict[str, Any]) -> None:
        """Record the final result (``state`` done or failed), then send it."""
        result = {"id": command_id, "state": "done" if answer.get("ok") else "failed", **answer}
        result = self.store.commands.save_command_result(command_id, result)
        self.client.publish(self.topics.command_results, json.dumps(result), qos=1)

    def _on_command(self, cmd: Command) -> None:
        # Recorded as running (durably) before it runs: if the agent dies meanwhile,
        # the next start answers it "interrupted" instead of running it again.
        prior = self.store.commands.begin_command(cmd.id, cmd.type)
        if prior is not None:
            if prior.get("state") == "running":
                log.info("command %s is running; answered when it is done", cmd.id)
                return
            log.info("command %s was answered before; sending the same answer", cmd.id)
            self.client.publish(self.topics.command_results, json.dumps(prior), qos=1)
            return
        if cmd.type == "resync_members" and self.snapshots is not None:
            # Answered when the snapshot is in: the fetch runs off this thread.
            log.info("command %s from the club: %s", cmd.id, cmd.type)
            if cmd.id not in self._resync_waiting + self._resync_running:
                self._resync_waiting.append(cmd.id)
                self._request_snapshot(0, now=True)
            return
        try:
            answer = self._run_command(cmd)
        except Exception as exc:  # a failed command is answered, not left running
            log.exception("command %s (%s) failed", cmd.id, cmd.type)
            answer = {"ok": False, "detail": f"the command failed: {exc}"}
        self._answer_command(cmd.id, answer)

    def _run_command(self, cmd: Command) -> dict[str, Any]:
        log.info("command %s from the club: %s", cmd.id, cmd.type)
        if cmd.type == "ping":
            return {"ok": True, "detail": "pong"}
        if cmd.type == "send_status":
            self._publish_status(force=True)
            return {"ok": True, "detail": "status sent"}
        if cmd.type == "set_log_level":
            level = cmd.args.get("level")
            if not isinstance(level, str) or level.lower() not in LOG_LEVELS:
                return {"ok": False, "detail": f"level must be one of {', '.join(LOG_LEVELS)}"}
            logging.getLogger().setLevel(level.upper())
            return {"ok": True, "detail": f"log level is now {level.lower()}"}
        if cmd.type == "resync_members":  # with a central_url: see _on_command
            return {"ok": False, "detail": "no central_url is configured"}
        return {"ok": False, "detail": f"unknown command type {cmd.type!r}"}

    # ---- status --------------------------------------------------------------

    def status_payload(self) -> dict[str, Any]:
        """The retained status document (``protocol.md``, "Status")."""
        stats = self._stats if self._stats is not None else self.store.outbox.queue_stats()
        oldest = getattr(stats, "oldest_at", None)
        state = self.state()
        return {
            "state": "online", "at": _iso(_now()), "agent_version": self.agent_version,
            "rules_version": self.bundle_state.version,
            "rules_problem": self.bundle_state.problem(),
            "members_version": self.store.members.members_version(),
            "members_problem": self._members_problem,
            "staff_version": self.store.records.staff_list_version(),
            "staff_problem": self._staff_problem,
            "queue": {"pending": int(stats.pending),
                      "oldest_at": oldest if isinstance(oldest, str | None) else _iso(oldest),
                      "rejected": int(stats.rejected),
                      "recent_rejections": list(self._recent_rejections)},
            "readers": list(self._readers),
            "link": {"in_flight": state.in_flight, "last_ack_at": _iso(state.last_ack_at),
                     "ack_timeouts": self.counters["ack_timeouts"]},
        }

    def _maybe_status(self) -> None:
        if not self._online:
            return
        now = time.monotonic()
        if self._status_wanted or now - self._last_status_at >= self.tuning.status_interval_s:
            self._publish_status(force=True)
            return
        if self._status_dirty and now - self._last_status_at >= self.tuning.status_min_gap_s:
            self._status_dirty = False
            self._publish_status(force=False)

    def _publish_status(self, *, force: bool) -> None:
        status = self.status_payload()
        key = json.dumps({k: v for k, v in status.items() if k not in ("at", "link")},
                         sort_keys=True, default=str)
        if not force and key == self._last_status_key:
            return
        self.client.publish(self.topics.status, json.dumps(status, default=str), qos=1,
                            retain=True)
        self._last_status_key = key
        self._last_status_at = time.monotonic()
        self._status_wanted = False

    def _restore_bundle(self) -> None:
        if self.bundle_state.version is not None:
            return
        envelope = self.store.bundles.current_bundle()
        if envelope is None:
            return
        try:
            self.bundle_state.restore(envelope)
        except ClubtermError as exc:
            log.error("the stored rule bundle cannot be used: %s", exc)


# ---- helpers -----------------------------------------------------------------

def encode_json(value: Any) -> bytes:
    """Compact UTF-8 JSON, the way the store measures batch sizes."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def encode_batch(batch_id: str, terminal_id: str, events: list[dict[str, Any]]) -> bytes:
    """The batch payload ``{"batch", "terminal_id", "events"}``."""
    return encode_json({"batch": batch_id, "terminal_id": terminal_id, "events": events})


_PENDING_REFRESH_S = 0.25
_MIN_STALL_LIMIT_S = 3.0
_STORE_FLUSH_S = 0.2
_FLUSH_MAX_IDS = 5000
# A batch unacked this long gets its "sent" mark in the store (most are acked sooner).
_SENT_MARK_AFTER_S = 1.0

# The envelope around the events, with room for a long terminal id.
_BATCH_OVERHEAD = len(encode_batch("0" * 36, "x" * 128, []))


def uuid7_str() -> str:
    """A UUIDv7 (time-ordered), as the protocol's batch ids are."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | (rand >> 68 & 0xFFF) << 64 \
        | 0b10 << 62 | (rand & ((1 << 62) - 1))
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(at: datetime | None) -> str | None:
    return at.isoformat(timespec="milliseconds") if at is not None else None
