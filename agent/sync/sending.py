"""The send path: the window of batches in flight, acks, and the deferred outbox
writes (pure: time passed in, writes returned as actions).

Up to ``max_inflight_batches`` batches (≤ 500 events, ≤ 256 KiB) are in flight,
taken from the outbox in ``seq`` order. Only an ack naming an event removes it
from the send list; a batch whose ack does not come within ``ack_timeout_s``, or
every batch when the connection drops, is offered again. Acks are recorded after
the window is refilled, so the club never waits for our fsync; acked ids stay out
of new batches until written.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from typing import Any

from agent.offline_queue.events import batch_overhead, encode_batch
from agent.sync.actions import Action, MarkSent, Publish, RecordAcks, Reject
from agent.sync.messages import MAX_PAYLOAD, Ack
from agent.sync.outflight import Outflight
from agent.sync.ports import Outbox
from agent.sync.topics import Topics
from agent.sync.tuning import LinkTuning

log = logging.getLogger("agent.sync")

STORE_FLUSH_S = 0.2  # acks and "sent" marks gathered this long share one store write
FLUSH_MAX_IDS = 5000
SENT_MARK_AFTER_S = 1.0  # a batch unacked this long gets its "sent" mark
# The envelope around the events, with room for a long terminal id.
BATCH_OVERHEAD = batch_overhead("x" * 128)


class Sender:
    """Batches out, acks in; ``counters`` is shared with the core."""

    def __init__(self, topics: Topics, tuning: LinkTuning, outbox: Outbox,
                 new_batch_id: Callable[[], str], counters: dict[str, int]):
        self.topics = topics
        self.tuning = tuning
        self.outbox = outbox
        self.new_batch_id = new_batch_id
        self.counters = counters
        self.outflight = Outflight(tuning.max_inflight_batches, tuning.ack_timeout_s)
        # Every waiting event with a seq up to this is in flight or acked (batches go
        # out in seq order); back to 0 when a batch is dropped. Saves the outbox
        # stepping over thousands of in-flight ids for every batch.
        self.cursor = 0
        self.acked: list[str] = []  # acks not yet written
        self.applied_seq: int | None = None
        self.flush_due: float | None = None
        self.too_large: set[str] = set()  # rejected here, never offered again

    def in_flight(self) -> int:
        return len(self.outflight.batches)

    def drop_in_flight(self, now: float) -> None:
        """The connection changed: whatever was in flight is sent again."""
        self.outflight.clear()
        self.cursor = 0
        self.schedule_flush(now)  # their "sent" marks

    def expire(self, now: float) -> None:
        late = self.outflight.expire(now)
        if late:
            self.cursor = 0  # their events are sent again, from the start
            self.schedule_flush(now)  # their "sent" marks
            self.counters["ack_timeouts"] += len(late)
            log.warning("no ack for %d batch(es) within %.0f s; sending them again",
                        len(late), self.tuning.ack_timeout_s)

    def fill(self, now: float, out: list[Action]) -> None:
        """Publish batches until the window is full or nothing waits."""
        while self.outflight.can_send():
            skip = self.outflight.event_ids()
            skip.update(self.acked)
            skip.update(self.too_large)
            batch_id = self.new_batch_id()
            # The outbox hands over the stored JSON text as the finished payload.
            batch = self.outbox.next_batch_encoded(
                batch_id, self.topics.terminal_id, self.tuning.max_batch_events,
                self.tuning.max_batch_bytes - BATCH_OVERHEAD, exclude_ids=skip,
                after_seq=self.cursor)
            if batch is None:
                if self.cursor:  # never let the cursor hide an event
                    self.cursor = 0
                    continue
                break
            if len(batch.payload) > MAX_PAYLOAD:
                # Only a single event over the limit gets here (the outbox cuts
                # batches to size): rejected, or split.
                self._send_split(json.loads(batch.payload)["events"], now, out)
            else:
                self._publish(batch_id, batch.ids, batch.payload, now, out)
            self.cursor = batch.last_seq
            self.schedule_flush(now)

    def _send_split(self, events: list[dict[str, Any]], now: float, out: list[Action]) -> None:
        batch_id = self.new_batch_id()
        payload = encode_batch(batch_id, self.topics.terminal_id, events)
        if len(payload) <= MAX_PAYLOAD:
            self._publish(batch_id, [e["id"] for e in events], payload, now, out)
        elif len(events) == 1:
            # One event over the message limit can never be delivered: kept, marked
            # rejected with the reason, for the manager (docs/sync.md).
            log.error("event %s is %d bytes, over the 256 KiB limit; not sent",
                      events[0]["id"], len(payload))
            self.too_large.add(events[0]["id"])
            out.append(Reject(((events[0]["id"], "too_large"),)))
        else:
            half = len(events) // 2
            self._send_split(events[:half], now, out)
            self._send_split(events[half:], now, out)

    def _publish(self, batch_id: str, ids: list[str], payload: bytes, now: float,
                 out: list[Action]) -> None:
        out.append(Publish(self.topics.events, payload))
        self.outflight.add(batch_id, ids, now, len(payload))
        self.counters["batches_sent"] += 1
        self.counters["events_sent"] += len(ids)

    def schedule_flush(self, now: float) -> None:
        if self.flush_due is None:
            self.flush_due = now + STORE_FLUSH_S

    def flush(self, now: float, out: list[Action], *, final: bool = False) -> bool:
        """Hand over the acks and "sent" marks gathered in the last ``STORE_FLUSH_S``;
        True when acks were handed over (the queue depth changes).

        Each store write is a durable transaction; one per batch would cap the drain
        rate. Deferring is safe: an event whose ack is lost in a crash is sent again
        and the club answers it as a duplicate; "sent" is bookkeeping only, written
        for batches unacked after ``SENT_MARK_AFTER_S`` or dropped (an accepted event
        is recorded as sent by its ack). Rejections are written at once.
        """
        self.flush_due = None
        acked, self.acked = self.acked, []
        applied, self.applied_seq = self.applied_seq, None
        sent = self.outflight.take_sent_marks(math.inf if final else now - SENT_MARK_AFTER_S)
        if acked or applied is not None:
            out.append(RecordAcks(tuple(acked), applied))
        if sent:
            out.append(MarkSent(tuple(sent)))
        if self.outflight.has_unmarked():
            self.schedule_flush(now)
        return bool(acked) or applied is not None

    def on_acks(self, acks: list[Ack], now: float, out: list[Action], *, online: bool) -> None:
        """The club's acks: their events are done; the window is refilled, then written."""
        applied = [a.applied_seq for a in acks if a.applied_seq is not None]
        if applied:
            self.applied_seq = max([*applied, self.applied_seq or 0])
        self.acked += [i for a in acks for i in a.accepted]
        rejected = [r for a in acks for r in a.rejected]
        for ack in acks:
            self.outflight.on_ack(ack.batch, ack.accepted + [i for i, _ in ack.rejected])
        if rejected:
            self.flush(now, out)
            out.append(Reject(tuple(rejected)))
            return
        # Refill the window before writing anything: the club must not wait for our
        # fsync (acked events are left out of new batches until written).
        if online:
            self.fill(now, out)
        if len(self.acked) >= FLUSH_MAX_IDS or not self.outflight.batches:
            # Nothing left to send, so no further ack will share the write: record
            # these now, so the queue depth is true at once.
            self.flush(now, out)
        else:
            self.schedule_flush(now)
