"""What the outbox hands out: stored events, encoded batches, queue figures, entries."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from agent.offline_queue import events as ev


@dataclass(frozen=True)
class StoredEvent:
    """An event made durable: ``body`` is the full wire event."""

    id: str
    seq: int
    type: str
    at: str
    body: dict[str, Any]


@dataclass(frozen=True)
class EncodedBatch:
    """A batch ready to publish: the payload and the events it carries."""

    payload: bytes
    ids: list[str]
    first_seq: int
    last_seq: int


@dataclass(frozen=True)
class QueueStats:
    """What the outbox holds: events waiting for an ack, rejected ones, per type."""

    pending: int
    oldest_at: datetime | None
    rejected: int
    by_type: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        """The ``queue`` object of the protocol's status message."""
        return {
            "pending": self.pending,
            "oldest_at": None if self.oldest_at is None else ev.format_at(self.oldest_at),
            "rejected": self.rejected,
        }


@dataclass(frozen=True)
class OutboxEntry:
    """One outbox row as a manager or technician sees it."""

    seq: int
    id: str
    type: str
    at: str
    state: str
    reason: str | None
    recorded_at: str
    sent_at: str | None
    attempts: int
    acked_at: str | None
    state_at: str
    event: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON form (``clubterm queue export``)."""
        return {
            "seq": self.seq, "id": self.id, "type": self.type, "at": self.at,
            "state": self.state, "reason": self.reason, "recorded_at": self.recorded_at,
            "sent_at": self.sent_at, "attempts": self.attempts, "acked_at": self.acked_at,
            "state_at": self.state_at, "event": self.event,
        }


#: The columns :func:`entry` reads, in its order.
ENTRY_COLS = ("seq, id, type, at, state, reason, recorded_at, sent_at, attempts, "
              "acked_at, state_at, body")


def entry(row: Any) -> OutboxEntry:
    """An :class:`OutboxEntry` from a row of :data:`ENTRY_COLS`."""
    return OutboxEntry(seq=row[0], id=row[1], type=row[2], at=row[3], state=row[4],
                       reason=row[5], recorded_at=row[6], sent_at=row[7],
                       attempts=row[8], acked_at=row[9], state_at=row[10],
                       event=json.loads(row[11]))
