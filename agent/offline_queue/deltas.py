"""Balance deltas of this terminal's own events, with running sums.

``event_deltas`` holds each event's change per member and kind with the running
sum up to it; ``delta_totals`` the sum. The member cache projects usable
balances as total minus the running sum at ``applied[this terminal]`` (two
index probes per kind). Every function runs inside the caller's transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from agent.offline_queue import events as ev
from agent.offline_queue.members import STATS_PREFIX


def delta_rows(effect: ev.Effect) -> list[tuple[str, int]]:
    """Balance kinds plus the stats pseudo-kinds of one event, zeros left out."""
    rows = list(effect.balance.items())
    rows += [(STATS_PREFIX + "purchases", effect.purchases), (STATS_PREFIX + "spend", effect.spend)]
    return [(k, v) for k, v in rows if v]


def add_deltas(conn: sqlite3.Connection, member_id: str, seq: int,
               rows: list[tuple[str, int]]) -> None:
    """Add one event's deltas; ``seq`` is the newest, so each new running sum
    is the kind's new total."""
    if not rows:
        return
    conn.executemany(
        "INSERT INTO delta_totals (member_id, kind, total) VALUES (?, ?, ?) "
        "ON CONFLICT (member_id, kind) DO UPDATE SET total = total + excluded.total",
        [(member_id, kind, amount) for kind, amount in rows])
    conn.executemany(
        "INSERT INTO event_deltas (member_id, kind, seq, amount, running) VALUES "
        "(?1, ?2, ?3, ?4, (SELECT total FROM delta_totals WHERE member_id = ?1 "
        "AND kind = ?2))", [(member_id, kind, seq, amount) for kind, amount in rows])


def drop_deltas(conn: sqlite3.Connection, pairs: Iterable[tuple[str, int]]) -> None:
    """Remove the deltas of events (member_id, seq) and redo the running sums of
    the kinds touched (rejections and pruning only: rare, off the sale path)."""
    touched: set[tuple[str, str]] = set()
    for member_id, seq in pairs:
        for (kind,) in conn.execute(
                "DELETE FROM event_deltas WHERE member_id = ? AND seq = ? RETURNING kind",
                (member_id, seq)).fetchall():
            touched.add((member_id, kind))
    for member_id, kind in touched:
        _rerun(conn, member_id, kind)


def move_deltas(conn: sqlite3.Connection, old: str, new: str) -> None:
    """Give the deltas of member ``old`` to member ``new`` (an offline enrolment the
    club answered) and redo ``new``'s running sums and totals of the kinds moved."""
    kinds = [k for (k,) in conn.execute(
        "SELECT DISTINCT kind FROM event_deltas WHERE member_id = ?", (old,)).fetchall()]
    if not kinds:
        return
    conn.execute("UPDATE event_deltas SET member_id = ? WHERE member_id = ?", (new, old))
    conn.execute("DELETE FROM delta_totals WHERE member_id = ?", (old,))
    for kind in kinds:
        _rerun(conn, new, kind)


def _rerun(conn: sqlite3.Connection, member_id: str, kind: str) -> None:
    """Recompute one member's running sums and total of one kind.

    Summed here rather than by SQLite's ``sum()``, which raises "integer overflow"
    past 2^63-1: an outbox may hold amounts the club will reject as out of range (an
    older terminal recorded them), and the ack that rejects one must still be
    recordable. A sum past the 64-bit range is kept at its bound until those events
    are dropped, when the rerun makes it exact again.
    """
    rows = conn.execute(
        "SELECT seq, amount FROM event_deltas WHERE member_id = ? AND kind = ? "
        "ORDER BY seq", (member_id, kind)).fetchall()
    if not rows:
        conn.execute("DELETE FROM delta_totals WHERE member_id = ? AND kind = ?",
                     (member_id, kind))
        return
    running, updates = 0, []
    for seq, amount in rows:
        running += int(amount)
        updates.append((_int64(running), member_id, kind, seq))
    conn.executemany("UPDATE event_deltas SET running = ? WHERE member_id = ? AND kind = ? "
                     "AND seq = ?", updates)
    conn.execute("INSERT INTO delta_totals (member_id, kind, total) VALUES (?, ?, ?) "
                 "ON CONFLICT (member_id, kind) DO UPDATE SET total = excluded.total",
                 (member_id, kind, _int64(running)))


_INT64 = 2**63 - 1


def _int64(value: int) -> int:
    """``value`` held within SQLite's integer range."""
    return max(-_INT64 - 1, min(_INT64, value))


def prune_deltas(conn: sqlite3.Connection, pairs: list[tuple[str, int]]) -> None:
    """Remove the deltas of pruned events and shift the running sums after them.

    Like :func:`drop_deltas`, but without recomputing each kind's window:
    a row's running sum drops by the amounts removed before it, one range
    ``UPDATE`` per removed row (pruned rows are usually a member's oldest, so
    that is one short update per member and kind).
    """
    removed: dict[tuple[str, str], list[tuple[int, int]]] = {}
    for member_id, seq in pairs:
        for kind, amount in conn.execute(
                "DELETE FROM event_deltas WHERE member_id = ? AND seq = ? "
                "RETURNING kind, amount", (member_id, seq)).fetchall():
            removed.setdefault((member_id, str(kind)), []).append((seq, int(amount)))
    for (member_id, kind), rows in removed.items():
        rows.sort()
        shift = 0
        for i, (seq, amount) in enumerate(rows):
            shift += amount
            upto = rows[i + 1][0] if i + 1 < len(rows) else None
            if shift:
                conn.execute(
                    "UPDATE event_deltas SET running = running - ? WHERE member_id = ? "
                    "AND kind = ? AND seq > ? AND seq < coalesce(?, seq + 1)",
                    (shift, member_id, kind, seq, upto))
        if conn.execute("SELECT 1 FROM event_deltas WHERE member_id = ? AND kind = ? "
                        "LIMIT 1", (member_id, kind)).fetchone() is None:
            conn.execute("DELETE FROM delta_totals WHERE member_id = ? AND kind = ?",
                         (member_id, kind))
        elif shift:
            conn.execute("UPDATE delta_totals SET total = total - ? WHERE member_id = ? "
                         "AND kind = ?", (shift, member_id, kind))
