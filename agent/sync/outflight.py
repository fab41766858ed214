"""The batches in flight: a small pure state machine with the time passed in.

A batch is in flight from its publish until an ack names all of its events, the
ack timeout passes, or the connection drops. Its events are not offered again
while it is in flight; after a timeout or a drop they are (the store still has
them, because only an ack removes an event from the send list).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class InFlight:
    """One published batch waiting for its ack."""

    batch_id: str
    waiting: set[str]
    sent_at: float
    size: int


class Outflight:
    """At most ``max_batches`` batches in flight, each with an ack deadline."""

    def __init__(self, max_batches: int, ack_timeout_s: float):
        if max_batches < 1:
            raise ValueError("max_batches must be at least 1")
        self.max_batches = max_batches
        self.ack_timeout_s = ack_timeout_s
        self.batches: dict[str, InFlight] = {}
        self.timeouts = 0

    def can_send(self) -> bool:
        return len(self.batches) < self.max_batches

    def event_ids(self) -> set[str]:
        """Every event id in flight (the store must not offer them again)."""
        out: set[str] = set()
        for b in self.batches.values():
            out |= b.waiting
        return out

    def add(self, batch_id: str, event_ids: list[str], now: float, size: int = 0) -> None:
        self.batches[batch_id] = InFlight(batch_id, set(event_ids), now, size)

    def on_ack(self, batch_id: str | None, named: list[str]) -> None:
        """An ack: the events it names are done, and so is its batch."""
        names = set(named)
        if batch_id is not None:
            self.batches.pop(batch_id, None)
        for key in [k for k, b in self.batches.items() if b.waiting & names]:
            batch = self.batches[key]
            batch.waiting -= names
            if not batch.waiting:
                del self.batches[key]

    def expire(self, now: float) -> list[str]:
        """Drop batches past the ack timeout; their events may be sent again."""
        late = [k for k, b in self.batches.items() if now - b.sent_at >= self.ack_timeout_s]
        for key in late:
            del self.batches[key]
        self.timeouts += len(late)
        return late

    def clear(self) -> None:
        """The connection dropped: nothing is in flight any more."""
        self.batches.clear()

    def next_deadline(self) -> float | None:
        if not self.batches:
            return None
        return min(b.sent_at for b in self.batches.values()) + self.ack_timeout_s
