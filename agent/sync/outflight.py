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
    marked: bool = False  # its "sent" mark was handed to the store


class Outflight:
    """At most ``max_batches`` batches in flight, each with an ack deadline."""

    def __init__(self, max_batches: int, ack_timeout_s: float):
        if max_batches < 1:
            raise ValueError("max_batches must be at least 1")
        self.max_batches = max_batches
        self.ack_timeout_s = ack_timeout_s
        self.batches: dict[str, InFlight] = {}
        self.timeouts = 0
        # Ids of batches dropped (timeout, disconnect) before their "sent" mark.
        self._dropped_unmarked: list[str] = []

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
            self._drop(key)
        self.timeouts += len(late)
        return late

    def clear(self) -> None:
        """The connection dropped: nothing is in flight any more."""
        for key in list(self.batches):
            self._drop(key)

    def _drop(self, key: str) -> None:
        batch = self.batches.pop(key)
        if not batch.marked:
            self._dropped_unmarked.extend(batch.waiting)

    def take_sent_marks(self, sent_before: float) -> list[str]:
        """Ids whose "sent" mark is due: events of batches dropped without an ack,
        and of batches still waiting that were published before ``sent_before``.
        A batch acked quickly never needs one (the ack records that it was sent)."""
        out, self._dropped_unmarked = self._dropped_unmarked, []
        for batch in self.batches.values():
            if not batch.marked and batch.sent_at < sent_before:
                batch.marked = True
                out.extend(batch.waiting)
        return out

    def has_unmarked(self) -> bool:
        """Whether a "sent" mark may still fall due."""
        return bool(self._dropped_unmarked) or any(not b.marked for b in self.batches.values())

    def next_deadline(self) -> float | None:
        if not self.batches:
            return None
        return min(b.sent_at for b in self.batches.values()) + self.ack_timeout_s
