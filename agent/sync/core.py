"""The club link's core: the protocol's state machine, pure (no thread, no network,
time passed in).

Inputs: :meth:`LinkCore.connected`, :meth:`~LinkCore.disconnected`,
:meth:`~LinkCore.received` (and :meth:`~LinkCore.received_acks` for acks that
queued up together), :meth:`~LinkCore.tick`, plus the agent's own wishes (wake,
readers, resync, stop). Each returns the :mod:`agent.sync.actions` for the shell
to perform in order. The store parts are read here (the next batch, the queue
depth); the outbox writes on the send path are actions, so tests see them in order.

The send path is :mod:`agent.sync.sending`; rule bundles, the staff list and
members are :mod:`agent.sync.updates`; commands :mod:`agent.sync.commands`.
"""

from __future__ import annotations

import json
import logging
import math
import random
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import msgspec

from agent import __version__
from agent.errors import ClubtermError
from agent.offline_queue.uuid7 import uuid7_str
from agent.protocol import sync as wire
from agent.protocol.base import encode as protocol_encode
from agent.sync.actions import Action, Emit, Publish
from agent.sync.commands import CommandRunner
from agent.sync.documents import DocumentOutcome
from agent.sync.messages import MessageError, parse_ack, parse_command
from agent.sync.ports import (
    Bundles,
    CatalogueParts,
    Commands,
    Members,
    Outbox,
    RulesState,
    StaffRecords,
)
from agent.sync.sending import Sender
from agent.sync.topics import Topics
from agent.sync.tuning import LinkState, LinkTuning, iso
from agent.sync.updates import ClubUpdates, SnapshotOutcome

log = logging.getLogger("agent.sync")

PENDING_REFRESH_S = 0.25  # counting the queue costs a query: at most this often in a drain


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class _Status:
    """When the retained status was last published, and whether it is due."""

    last_key: str | None = None
    last_at: float = -math.inf
    wanted: bool = False
    dirty: bool = False


class LinkCore:
    """The terminal side of ``protocol.md``, events in, :mod:`~agent.sync.actions` out."""

    def __init__(self, topics: Topics, tuning: LinkTuning, *, outbox: Outbox,
                 members: Members, bundles: Bundles, commands: Commands,
                 records: StaffRecords, rules: RulesState, snapshots: bool = False,
                 offline_only: bool = False, agent_version: str = __version__,
                 wall_clock: Callable[[], datetime] = utc_now,
                 new_batch_id: Callable[[], str] = uuid7_str,
                 rng: random.Random | None = None,
                 catalogue: CatalogueParts | None = None):
        self.topics = topics
        self.tuning = tuning
        self.outbox = outbox
        self.members = members
        self.records = records
        self.rules = rules
        self.agent_version = agent_version
        self.wall_clock = wall_clock
        self.new_batch_id = new_batch_id
        self.commands = CommandRunner(commands, topics.command_results, snapshots=snapshots)
        self.updates = ClubUpdates(topics, tuning, members=members, bundles=bundles,
                                   records=records, rules=rules, commands=self.commands,
                                   snapshots=snapshots, offline_only=offline_only,
                                   wall_clock=wall_clock,
                                   rng=rng or random.Random(secrets.randbits(64)),
                                   catalogue=catalogue)
        self.state = LinkState(False, None, None, 0)
        self.online = False
        self.stopped = False
        self.counters = {"batches_sent": 0, "events_sent": 0, "acks": 0, "ack_timeouts": 0,
                         "dropped_messages": 0, "connects": 0, "snapshots": 0}
        self.send = Sender(topics, tuning, outbox, new_batch_id, self.counters)
        self.status = _Status()
        self.readers: list[dict[str, Any]] = []
        self.printer: dict[str, Any] | None = None
        self._now = 0.0  # the monotonic time of the input being handled
        self._stats: Any = None
        self._pending_stale = False
        self._pending_at = 0.0
        self._interrupted: list[dict[str, Any]] = []
        self._recent_rejections: list[dict[str, str]] = []

    # ---- inputs -----------------------------------------------------------------

    def start(self, now: float) -> list[Action]:
        """Before the first connection: the stored bundle, interrupted commands, the queue."""
        def run(out: list[Action]) -> None:
            self.updates.restore_bundle()
            self._interrupted = self.commands.interrupted()
            self._refresh_pending(now, out)
            if self.updates.snapshots and self.members.members_version() == 0:
                self.updates.request_snapshot(0, now, at_once=True)  # newly provisioned
        return self._step(now, run)

    def connected(self, now: float, *, broker: str | None = None,
                  session_present: bool = True) -> list[Action]:
        """The broker (``broker``: which one) accepted the connection (the session is
        subscribed); ``session_present`` false means what it held while the terminal
        was away is gone (a new node without shared sessions, or an expired session):
        a gap in member change sets then brings a snapshot, as after any gap."""
        def run(out: list[Action]) -> None:
            self.counters["connects"] += 1
            self.online = True
            self.send.drop_in_flight(now)  # whatever was in flight before is sent again
            self._set_state(out, online=True, since=self.wall_clock(), last_error=None,
                            in_flight=0, broker=broker)
            log.info("connected to the club broker %s%s", broker or "",
                     "" if session_present else " (a new session: nothing was kept for us)")
            self.status.wanted = True
            for result in self._interrupted:
                self.commands.publish(result, out)
            self._interrupted = []
            self._refresh_pending(now, out)
        return self._step(now, run)

    def disconnected(self, reason: str, now: float) -> list[Action]:
        def run(out: list[Action]) -> None:
            if not self.online:
                return
            self.online = False
            self.send.drop_in_flight(now)
            log.warning("lost the club broker (%s)", reason)
            where = f" from {self.state.broker}" if self.state.broker else ""
            self._set_state(out, online=False, since=self.wall_clock(), in_flight=0,
                            last_error=f"disconnected{where}: {reason}", broker=None)
        return self._step(now, run)

    def failed(self, error: str) -> None:
        """The connection could not be made, or an action failed: shown as the last error."""
        self.state = replace(self.state, last_error=error)

    def received(self, topic: str, payload: bytes, now: float) -> list[Action]:
        """A message on one of the subscribed topics."""
        return self._step(now, lambda out: self._on_message(topic, payload, now, out))

    def received_acks(self, payloads: list[bytes], now: float) -> list[Action]:
        """Acks that queued up together: recorded in one store write."""
        return self._step(now, lambda out: self._on_acks(payloads, now, out))

    def wake(self, now: float) -> list[Action]:
        """New events were appended."""
        return self._step(now, lambda out: self._refresh_pending(now, out))

    def set_readers(self, readers: list[dict[str, Any]]) -> None:
        self.readers = list(readers)
        self.status.dirty = True

    def set_printer(self, printer: dict[str, Any] | None) -> None:
        """The receipt printer's state (``{kind, state, detail}``) for the status."""
        if printer != self.printer:
            self.printer = printer
            self.status.dirty = True

    def resync(self, now: float) -> list[Action]:
        """Fetch the full member snapshot."""
        return self._step(now, lambda out: self.updates.request_snapshot(0, now, at_once=True))

    def snapshot_done(self, outcome: SnapshotOutcome, now: float) -> list[Action]:
        def run(out: list[Action]) -> None:
            self.status.dirty = True
            if outcome.version is not None and outcome.error is None:
                self.counters["snapshots"] += 1
            self.updates.snapshot_done(outcome, now, out)
        return self._step(now, run)

    def document_done(self, outcome: DocumentOutcome, now: float) -> list[Action]:
        """A manifest-named document fetch ended (:class:`~agent.sync.actions.FetchDocument`)."""
        def run(out: list[Action]) -> None:
            self.status.dirty = True
            self.updates.document_done(outcome, now, out)
        return self._step(now, run)

    def tick(self, now: float) -> list[Action]:
        """Time passed: ack timeouts, the window, deferred writes, snapshots, status."""
        return self._step(now, lambda out: self._housekeeping(now, out))

    def stopping(self, now: float) -> list[Action]:
        """Write what is gathered and say "offline" (retained)."""
        self.stopped = True
        def run(out: list[Action]) -> None:
            self.send.flush(now, out, final=True)
            # Said even when this core has not yet seen a new connection: paho may
            # already be connected and have sent again the "online" of the last one
            # (an unacknowledged QoS 1 message), and a clean disconnect fires no
            # will. Unconnected, the session drops it.
            out.append(Publish(self.topics.status, json.dumps(
                {"state": "offline", "at": iso(self.wall_clock())}).encode(), retain=True))
        return self._step(now, run)

    def next_wakeup(self, now: float) -> float:
        """Seconds until :meth:`tick` has work (at most one)."""
        waits = [1.0]
        deadline = self.send.outflight.next_deadline()
        if deadline is not None:
            waits.append(deadline - now)
        due = self.updates.next_due()
        if due is not None:
            waits.append(due - now)
        if self._pending_stale:
            waits.append(self._pending_at + PENDING_REFRESH_S - now)
        if self.send.flush_due is not None:
            waits.append(self.send.flush_due - now)
        return max(0.01, min(waits))

    # ---- steps ------------------------------------------------------------------

    def _step(self, now: float, fn: Callable[[list[Action]], None]) -> list[Action]:
        """Run one input; an error is logged and shown, and what was decided stands."""
        out: list[Action] = []
        self._now = now
        problem = self.updates.members_problem
        try:
            fn(out)
        except ClubtermError as exc:
            log.error("club link: %s", exc)
            self.failed(str(exc))
        except Exception:
            # A bug must not stop the link: log it and carry on with the next input.
            log.exception("club link: unexpected error")
        if self.updates.members_problem != problem \
                or self.state.members_problem != self.updates.members_problem:
            self._set_state(out, members_problem=self.updates.members_problem)
        return out

    def _set_state(self, out: list[Action], **changes: Any) -> None:
        self.state = replace(self.state, **changes)
        out.append(Emit({"type": "link", **self.state.to_dict()}))

    def _housekeeping(self, now: float, out: list[Action]) -> None:
        if self.online:
            self.send.expire(now)
            self.send.fill(now, out)
            self.state = replace(self.state, in_flight=self.send.in_flight())
        # After the window is filled: the acks written here leave the exclusion list.
        if self.send.flush_due is not None and now >= self.send.flush_due:
            self._pending_stale |= self.send.flush(now, out)
        if self._pending_stale and (not self.send.outflight.batches
                                    or now - self._pending_at >= PENDING_REFRESH_S):
            self._refresh_pending(now, out)
        if not self.stopped and self.updates.maybe_fetch(now, out):
            self.status.dirty = True
        if not self.stopped and self.updates.documents.start_due(now, out):
            self.status.dirty = True
        self._maybe_status(now, out)

    def _refresh_pending(self, now: float, out: list[Action]) -> None:
        stats = self.outbox.queue_stats()
        self._stats = stats
        self._pending_stale = False
        self._pending_at = now
        self.status.dirty = True
        old = self.state.pending
        self.state = replace(self.state, pending=int(stats.pending))
        if int(stats.pending) != old:
            out.append(Emit({"type": "queue", "pending": int(stats.pending),
                             "rejected": int(stats.rejected)}))

    # ---- receiving --------------------------------------------------------------

    def _on_acks(self, payloads: list[bytes], now: float, out: list[Action]) -> None:
        acks = []
        for payload in payloads:
            try:
                acks.append(parse_ack(payload))
            except MessageError as exc:
                self.counters["dropped_messages"] += 1
                log.warning("dropped an ack: %s", exc)
        if not acks:
            return
        for ack in acks:
            for event_id, reason in ack.rejected:
                log.warning("the club rejected event %s: %s", event_id, reason)
                self._recent_rejections.append({"id": event_id, "reason": reason})
        self._recent_rejections = self._recent_rejections[-10:]
        self.send.on_acks(acks, now, out, online=self.online)
        self.counters["acks"] += len(acks)
        self.status.dirty = True
        self.state = replace(self.state, last_ack_at=self.wall_clock(),
                             in_flight=self.send.in_flight())
        # Counting the queue costs a query; during a drain once per 0.25 s is enough.
        self._pending_stale = True

    def _on_message(self, topic: str, payload: bytes, now: float, out: list[Action]) -> None:
        t = self.topics
        self.status.dirty = True
        try:
            if topic == t.acks:
                self._on_acks([payload], now, out)
            elif topic == t.member_changes:
                self.updates.on_change_set(payload, now, out)
            elif topic == t.rules:
                self.updates.on_rules(payload, out, now)
            elif topic == t.staff:
                self.updates.on_staff(payload, out)
            elif topic in (t.catalogue, t.catalogue_changes):
                self.updates.on_catalogue(payload, out)
            elif topic == t.commands:
                if self.commands.on_command(parse_command(payload), self, out):
                    self.updates.request_snapshot(0, now, at_once=True)
            else:
                log.debug("ignoring a message on %s", topic)
        except MessageError as exc:
            self.counters["dropped_messages"] += 1
            log.warning("dropped a message on %s: %s", topic, exc)

    # ---- status -----------------------------------------------------------------

    def status_payload(self) -> dict[str, Any]:
        """The retained status document (``protocol.md``, "Status")."""
        stats = self._stats if self._stats is not None else self.outbox.queue_stats()
        oldest = getattr(stats, "oldest_at", None)
        updates = self.updates
        return {
            "state": "online", "at": iso(self.wall_clock()), "agent_version": self.agent_version,
            "rules_version": self.rules.version,
            "rules_problem": updates.rules_problem(),
            "members_version": self.members.members_version(),
            "members_problem": updates.members_problem,
            "staff_version": self.records.staff_list_version(),
            "staff_problem": updates.staff_problem,
            "catalogue_version": (updates.catalogue.catalogue_version()
                                  if updates.catalogue is not None else None),
            "catalogue_problem": updates.catalogue_problem,
            "queue": {"pending": int(stats.pending),
                      "oldest_at": oldest if isinstance(oldest, str | None) else iso(oldest),
                      "rejected": int(stats.rejected),
                      "recent_rejections": list(self._recent_rejections)},
            "readers": list(self.readers),
            # (1.2) The receipt printer; null without one (docs/protocol/club.md).
            "printer": self.printer,
            "link": {"in_flight": self.state.in_flight, "broker": self.state.broker,
                     "last_ack_at": iso(self.state.last_ack_at),
                     "ack_timeouts": self.counters["ack_timeouts"]},
        }

    def publish_status(self, out: list[Action]) -> None:
        """Publish the status now (the ``send_status`` command)."""
        self._publish_status(self._now, out, force=True)

    def _maybe_status(self, now: float, out: list[Action]) -> None:
        if not self.online:
            return
        st = self.status
        if st.wanted or now - st.last_at >= self.tuning.status_interval_s:
            self._publish_status(now, out, force=True)
        elif st.dirty and now - st.last_at >= self.tuning.status_min_gap_s:
            st.dirty = False
            self._publish_status(now, out, force=False)

    def _publish_status(self, now: float, out: list[Action], *, force: bool) -> None:
        status = self.status_payload()
        key = json.dumps({k: v for k, v in status.items() if k not in ("at", "link")},
                         sort_keys=True, default=str)
        if not force and key == self.status.last_key:
            return
        # Through the Status Struct: what is published is what status.schema.json says.
        payload = protocol_encode(msgspec.convert(status, wire.Status))
        out.append(Publish(self.topics.status, payload, retain=True))
        self.status.last_key = key
        self.status.last_at = now
        self.status.wanted = False
