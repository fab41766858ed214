"""The outbox's read side: batches to send, figures, entries for a manager."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from agent.offline_queue import events as ev
from agent.offline_queue.database import Database
from agent.offline_queue.entries import (
    ENTRY_COLS,
    EncodedBatch,
    OutboxEntry,
    QueueStats,
    StoredEvent,
    entry,
)

STATES = ("pending", "sent", "accepted", "rejected")


def chunks(items: list[str], size: int) -> Iterator[list[str]]:
    """``items`` in slices of at most ``size`` (SQLite's variable limit)."""
    for start in range(0, len(items), size):
        yield items[start:start + size]


class OutboxReader:
    """Reads of the ``events`` table; :class:`agent.offline_queue.outbox.Outbox`
    adds the writes."""

    def __init__(self, db: Database, terminal_id: str):
        self.db = db
        self.terminal_id = terminal_id
        self._overhead = ev.batch_overhead(terminal_id)

    def event_for_request(self, type_: str, member_id: str,
                          request_id: str) -> StoredEvent | None:
        """(1.3) The ``type_`` event of ``member_id`` a client recorded with its
        idempotency key ``request_id``, or None (a retry after a lost answer is answered
        with it, never recorded twice). Read in the caller's transaction."""
        row = self.db.execute_sql(
            "SELECT id, seq, at, body FROM events WHERE member_id = ? AND type = ? "
            "AND json_extract(body, '$.request_id') = ?",
            (member_id, type_, request_id)).fetchone()
        if row is None:
            return None
        return StoredEvent(id=str(row[0]), seq=int(row[1]), type=type_, at=str(row[2]),
                           body=json.loads(row[3]))

    def sale_for_quote(self, quote_id: str) -> OutboxEntry | None:
        """The sale recorded from ``quote_id`` (one probe of the ``events_quote``
        index), or None."""
        with self.db.guard("reading the outbox"):
            row = self.db.execute_sql(
                f"SELECT {ENTRY_COLS} FROM events INDEXED BY events_quote "  # noqa: S608 (placeholders only)
                "WHERE quote_id = ?", (quote_id,)).fetchone()
        return None if row is None else entry(row)

    def next_batch(self, max_events: int = ev.MAX_BATCH_EVENTS,
                   max_bytes: int = ev.MAX_PAYLOAD_BYTES,
                   exclude_ids: Iterable[str] = ()) -> list[dict[str, Any]]:
        """The next events to send (pending and sent, not acked), in ``seq`` order.

        At most ``max_events``, and the batch encoded by :func:`events.encode_batch`
        is at most ``max_bytes`` (at least one event is always returned if any
        waits). ``exclude_ids`` are skipped (events in flight).
        """
        rows = self._batch_rows(max_events, max_bytes, exclude_ids)
        return [json.loads(body) for _, _, body in rows]

    def next_batch_encoded(self, batch_id: str, terminal_id: str,
                           max_events: int = ev.MAX_BATCH_EVENTS,
                           max_bytes: int = ev.MAX_PAYLOAD_BYTES,
                           exclude_ids: Iterable[str] = (), *,
                           after_seq: int = 0) -> EncodedBatch | None:
        """The batch :meth:`next_batch` would return, already encoded for the wire.

        ``payload`` is byte for byte ``encode_batch(batch_id, terminal_id, events)``
        of the events :meth:`next_batch` picks with the same arguments, built from
        the stored JSON text without decoding it (the send path's hot spot).
        ``None`` when nothing waits. ``after_seq`` starts the search after that
        ``seq`` (a caller that knows every waiting event up to it is in flight
        saves stepping over them).
        """
        rows = self._batch_rows(max_events, max_bytes, exclude_ids, after_seq)
        if not rows:
            return None
        head = ev.encode_batch(batch_id, terminal_id, [])
        assert head.endswith(b"[]}")
        payload = b"".join((head[:-2], ",".join(body for _, _, body in rows).encode("utf-8"),
                            b"]}"))
        return EncodedBatch(payload=payload, ids=[i for _, i, _ in rows],
                            first_seq=rows[0][0], last_seq=rows[-1][0])

    def _batch_rows(self, max_events: int, max_bytes: int, exclude_ids: Iterable[str],
                    after_seq: int = 0) -> list[tuple[int, str, str]]:
        """``(seq, id, body)`` of the next batch. Picks the events from the small
        columns first, then reads only the chosen bodies (excluded events in
        flight are skipped without reading their bodies)."""
        exclude = exclude_ids if isinstance(exclude_ids, (set, frozenset)) else set(exclude_ids)
        budget = max_bytes - self._overhead
        chosen: list[tuple[int, str]] = []
        used = 0
        last_seq = after_seq
        full = False
        with self.db.guard("reading the outbox"):
            conn = self.db.connection()
            while not full and len(chosen) < max_events:
                rows = conn.execute(
                    "SELECT seq, id, size FROM events INDEXED BY events_waiting "
                    "WHERE state IN ('pending', 'sent') "
                    "AND seq > ? ORDER BY seq LIMIT ?",
                    # Room for some excluded rows, in rounds: a caller's cursor
                    # (after_seq) usually means none follow.
                    (last_seq, max_events - len(chosen) + min(len(exclude), 512) + 1)
                ).fetchall()
                if not rows:
                    break
                for seq, event_id, size in rows:
                    last_seq = seq
                    if event_id in exclude:
                        continue
                    cost = size + (1 if chosen else 0)
                    if chosen and used + cost > budget:
                        full = True
                        break
                    chosen.append((seq, event_id))
                    used += cost
                    if len(chosen) >= max_events:
                        break
            if not chosen:
                return []
            bodies = dict(conn.execute(
                "SELECT seq, body FROM events WHERE seq BETWEEN ? AND ?",
                (chosen[0][0], chosen[-1][0])).fetchall())
        return [(seq, event_id, bodies[seq]) for seq, event_id in chosen]

    def club_applied_seq(self) -> int:
        """The highest ``applied_seq`` the club has acked."""
        with self.db.guard("reading the outbox"):
            return self.db.meta_int("club_applied_seq")

    def last_seq(self) -> int:
        """The ``seq`` of the newest event ever recorded (0 if none)."""
        with self.db.guard("reading the outbox"):
            return self.db.meta_int("last_seq")

    def queue_stats(self) -> QueueStats:
        """Waiting (pending + sent) events, the oldest one's time, rejected, per type."""
        with self.db.guard("reading the outbox"):
            by_type = {str(t): int(n) for t, n in self.db.execute_sql(
                "SELECT type, count(*) FROM events INDEXED BY events_waiting_type "
                "WHERE state IN ('pending', 'sent') GROUP BY type").fetchall()}
            oldest = self.db.execute_sql(
                "SELECT at FROM events INDEXED BY events_waiting "
                "WHERE state IN ('pending', 'sent') ORDER BY seq LIMIT 1"
            ).fetchone()
            rejected = self.db.execute_sql(
                "SELECT count(*) FROM events WHERE state = 'rejected'").fetchone()[0]
        return QueueStats(pending=sum(by_type.values()),
                          oldest_at=ev.parse_at(oldest[0]) if oldest else None,
                          rejected=int(rejected), by_type=by_type)

    def iter_events(self, state: str | None = None, *, page: int = 1000) -> Iterator[OutboxEntry]:
        """Every outbox entry (of one state) in ``seq`` order, read page by page."""
        if state is not None and state not in STATES:
            raise ValueError(f"state must be one of {', '.join(STATES)}")
        last = 0
        while True:
            where = "seq > ?" + ("" if state is None else " AND state = ?")
            params: tuple[Any, ...] = (last,) if state is None else (last, state)
            with self.db.guard("reading the outbox"):
                rows = self.db.execute_sql(
                    f"SELECT {ENTRY_COLS} FROM events WHERE {where} ORDER BY seq "  # noqa: S608 (placeholders only)
                    f"LIMIT {int(page)}", params).fetchall()
            if not rows:
                return
            for row in rows:
                yield entry(row)
            last = rows[-1][0]

    def events(self, state: str | None = None) -> list[OutboxEntry]:
        """The outbox entries (of one state) in ``seq`` order."""
        return list(self.iter_events(state))

    def event(self, event_id: str) -> OutboxEntry | None:
        """One outbox entry by id."""
        with self.db.guard("reading the outbox"):
            row = self.db.execute_sql(
                f"SELECT {ENTRY_COLS} FROM events WHERE id = ?", (event_id,)).fetchone()  # noqa: S608 (placeholders only)
        return None if row is None else entry(row)

    def events_between(self, start: datetime, end: datetime,
                       types: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Wire events whose ``at`` is in [start, end) (a local day's summary),
        each with ``_state`` added (rejected ones included so a view can mark them)."""
        sql = "SELECT state, body FROM events WHERE at_us >= ? AND at_us < ?"
        params: list[Any] = [ev.epoch_us(start), ev.epoch_us(end)]
        if types:
            sql += f" AND type IN ({', '.join('?' for _ in types)})"
            params.extend(types)
        with self.db.guard("reading the outbox"):
            rows = self.db.execute_sql(sql + " ORDER BY seq", params).fetchall()
        return [{**json.loads(body), "_state": state} for state, body in rows]

    def sales_before(self, before_seq: int | None, limit: int) -> list[OutboxEntry]:
        """At most ``limit`` sale entries with ``seq < before_seq`` (None: from the
        newest), newest first (the till's list of recent sales)."""
        sql = f"SELECT {ENTRY_COLS} FROM events WHERE type = 'sale'"  # noqa: S608 (placeholders only)
        params: list[Any] = []
        if before_seq is not None:
            sql += " AND seq < ?"
            params.append(int(before_seq))
        with self.db.guard("reading the outbox"):
            rows = self.db.execute_sql(sql + f" ORDER BY seq DESC LIMIT {int(limit)}",
                                       params).fetchall()
        return [entry(row) for row in rows]

    def enrolment_of(self, member_ids: Sequence[str]) -> OutboxEntry | None:
        """This terminal's latest ``member_enrol`` (not rejected) of any of
        ``member_ids`` (a member's id and the ``local:`` ids it replaces), or None."""
        ids = [m for m in member_ids if isinstance(m, str)][:20]
        if not ids:
            return None
        marks = ", ".join("?" for _ in ids)
        with self.db.guard("reading the outbox"):
            row = self.db.execute_sql(
                # The member_id column is a sale's (balances, pruning); an enrolment
                # has it in its body only. A scan of the kept outbox, for one profile.
                f"SELECT {ENTRY_COLS} FROM events WHERE type = 'member_enrol' "  # noqa: S608 (placeholders only)
                f"AND state != 'rejected' AND json_extract(body, '$.member_id') IN ({marks}) "
                "ORDER BY seq DESC LIMIT 1",
                ids).fetchone()
        return None if row is None else entry(row)

    def refunds_of(self, sale_ids: Sequence[str]) -> dict[str, OutboxEntry]:
        """The refund (not rejected) of each of ``sale_ids`` that has one."""
        out: dict[str, OutboxEntry] = {}
        for chunk in chunks(list(sale_ids), 500):
            marks = ", ".join("?" for _ in chunk)
            with self.db.guard("reading the outbox"):
                rows = self.db.execute_sql(
                    f"SELECT {ENTRY_COLS}, ref_id FROM events WHERE type = 'refund' "  # noqa: S608 (placeholders only)
                    f"AND state != 'rejected' AND ref_id IN ({marks})", chunk).fetchall()
            for row in rows:
                out[str(row[-1])] = entry(row[:-1])
        return out

    def line_refunds_of(self, sale_ids: Sequence[str]) -> dict[str, list[OutboxEntry]]:
        """The refunds by line (not rejected) of each of ``sale_ids``, oldest first."""
        out: dict[str, list[OutboxEntry]] = {}
        for chunk in chunks(list(sale_ids), 500):
            marks = ", ".join("?" for _ in chunk)
            with self.db.guard("reading the outbox"):
                rows = self.db.execute_sql(
                    f"SELECT {ENTRY_COLS}, ref_id FROM events WHERE type = 'refund_lines' "  # noqa: S608 (placeholders only)
                    f"AND state != 'rejected' AND ref_id IN ({marks}) ORDER BY seq",
                    chunk).fetchall()
            for row in rows:
                out.setdefault(str(row[-1]), []).append(entry(row[:-1]))
        return out
