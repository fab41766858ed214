"""The simulated club's own ledger (plain sqlite3).

Events are stored exactly once by ``id``. Per terminal they are *applied* to member
records strictly in ``seq`` order: an event that arrives early (a later batch
overtook an earlier one, or a resend after a gap) is stored and accepted, and
applied when every lower ``seq`` of that terminal is there. That keeps
``applied_seq`` and each record's ``applied[terminal]`` exact: a record reflects
every event of that terminal up to that number and none after it.

A rejected event still takes its ``seq`` (with no effect), so one bad event never
stops a terminal's ``applied_seq``.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from hw_sim.club import effects

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id TEXT PRIMARY KEY, terminal_id TEXT NOT NULL, seq INTEGER NOT NULL,
    type TEXT NOT NULL, body TEXT NOT NULL, received_at TEXT NOT NULL,
    state TEXT NOT NULL, reason TEXT, times_received INTEGER NOT NULL DEFAULT 1,
    UNIQUE (terminal_id, seq));
CREATE TABLE IF NOT EXISTS terminals (terminal_id TEXT PRIMARY KEY,
    applied_seq INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS members (member_id TEXT PRIMARY KEY, version INTEGER NOT NULL,
    record TEXT NOT NULL, removed INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS members_version ON members (version);
CREATE TABLE IF NOT EXISTS aliases (local_id TEXT PRIMARY KEY, member_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sales (id TEXT PRIMARY KEY, member_id TEXT, at_utc TEXT NOT NULL,
    net INTEGER NOT NULL, body TEXT NOT NULL, refunded INTEGER NOT NULL DEFAULT 0);
-- Covering: spend_30d of a batch's members is summed from the index alone.
CREATE INDEX IF NOT EXISTS sales_spend ON sales (member_id, at_utc, refunded, net);
DROP INDEX IF EXISTS sales_member;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
-- (1.1) Units of each sale line refunded by refund_lines events, applied once each.
CREATE TABLE IF NOT EXISTS refund_parts (sale_id TEXT NOT NULL, line INTEGER NOT NULL,
    qty INTEGER NOT NULL, PRIMARY KEY (sale_id, line)) WITHOUT ROWID;
-- Net of the not refunded sales per member and UTC day (derived from sales): spend_30d
-- reads at most 31 of these plus the sales of the window's first, partial day.
CREATE TABLE IF NOT EXISTS sales_days (member_id TEXT NOT NULL, day TEXT NOT NULL,
    net INTEGER NOT NULL, PRIMARY KEY (member_id, day)) WITHOUT ROWID;
"""

REQUIRED_KEYS = {"id": str, "seq": int, "type": str, "at": str}
KNOWN_TYPES = {"sale", "refund", "attendance", "expense", "cash_receipt", "appointment",
               "member_enrol", "card_link", "staff_change", "correction", "day_close",
               "refund_lines", "gift_card_redeem", "balance_adjust",
               "package_use", "package_freeze"}
# (1.3) house accounts: each applied once to the account's `owed` (docs/protocol/club.md).
KNOWN_TYPES |= set(effects.ACCOUNT_EVENT_SIGNS)


Facts = tuple[datetime, dict[str, int], int]  # a sound sale's time, balance deltas, spend


@dataclass
class PreparedBatch:
    """A batch parsed and checked, ready for :meth:`Ledger.receive_batches`.

    Made by :func:`prepare_batch` without the ledger (no database, no lock): the
    club parses a group's batches before it takes them in one transaction.
    """

    doc: dict[str, Any]  # the batch object; ``doc["events"]`` is a list
    raw: list[str] | None  # each event's JSON text, as received
    problems: dict[str, str | None]  # by event id: why it cannot be taken (None: it can)
    facts: dict[str, Facts]  # by event id, for sound sales

    @property
    def events(self) -> list[Any]:
        events: list[Any] = self.doc["events"]
        return events


@dataclass
class BatchResult:
    """What receiving one batch did."""

    accepted: list[str] = field(default_factory=list)
    rejected: list[dict[str, str]] = field(default_factory=list)
    applied_seq: int = 0
    changed_members: list[dict[str, Any]] = field(default_factory=list)
    from_version: int = 0
    to_version: int = 0
    newly_applied: int = 0


class Ledger:
    """The club's SQLite ledger; one writer at a time (a lock), readers anywhere."""

    def __init__(self, path: Path, *, timezone: str = "Europe/Berlin",
                 default_tier: str = "bronze",
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 points_expire_days: int | None = None,
                 tiers: Iterable[Mapping[str, Any]] | None = None):
        self.path = Path(path)
        # Club policy: points earned expire after this many days (None: never). The
        # member record's balance_lots carry the dates; terminals enforce them.
        self.points_expire_days = points_expire_days
        self.tz = ZoneInfo(timezone)
        # (1.3) The bundle's tiers with their ``upgrade`` thresholds: the club applies them.
        from hw_sim.club.bundles import GOLD_UPGRADE

        self.tiers: list[dict[str, Any]] = [dict(t) for t in tiers] if tiers is not None else [
            {"id": "bronze", "rank": 1}, {"id": "silver", "rank": 2},
            {"id": "gold", "rank": 3, "upgrade": dict(GOLD_UPGRADE)}]
        self.tiers_by_id = {str(t["id"]): t for t in self.tiers}
        self.default_tier = default_tier
        self.clock = clock
        self._lock = threading.RLock()
        self._new_sales: dict[str, list[Any]] = {}
        self._batch_codes: set[str] = set()  # single-use codes of the batch taken so far
        self._batch_links: dict[str, str] = {}  # cards linked in the batch so far: member
        # What checking a sale of this batch computed (time, deltas, spend), so that
        # applying it does not compute it again; emptied after every batch.
        self._facts: dict[str, Facts] = {}
        # Committed member records by id, parsed (a batch changes copies of them and
        # puts those here only once its transaction committed).
        self._records: dict[str, dict[str, Any]] = {}
        self._days: dict[int, str] = {}  # see _local_day
        self.db = self._connect()
        self.db.executescript(SCHEMA)
        with self._lock:  # a ledger from before sales_days: derive it once
            self.db.execute(
                "INSERT INTO sales_days (member_id, day, net) SELECT member_id, "
                "substr(at_utc, 1, 10), SUM(net) FROM sales WHERE refunded=0 AND member_id "
                "IS NOT NULL AND NOT EXISTS (SELECT 1 FROM sales_days) GROUP BY 1, 2")

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        # Checkpoint (and sync) the WAL every 64 MiB instead of every 4 MiB.
        db.execute("PRAGMA wal_autocheckpoint=16384")
        db.execute("PRAGMA busy_timeout=10000")
        return db

    def close(self) -> None:
        with self._lock:
            self.db.close()

    # ---- members -------------------------------------------------------------

    def members_version(self) -> int:
        row = self.db.execute("SELECT value FROM meta WHERE key='members_version'").fetchone()
        return int(row[0]) if row else 0

    def member(self, member_id: str) -> dict[str, Any] | None:
        """The current record of a member (by club id or a ``local:`` alias)."""
        with self._lock:
            member_id = self._resolve(member_id) or member_id
            row = self.db.execute("SELECT record FROM members WHERE member_id=? AND removed=0",
                                  (member_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def _records_naming(self, token: str) -> list[dict[str, Any]]:
        """The current records whose text holds ``token`` (the callers check where)."""
        with self._lock:
            rows = self.db.execute("SELECT record FROM members WHERE removed=0 AND record LIKE ?",
                                   (f"%{token}%",)).fetchall()
        return [json.loads(text) for (text,) in rows]

    def member_by_token(self, token: str) -> dict[str, Any] | None:
        """The current record of the member holding identifier ``token``, or None."""
        return next((rec for rec in self._records_naming(token)
                     if token in rec.get("identifiers", [])), None)

    def lost_card_holder(self, token: str) -> str | None:
        """(1.3) The id of the member who reported the card ``token`` lost, or None."""
        return next((str(rec["member_id"]) for rec in self._records_naming(token)
                     if token in (rec.get("lost_identifiers") or [])), None)

    def members(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self.db.execute(
                "SELECT record FROM members WHERE removed=0 ORDER BY member_id").fetchall()
        return [json.loads(r[0]) for r in rows]

    def upsert_members(self, records: Iterable[Mapping[str, Any]]
                       ) -> tuple[int, int, list[dict[str, Any]]]:
        """Create or replace member records (seeding, tests); each gets a new version.

        Returns ``(from_version, to_version, records)`` for a change set.
        """
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                start = self.members_version()
                version = start
                out = []
                for rec in records:
                    version += 1
                    full = self._normalise(dict(rec))
                    full["version"] = version
                    self._save_member(full, version)
                    out.append(full)
                self._set_version(version)
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self._remember(out)
        return start, version, out

    def remove_member(self, member_id: str) -> tuple[int, int]:
        """Mark a member removed; returns ``(from_version, to_version)``."""
        with self._lock:
            start = self.members_version()
            self.db.execute("UPDATE members SET removed=1, version=? WHERE member_id=?",
                            (start + 1, member_id))
            self._set_version(start + 1)
            self._records.pop(member_id, None)
        return start, start + 1

    def snapshot(self, since: int) -> tuple[int, Iterator[str]]:
        """``(version, lines)``: records changed after ``since`` as NDJSON lines; a delta
        (``since`` > 0) also has a tombstone ``{"member_id", "version", "removed": true}``
        for each member removed after ``since``."""
        db = self._connect()  # its own connection: served from an HTTP thread
        db.execute("BEGIN")  # one consistent read
        row = db.execute("SELECT value FROM meta WHERE key='members_version'").fetchone()
        version = int(row[0]) if row else 0

        def lines() -> Iterator[str]:
            try:
                cur = db.execute("SELECT member_id, version, removed, record FROM members "
                                 "WHERE version>? AND (removed=0 OR ?>0) ORDER BY version",
                                 (since, since))
                for member_id, member_version, removed, record in cur:
                    yield (_ENCODE({"member_id": member_id, "version": member_version,
                                    "removed": True}) if removed else record)
            finally:
                db.execute("COMMIT")
                db.close()
        return version, lines()

    def _normalise(self, rec: dict[str, Any]) -> dict[str, Any]:
        rec.setdefault("name", "")
        rec.setdefault("status", "active")
        rec.setdefault("tier", self.default_tier)
        rec.setdefault("groups", [])
        rec.setdefault("birthday", None)
        rec.setdefault("joined", self.clock().astimezone(self.tz).date().isoformat())
        rec.setdefault("identifiers", [])
        rec.setdefault("balances", {"points": 0})
        rec.setdefault("stats", {"purchase_count": 0, "last_purchase": None, "spend_30d": 0})
        rec.setdefault("applied", {})
        return rec

    def _remember(self, records: Iterable[dict[str, Any]]) -> None:
        """Keep committed records parsed (bounded: a big club is read from disk)."""
        if len(self._records) > _MAX_CACHED_RECORDS:
            self._records.clear()
        for rec in records:
            self._records[rec["member_id"]] = rec

    def _save_member(self, rec: Mapping[str, Any], version: int) -> None:
        self.db.execute(_SAVE_MEMBER, (rec["member_id"], version, _ENCODE(rec)))

    def _set_version(self, version: int) -> None:
        self.db.execute("INSERT INTO meta (key, value) VALUES ('members_version', ?) "
                        "ON CONFLICT(key) DO UPDATE SET value=excluded.value", (str(version),))

    def _resolve(self, member_id: str | None) -> str | None:
        if member_id is None:
            return None
        if member_id.startswith("local:"):
            row = self.db.execute("SELECT member_id FROM aliases WHERE local_id=?",
                                  (member_id,)).fetchone()
            return row[0] if row else None
        return member_id

    # ---- events --------------------------------------------------------------

    def applied_seq(self, terminal_id: str) -> int:
        row = self.db.execute("SELECT applied_seq FROM terminals WHERE terminal_id=?",
                              (terminal_id,)).fetchone()
        return int(row[0]) if row else 0

    def event_counts(self, terminal_id: str | None = None) -> dict[str, int]:
        """Events stored, by state (``applied``, ``stored``, ``rejected``)."""
        q = "SELECT state, count(*) FROM events"
        args: tuple[Any, ...] = ()
        if terminal_id is not None:
            q += " WHERE terminal_id=?"
            args = (terminal_id,)
        with self._lock:
            return dict(self.db.execute(q + " GROUP BY state", args).fetchall())

    def events(self, terminal_id: str) -> list[dict[str, Any]]:
        with self._lock:
            rows = self.db.execute(
                "SELECT body, state, reason, times_received FROM events WHERE terminal_id=? "
                "ORDER BY seq", (terminal_id,)).fetchall()
        out = []
        for body, state, reason, times in rows:
            ev = json.loads(body)
            ev["_state"], ev["_reason"], ev["_times_received"] = state, reason, times
            out.append(ev)
        return out

    def line_totals(self, terminal_id: str | None = None) -> dict[effects.LineKind, int]:
        """What the applied, unrefunded sales rang up (``qty × unit_price``) by kind
        of line: ``amount`` (a bare amount: ``sku`` and ``category`` null),
        ``product`` (a ``sku``), ``category`` (a category only). A club's report of
        how much was sold unitemised."""
        q = ("SELECT e.body FROM events e JOIN sales s ON s.id = e.id "
             "WHERE e.state = 'applied' AND s.refunded = 0")
        args: tuple[Any, ...] = ()
        if terminal_id is not None:
            q += " AND e.terminal_id = ?"
            args = (terminal_id,)
        totals: dict[effects.LineKind, int] = {"amount": 0, "product": 0, "category": 0}
        with self._lock:
            bodies = [row[0] for row in self.db.execute(q, args)]
        for body in bodies:
            for line in json.loads(body).get("lines") or []:
                totals[effects.line_kind(line)] += line["qty"] * line["unit_price"]
        return totals

    def receive_batch(self, terminal_id: str, events: list[Any] | PreparedBatch, *,
                      reject_if: Callable[[dict[str, Any]], str | None] | None = None,
                      raw: list[str] | None = None) -> BatchResult:
        """Store a batch (dedup by id), apply what became contiguous, report the ack.

        ``events`` is the batch's events list, or a :class:`PreparedBatch` (then
        ``raw`` and the checks come from it). ``raw`` (from :func:`parse_batch`) is
        each event's JSON text as received: it is stored as the body instead of
        encoding the parsed event again.
        """
        if not isinstance(events, PreparedBatch):
            events = PreparedBatch({"events": events}, raw, {}, {})
        return self.receive_batches(terminal_id, [events], reject_if=reject_if)[0]

    def receive_batches(self, terminal_id: str, batches: list[PreparedBatch], *,
                        reject_if: Callable[[dict[str, Any]], str | None] | None = None
                        ) -> list[BatchResult]:
        """Take several batches of one terminal in one transaction (as if one after
        the other): one commit, and each changed member record written once.

        Each result has its batch's ``accepted`` and ``rejected``; every
        ``applied_seq`` is the terminal's after the last batch (it is committed
        when the acks go out), and the last result carries the member changes.
        """
        results = [BatchResult() for _ in batches]
        now = self.clock().isoformat()
        touched: dict[str, dict[str, Any]] = {}
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                applied = 0
                for batch, result in zip(batches, results, strict=True):
                    self._facts = batch.facts
                    applied = self._receive(terminal_id, batch.events, now, result, reject_if,
                                            batch.raw, batch.problems or None, touched)
                for result in results:
                    result.applied_seq = applied
                self._finish_batch(terminal_id, results[-1], touched)
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            finally:
                self._new_sales.clear()
                self._batch_codes.clear()
                self._batch_links.clear()
                self._facts = {}
            # Committed: the cache now holds what the database holds.
            self._remember(touched.values())
        return results

    def _receive(self, terminal_id: str, events: list[Any], now: str, result: BatchResult,
                 reject_if: Callable[[dict[str, Any]], str | None] | None,
                 raw: list[str] | None, problems: dict[str, str | None] | None,
                 touched: dict[str, dict[str, Any]]) -> int:
        """Store the new events of a batch and apply every event that became
        contiguous, in ``seq`` order, to the records in ``touched`` (loaded there
        as needed); returns the terminal's ``applied_seq`` after it.

        The order is worked out before anything is written, so that an event is
        inserted with its final state (``applied`` in the usual, in-order case)
        instead of being inserted and then updated.
        """
        texts: dict[int, str] = {}
        if raw is not None and len(raw) == len(events):
            texts = {id(ev): text for ev, text in zip(events, raw, strict=True)}
        named = [ev for ev in events if isinstance(ev, dict) and isinstance(ev.get("id"), str)]
        known: dict[str, tuple[str, str | None]] = {}
        for chunk in _chunks([ev["id"] for ev in named]):
            marks = ",".join("?" * len(chunk))
            for ev_id, state, reason in self.db.execute(
                    f"SELECT id, state, reason FROM events WHERE id IN ({marks})", chunk):
                known[ev_id] = (state, reason)
        seqs = [ev.get("seq") for ev in named if _is_seq(ev.get("seq"))]
        taken: dict[int, str] = {}
        for chunk in _chunks(seqs):
            marks = ",".join("?" * len(chunk))
            for seq, ev_id in self.db.execute(
                    f"SELECT seq, id FROM events WHERE terminal_id=? AND seq IN ({marks})",
                    (terminal_id, *chunk)):
                taken[seq] = ev_id
        self.db.execute("INSERT OR IGNORE INTO terminals (terminal_id, applied_seq) VALUES (?,0)",
                        (terminal_id,))
        applied = self.applied_seq(terminal_id)
        # Events past applied_seq: those stored earlier, ahead of a gap, and this
        # batch's new ones. seq -> (id, state, parsed event or None: read when needed).
        waiting: dict[int, tuple[str, str, dict[str, Any] | None]] = {
            seq: (ev_id, state, None) for seq, ev_id, state in self.db.execute(
                "SELECT seq, id, state FROM events WHERE terminal_id=? AND seq>?",
                (terminal_id, applied))}
        repeats: list[tuple[str]] = []
        rows: dict[int, list[Any]] = {}
        for ev in named:
            ev_id = ev["id"]
            if ev_id in known:
                repeats.append((ev_id,))
                state, reason = known[ev_id]
                if state == "rejected":
                    result.rejected.append({"id": ev_id, "reason": reason or "rejected"})
                else:
                    result.accepted.append(ev_id)
                continue
            if problems is not None and ev_id in problems:
                reason = problems[ev_id]
            else:
                reason = _structural_problem(ev, terminal_id, self._facts)
            if reason is None and reject_if is not None:
                reason = reject_if(ev)
            if reason is None and ev.get("type") == "sale" and ev.get("codes_used"):
                reason = self._code_problem(ev)
            if reason is None and ev.get("type") == "card_link":
                reason = self._link_problem(ev)
            seq = ev.get("seq")
            if not isinstance(seq, int) or not _is_seq(seq):
                # Without a usable seq the event cannot take a place in the order.
                result.rejected.append({"id": ev_id, "reason": reason or "malformed: seq"})
                continue
            if seq in taken:
                result.rejected.append({"id": ev_id,
                                        "reason": f"seq_conflict: {seq} is {taken[seq]}"})
                continue
            state = "rejected" if reason else "stored"
            body = texts.get(id(ev)) or json.dumps(ev)
            rows[seq] = [ev_id, terminal_id, seq, str(ev.get("type")), body, now, state, reason]
            known[ev_id] = (state, reason)
            taken[seq] = ev_id
            if seq > applied:
                waiting[seq] = (ev_id, state, ev)
            if reason:
                result.rejected.append({"id": ev_id, "reason": reason})
            else:
                result.accepted.append(ev_id)
        self.db.executemany("UPDATE events SET times_received=times_received+1 WHERE id=?",
                            repeats)
        # Apply what is now contiguous after applied_seq, in seq order.
        self._prefetch_members((w[2] for w in waiting.values() if w[2] is not None), touched)
        first = applied
        earlier: list[tuple[str]] = []  # events of earlier batches applied now
        while (nxt := waiting.get(applied + 1)) is not None:
            ev_id, state, parsed = nxt
            applied += 1
            if state != "stored":
                continue
            if parsed is None:  # arrived in an earlier batch, ahead of a gap
                body = self.db.execute("SELECT body FROM events WHERE id=?",
                                       (ev_id,)).fetchone()[0]
                parsed = json.loads(body)
                earlier.append((ev_id,))
            else:
                rows[applied][6] = "applied"
            self._apply_event(terminal_id, parsed, touched)
            result.newly_applied += 1
        self.db.executemany(
            "INSERT INTO events (id, terminal_id, seq, type, body, received_at, state, reason) "
            "VALUES (?,?,?,?,?,?,?,?)", rows.values())
        self.db.executemany("UPDATE events SET state='applied' WHERE id=?", earlier)
        if applied != first:
            self.db.execute("UPDATE terminals SET applied_seq=? WHERE terminal_id=?",
                            (applied, terminal_id))
        result.applied_seq = applied
        return applied

    def _finish_batch(self, terminal_id: str, result: BatchResult,
                      touched: dict[str, dict[str, Any]]) -> None:
        """Write the batch's sales and the changed member records (new versions)."""
        self.db.executemany(
            "INSERT OR IGNORE INTO sales (id, member_id, at_utc, net, body, refunded) "
            "VALUES (?,?,?,?,?,?)", [row[:6] for row in self._new_sales.values()])
        days: dict[tuple[str, str], int] = {}
        for row in self._new_sales.values():  # each sale is applied exactly once
            if row[1] is not None and not row[5]:
                key = (row[1], row[2][:10])
                days[key] = days.get(key, 0) + row[3]
        self.db.executemany(_ADD_DAY, [(m, d, net) for (m, d), net in days.items()])
        start = self.members_version()
        version = start
        applied_of: dict[str, int] = {terminal_id: result.applied_seq}
        spend = self._spend_30d_of(list(touched))
        saves: list[tuple[str, int, str]] = []
        for rec in touched.values():
            version += 1
            applied_map = rec["applied"] = dict(rec.get("applied") or {})
            for term in set(applied_map) | {terminal_id}:
                if term not in applied_of:
                    applied_of[term] = self.applied_seq(term)
                applied_map[term] = applied_of[term]
            rec["stats"]["spend_30d"] = spend.get(rec["member_id"], 0)
            self._tier_upgrade(rec)
            rec["version"] = version
            saves.append((rec["member_id"], version, _ENCODE(rec)))
            result.changed_members.append(rec)
        self.db.executemany(_SAVE_MEMBER, saves)
        if version != start:
            self._set_version(version)
        result.from_version, result.to_version = start, version

    # ---- effects -------------------------------------------------------------

    def _code_problem(self, ev: dict[str, Any]) -> str | None:
        """A single-use code already used by another sale (any terminal) rejects the
        sale: ``code_used: CODE`` (docs/rules.md, the offline risk rule)."""
        for code in effects.single_use_codes(ev):
            if code in self._batch_codes:
                return f"code_used: {code}"
            for (body,) in self.db.execute(
                    "SELECT body FROM events WHERE type='sale' AND state!='rejected' "
                    "AND body LIKE ?", (f"%{code}%",)):
                if code in effects.single_use_codes(json.loads(body)):
                    return f"code_used: {code}"
        self._batch_codes.update(effects.single_use_codes(ev))
        return None

    def _link_problem(self, ev: dict[str, Any]) -> str | None:
        """(1.3) A card_link of a card another member holds, or of a card reported lost,
        is rejected (``identifier_taken`` / ``identifier_lost``): of two tills linking
        one card at once, the first to reach the club wins."""
        token = ev.get("identifier")
        if not isinstance(token, str):
            return None
        member_id = self._resolve(str(ev.get("member_id")))
        claimed = self._batch_links.get(token)
        if claimed is not None and claimed != member_id:
            return "identifier_taken: the card belongs to another member"
        for other_id, record in self.db.execute(
                "SELECT member_id, record FROM members WHERE removed=0 AND record LIKE ?",
                (f"%{token}%",)):
            rec = self._records.get(other_id) or json.loads(record)
            if token in (rec.get("lost_identifiers") or []):
                return "identifier_lost: the card was reported lost"
            if other_id != member_id and token in (rec.get("identifiers") or []) \
                    and rec.get("status") != "closed":
                return "identifier_taken: the card belongs to another member"
        self._batch_links[token] = member_id or ""
        return None

    def _dated_lots(self, sale: dict[str, Any], rec: dict[str, Any],
                    local_day: str | None) -> None:
        """``balance_lots``: spending takes the soonest-expiring first; credits earned
        with ``expires``, and points when the club's policy dates them, add lots."""
        found = rec.get("balance_lots")
        lots: dict[str, list[dict[str, Any]]] = found if isinstance(found, dict) else {}
        spent = int(sale.get("redeemed_points") or 0) + sum(
            int(r.get("points", 0)) for r in sale.get("rewards") or [])
        effects.spend_lots(lots, "points", spent)
        for row in sale.get("credits_used") or []:
            effects.spend_lots(lots, str(row["kind"]), int(row.get("amount", 0)))
        for row in sale.get("tenders") or []:  # (1.3) stored value that paid
            if row.get("method") == "stored_value":
                effects.spend_lots(lots, str(row["kind"]), int(row.get("amount", 0)))
        for row in sale.get("units_used") or []:  # (1.3) units that paid lines
            effects.spend_lots(lots, str(row["kind"]), int(row.get("units", 0)))
        for row in sale.get("topups") or []:  # (1.3) dated top-ups
            if isinstance(row.get("expires"), str):
                effects.add_lot(lots, str(row["kind"]), int(row.get("amount", 0)),
                                row["expires"])
        for row in sale.get("credits_earned") or []:
            if isinstance(row.get("expires"), str):
                effects.add_lot(lots, str(row["kind"]), int(row.get("amount", 0)),
                                row["expires"])
        if self.points_expire_days is not None and local_day is not None:
            until = (date.fromisoformat(local_day)
                     + timedelta(days=self.points_expire_days)).isoformat()
            effects.add_lot(lots, "points", sum(int(r.get("points", 0))
                                                for r in sale.get("points_earned") or []),
                            until)
        if lots:
            rec["balance_lots"] = lots

    def _issue_gift_cards(self, sale: dict[str, Any],
                          touched: dict[str, dict[str, Any]]) -> None:
        """(1.3) Each card a sale sold becomes a holder record (no person), found by its
        token, holding its amount of ``value.gift`` (a lot when it expires)."""
        for card in sale.get("gift_cards_issued") or []:
            card_id = str(card["card_id"])
            if self._load_for_update(card_id, touched) is not None:
                continue  # already issued: an event is applied once, a card too
            amount, expires = int(card["amount"]), card.get("expires")
            rec = self._normalise({
                "member_id": card_id, "holder": "gift_card", "name": "",
                "identifiers": [str(card["token"])], "balances": {"value.gift": amount},
                "expires": expires, "sold_by_sale": sale["id"], "tier": None})
            if isinstance(expires, str):
                rec["balance_lots"] = {"value.gift": [{"amount": amount, "expires": expires}]}
            self._take_identifier(str(card["token"]), card_id, touched)
            touched[card_id] = rec

    def _apply_gift_card_redeem(self, ev: dict[str, Any],
                                touched: dict[str, dict[str, Any]]) -> None:
        """(1.3) A card paid ``amount`` (negative: a refund put it back); the soonest
        lots are spent first. An unknown card: recorded, no effect."""
        rec = self._load_for_update(str(ev["card_id"]), touched)
        if rec is None:
            return
        amount = int(ev["amount"])
        rec["balances"] = effects.apply_deltas(rec.get("balances") or {},
                                               {"value.gift": -amount})
        found = rec.get("balance_lots")
        lots: dict[str, list[dict[str, Any]]] = found if isinstance(found, dict) else {}
        if amount > 0:
            effects.spend_lots(lots, "value.gift", amount)
        elif isinstance(rec.get("expires"), str):
            effects.add_lot(lots, "value.gift", -amount, rec["expires"])
        if lots:
            rec["balance_lots"] = lots

    def _apply_promotions(self, sale: dict[str, Any], rec: dict[str, Any] | None,
                          touched: dict[str, dict[str, Any]], local_day: str | None,
                          sign: int) -> None:
        """Issue 21's effects of a sale (``sign`` 1) or of its refund (−1): the
        referrer's share, the member's rule uses, coupons and used codes."""
        for referrer_id, deltas in effects.sale_referral_deltas(sale).items():
            referrer = self._load_for_update(referrer_id, touched)
            if referrer is not None:
                referrer["balances"] = effects.apply_deltas(referrer.get("balances") or {},
                                                            deltas, sign)
                earned = _referrals_of(referrer)["earned"]
                for kind, amount in effects.apply_deltas(earned, deltas, sign).items():
                    earned[kind] = max(0, amount)
        if rec is None:
            return
        found = rec.get("rule_uses")
        uses: dict[str, Any] = found if isinstance(found, dict) else {}
        for row in sale.get("uses") or []:
            dates = list(uses.get(str(row["rule"])) or [])
            if sign > 0 and local_day is not None:
                dates.append(local_day)
            elif dates:
                day = self._local_day(_parse_time(sale["at"]))
                if day in dates:
                    dates.remove(day)
            uses[str(row["rule"])] = dates
        if uses:
            rec["rule_uses"] = uses
        if sign > 0:
            self._dated_lots(sale, rec, local_day)
        if sign < 0:
            return  # a refund gives uses back; issued coupons and used codes stay
        used = effects.single_use_codes(sale)
        if used:
            rec["used_codes"] = sorted(set(rec.get("used_codes") or []) | set(used))
        coupons = [c for c in rec.get("coupons") or [] if c.get("code") not in used]
        for row in sale.get("coupons_issued") or []:
            coupons.append({"code": row["code"], "rule": row["for_rule"],
                            "expires": row.get("expires")})
        if coupons or rec.get("coupons"):
            rec["coupons"] = coupons

    def _load_for_update(self, member_id: str | None,
                         touched: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
        member_id = self._resolve(member_id)
        if member_id is None:
            return None
        if member_id in touched:
            return touched[member_id]
        cached = self._records.get(member_id)
        if cached is not None:
            rec = _copy_record(cached)
        else:
            row = self.db.execute("SELECT record FROM members WHERE member_id=? AND removed=0",
                                  (member_id,)).fetchone()
            if row is None:
                return None
            rec = json.loads(row[0])
        touched[member_id] = rec
        return rec

    def _apply_event(self, terminal_id: str, ev: dict[str, Any],
                     touched: dict[str, dict[str, Any]]) -> None:
        kind = ev.get("type")
        if kind == "sale":
            rec = self._load_for_update(ev.get("member_id"), touched)
            facts = self._facts.get(ev["id"])
            at, deltas, spend = facts if facts else (
                _parse_time(ev["at"]), effects.sale_balance_deltas(ev), effects.sale_spend(ev))
            # Written in one go at the end of the batch (the sale's body is in events).
            self._new_sales[ev["id"]] = [ev["id"], rec["member_id"] if rec else None,
                                         at.astimezone(UTC).isoformat(),
                                         spend, "", 0, ev]
            self._issue_gift_cards(ev, touched)  # (1.3) with or without a member
            if rec is None:
                return
            # rec is this batch's own copy (see _copy_record): changed in place.
            # (1.3) A pooled member's points and credit are the pool's; stats stay here.
            holder = self._pool_of(ev, touched) or rec
            balances = holder.get("balances")
            if not isinstance(balances, dict):
                balances = holder["balances"] = {}
            effects.add_deltas(balances, deltas)
            stats = rec.setdefault("stats", {})
            stats["purchase_count"] = int(stats.get("purchase_count") or 0) + 1
            local_day = self._local_day(at)
            if not stats.get("last_purchase") or stats["last_purchase"] < local_day:
                stats["last_purchase"] = local_day
            self._apply_promotions(ev, rec, touched, local_day, 1)
            _sell_packages(ev, rec, local_day)
        elif kind == "gift_card_redeem":
            self._apply_gift_card_redeem(ev, touched)
        elif kind == "refund":
            sale_id = ev.get("sale_id")
            new = self._new_sales.get(str(sale_id))
            if new is not None:
                if new[5] or self.db.execute("SELECT 1 FROM refund_parts WHERE sale_id=?",
                                             (sale_id,)).fetchone():
                    return
                new[5] = 1
                member_id, sale = new[1], new[6]
            else:
                row = self.db.execute("SELECT member_id, refunded, at_utc, net FROM sales "
                                      "WHERE id=?", (sale_id,)).fetchone()
                if row is None or row[1] or self.db.execute(
                        "SELECT 1 FROM refund_parts WHERE sale_id=?", (sale_id,)).fetchone():
                    # unknown or already refunded sale, or one refunded by line (the
                    # terminal never sends that): recorded, no effect
                    return
                self.db.execute("UPDATE sales SET refunded=1 WHERE id=?", (sale_id,))
                if row[0] is not None:
                    self.db.execute(_ADD_DAY, (row[0], row[2][:10], -row[3]))
                member_id = row[0]
                sale = json.loads(self.db.execute("SELECT body FROM events WHERE id=?",
                                                  (sale_id,)).fetchone()[0])
            rec = self._load_for_update(member_id, touched)
            self._apply_promotions(sale, rec, touched, None, -1)
            if rec is None:
                return
            holder = self._pool_of(sale, touched) or rec
            holder["balances"] = effects.apply_deltas(holder.get("balances") or {},
                                                      effects.sale_balance_deltas(sale), -1)
            stats = rec.setdefault("stats", {})
            stats["purchase_count"] = max(0, int(stats.get("purchase_count") or 0) - 1)
            # (1.3) the packages it sold are taken back (once: the refund applies once)
            _unsell_packages(str(sale_id), None, rec, self._local_day(_parse_time(ev["at"])))
        elif kind == "refund_lines":
            self._apply_refund_lines(ev, touched)
        elif kind == "member_enrol":
            local_id = str(ev.get("member_id"))
            if self._resolve(local_id) is not None:
                return
            member_id = f"m-{uuid.uuid4().hex[:12]}"
            self.db.execute("INSERT INTO aliases (local_id, member_id) VALUES (?,?)",
                            (local_id, member_id))
            rec = self._normalise({
                "member_id": member_id, "name": ev.get("name") or "",
                "identifiers": list(ev.get("identifiers") or []),
                "referred_by": ev.get("referred_by"), "replaces": [local_id],
                "joined": _parse_time(ev["at"]).astimezone(self.tz).date().isoformat()})
            for token in rec["identifiers"]:
                self._take_identifier(token, member_id, touched)
            touched[member_id] = rec
            referrer = self._load_for_update(ev.get("referred_by"), touched)
            if referrer is not None and referrer["member_id"] != member_id:
                # (1.3) The referrer's record counts the members they brought.
                referrals = _referrals_of(referrer)
                referrals["count"] += 1
        elif kind == "card_link":
            rec = self._load_for_update(ev.get("member_id"), touched)
            token = ev.get("identifier")
            if rec is None or not isinstance(token, str):
                return
            self._take_identifier(token, rec["member_id"], touched)
            if token not in rec["identifiers"]:
                rec["identifiers"].append(token)
            lost = ev.get("replaces")
            if isinstance(lost, str) and lost != token and lost in rec["identifiers"]:
                # (1.1/1.3) The lost card: blocked club-wide, listed as lost so every
                # terminal refuses it as such; the balance stays (same member id).
                rec["identifiers"].remove(lost)
                kept = [t for t in rec.get("lost_identifiers") or [] if t != lost]
                rec["lost_identifiers"] = [*kept, lost][-MAX_LOST_CARDS:]
        elif kind == "correction" and ev.get("ref_type") == "member_enrol":
            # A mis-typed enrolment: the member's name is amended, or the member is
            # closed (void). The original member_enrol event stays in the ledger.
            rec = self._load_for_update(str(ev.get("member_id")), touched)
            if rec is None:
                return
            changes = ev.get("changes")
            if not isinstance(changes, dict):
                changes = {}
            if ev.get("action") == "void":
                rec["status"] = "closed"
            else:
                if isinstance(changes.get("name"), str):
                    rec["name"] = changes["name"]
                phone = changes.get("phone")
                if isinstance(phone, str) and phone.startswith("tel:"):
                    # The mistyped phone stops finding the member; the new one does.
                    old = [t for t in rec["identifiers"] if str(t).startswith("tel:")]
                    rec["identifiers"] = [t for t in rec["identifiers"] if t not in old]
                    self._take_identifier(phone, rec["member_id"], touched)
                    if phone not in rec["identifiers"]:
                        rec["identifiers"].append(phone)
        elif kind in effects.ACCOUNT_EVENT_SIGNS:
            self._apply_account_event(ev, touched)
        elif kind == "package_freeze":
            # (1.3) The period joins the package's `frozen` list (once: the event id is
            # stored above); the expiry moves by those days when read.
            rec = self._load_for_update(ev.get("member_id"), touched)
            pkg = next((p for p in (rec or {}).get("packages") or []
                        if isinstance(p, dict) and p.get("package_id") == ev["package_id"]),
                       None)
            if pkg is None:
                return
            span = {"from": ev["from"], "until": ev["until"]}
            frozen = pkg.setdefault("frozen", [])
            if span not in frozen:
                frozen.append(span)
        elif kind == "package_use":
            # (1.3) A check-in: once (the event id is stored above), −units of the
            # package's visits, even past zero — the visit happened; the bundle's
            # offline.max_package_uses_per_member_day bounds how far (club.md).
            rec = self._load_for_update(ev.get("member_id"), touched)
            if rec is None:
                return
            balances = rec.get("balances")
            if not isinstance(balances, dict):
                balances = rec["balances"] = {}
            effects.add_deltas(balances, {"visits." + str(ev["package_id"]): -int(ev["units"])})
        elif kind == "balance_adjust":
            # (1.3) A manual adjustment: once (the event id is stored above), on
            # one balance of one member. A deduction is applied in full even when
            # another terminal spent the balance meanwhile (the offline risk the
            # bundle bounds; docs/protocol/club.md "Manual balance adjustments").
            rec = self._load_for_update(ev.get("member_id"), touched)
            if rec is None:
                return
            balances = rec.get("balances")
            if not isinstance(balances, dict):
                balances = rec["balances"] = {}
            effects.add_deltas(balances, {str(ev["kind"]): int(ev["amount"])})
        # attendance, expense, cash_receipt, appointment, day_close and corrections
        # of expenses and cash receipts: kept in the ledger only.

    def _pool_of(self, sale: Mapping[str, Any],
                 touched: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
        """(1.3) The family pool a sale's points and credit go to (its ``pool_id``, a
        ``"holder": "pool"`` record), or None: the member's own balances."""
        pool_id = sale.get("pool_id")
        if not isinstance(pool_id, str) or not pool_id:
            return None
        pool = self._load_for_update(pool_id, touched)
        return pool if pool is not None and pool.get("holder") == "pool" else None

    def _apply_account_event(self, ev: dict[str, Any],
                             touched: dict[str, dict[str, Any]]) -> None:
        """(1.3) A charge, refund reversal or payment of a house account, applied once
        (this event's id is applied once, in its terminal's seq order). A charge or
        reversal whose sale the club did not apply (rejected) changes nothing; the
        club does not refuse a charge over the limit: the sale happened (an offline
        charge may pass it; the bundle's ``offline.max_account_charge`` bounds that)."""
        sale_id = ev.get("sale_id")
        if ev.get("type") != "account_payment" and str(sale_id) not in self._new_sales \
                and self.db.execute("SELECT 1 FROM sales WHERE id=?",
                                    (sale_id,)).fetchone() is None:
            return
        rec = self._load_for_update(str(ev.get("account_id")), touched)
        if rec is None or rec.get("holder") != "account":
            return
        rec["balances"] = effects.apply_deltas(rec.get("balances") or {},
                                               {"owed": effects.account_owed_change(ev)})

    def _local_day(self, at: datetime) -> str:
        """The club's local date of ``at``, remembered by the second (a batch's sales
        mostly share their seconds; no time zone offset has a fraction of one)."""
        key = int(at.timestamp() // 1)
        day = self._days.get(key)
        if day is None:
            if len(self._days) > 10_000:
                self._days.clear()
            day = self._days[key] = at.astimezone(self.tz).date().isoformat()
        return day

    def _take_identifier(self, token: str, member_id: str,
                         touched: dict[str, dict[str, Any]]) -> None:
        """An identifier belongs to one member: take it from whoever had it, as
        saved or as changed earlier in this transaction (not saved yet)."""
        holders = {other_id: record for other_id, record in self.db.execute(
            "SELECT member_id, record FROM members WHERE removed=0 AND member_id!=? "
            "AND record LIKE ?", (member_id, f"%{token}%"))}
        holders.update((other_id, "") for other_id in touched if other_id != member_id)
        for other_id, record in holders.items():
            rec = touched.get(other_id) or json.loads(record)
            if token in rec.get("identifiers", []):
                rec["identifiers"] = [t for t in rec["identifiers"] if t != token]
                touched[other_id] = rec

    def _prefetch_members(self, events: Iterable[dict[str, Any]],
                          touched: dict[str, dict[str, Any]]) -> None:
        """Load the records of the members a batch's sales name with one query per
        500 (instead of one per member); ``_load_for_update`` then finds them."""
        wanted = []
        for member_id in sorted({m for ev in events if ev.get("type") == "sale"
                                 and isinstance(m := ev.get("member_id"), str)
                                 and not m.startswith("local:") and m not in touched}):
            cached = self._records.get(member_id)
            if cached is None:
                wanted.append(member_id)
            else:
                touched[member_id] = _copy_record(cached)
        for chunk in _chunks(wanted):
            marks = ",".join("?" * len(chunk))
            for member_id, record in self.db.execute(
                    f"SELECT member_id, record FROM members WHERE removed=0 "
                    f"AND member_id IN ({marks})", chunk):
                touched[member_id] = json.loads(record)

    def _apply_refund_lines(self, ev: dict[str, Any],
                            touched: dict[str, dict[str, Any]]) -> None:
        """A refund by line (1.1): the reversal the event carries, applied once, and
        only while each line keeps at most the units sold; the part that refunds
        the last unit marks the sale refunded (``purchase_count`` −1, promotions)."""
        sale_id = str(ev.get("sale_id"))
        new = self._new_sales.get(sale_id)
        if new is not None:
            if new[5]:
                return
            member_id, sale, at_utc = new[1], new[6], new[2]
        else:
            row = self.db.execute("SELECT member_id, refunded, at_utc FROM sales WHERE id=?",
                                  (sale_id,)).fetchone()
            if row is None or row[1]:
                return  # unknown or already refunded sale: recorded, no effect
            member_id, at_utc = row[0], row[2]
            sale = json.loads(self.db.execute("SELECT body FROM events WHERE id=?",
                                              (sale_id,)).fetchone()[0])
        sold = [int(line.get("qty", 1)) for line in sale.get("lines") or []]
        done = dict(self.db.execute("SELECT line, qty FROM refund_parts WHERE sale_id=?",
                                    (sale_id,)).fetchall())
        after = dict(done)
        for item in ev["lines"]:
            after[item["line"]] = after.get(item["line"], 0) + item["qty"]
        if any(not 0 <= line < len(sold) or qty > sold[line] for line, qty in after.items()):
            return  # more than sold: recorded, no effect (a sound terminal never sends it)
        self.db.executemany(
            "INSERT INTO refund_parts (sale_id, line, qty) VALUES (?,?,?) ON CONFLICT "
            "(sale_id, line) DO UPDATE SET qty = excluded.qty",
            [(sale_id, line, qty) for line, qty in after.items()])
        spend = effects.sale_spend(ev)
        completes = all(after.get(i, 0) == q for i, q in enumerate(sold))
        if new is not None:
            new[3] -= spend  # the sale row is written at the end of the batch
            new[5] = 1 if completes else 0
        else:
            self.db.execute("UPDATE sales SET net = net - ?, refunded = ? WHERE id=?",
                            (spend, 1 if completes else 0, sale_id))
            if member_id is not None:
                self.db.execute(_ADD_DAY, (member_id, at_utc[:10], -spend))
        rec = self._load_for_update(member_id, touched)
        if completes:
            self._apply_promotions(sale, rec, touched, None, -1)
        if rec is None:
            return
        holder = self._pool_of(sale, touched) or rec
        holder["balances"] = effects.apply_deltas(holder.get("balances") or {},
                                                  effects.sale_balance_deltas(ev), -1)
        if completes:
            stats = rec.setdefault("stats", {})
            stats["purchase_count"] = max(0, int(stats.get("purchase_count") or 0) - 1)
        units: dict[int, int] = {}
        for item in ev["lines"]:
            units[int(item["line"])] = units.get(int(item["line"]), 0) + int(item["qty"])
        _unsell_packages(sale_id, units, rec, self._local_day(_parse_time(ev["at"])))

    def _tier_upgrade(self, rec: dict[str, Any]) -> None:
        """(1.3) The club's tier decision: while the member meets the next tier's
        ``upgrade`` (spend **or** purchases of unrefunded sales in its window), the tier
        goes up; ``stats.tier_window`` then says the member's figures for the next one."""
        for _ in range(len(self.tiers)):
            ranks = [t["id"] for t in sorted(self.tiers, key=lambda t: t["rank"])]
            tier = rec.get("tier")
            at = ranks.index(tier) + 1 if tier in ranks else 0
            up = self.tiers_by_id[ranks[at]].get("upgrade") if at < len(ranks) else None
            if not isinstance(up, dict):
                rec["stats"].pop("tier_window", None)
                return
            days = int(up.get("window_days") or 0)
            since = ((self.clock() - timedelta(days=days)).astimezone(UTC).isoformat()
                     if days else "")
            count, total = self.db.execute(
                "SELECT count(*), coalesce(SUM(net), 0) FROM sales INDEXED BY sales_spend "
                "WHERE member_id=? AND at_utc >= ? AND refunded=0",
                (rec["member_id"], since)).fetchone()
            rec["stats"]["tier_window"] = {"days": days, "spend": int(total),
                                           "purchases": int(count)}
            if not ((up.get("min_spend") and total >= up["min_spend"])
                    or (up.get("min_purchases") and count >= up["min_purchases"])):
                return
            rec["tier"] = ranks[at]

    def _spend_30d_of(self, member_ids: list[str]) -> dict[str, int]:
        """``spend_30d`` of these members (absent: 0), summed from the covering index."""
        since = (self.clock() - timedelta(days=30)).astimezone(UTC).isoformat()
        first_day = since[:10]  # whole days after it from sales_days, itself from sales
        out: dict[str, int] = {}
        for chunk in _chunks(member_ids):
            marks = ",".join("?" * len(chunk))
            out.update(self.db.execute(
                f"SELECT member_id, SUM(net) FROM ("
                f"SELECT member_id, net FROM sales_days WHERE member_id IN ({marks}) "
                f"AND day > ? UNION ALL "
                f"SELECT member_id, net FROM sales INDEXED BY sales_spend "
                f"WHERE member_id IN ({marks}) AND at_utc >= ? AND at_utc < ? AND refunded=0"
                f") GROUP BY member_id",
                (*chunk, first_day, *chunk, since, _next_day(first_day))).fetchall())
        return {k: int(v) for k, v in out.items()}


_MAX_CACHED_RECORDS = 100_000
#: Cards a member record keeps as reported lost (the oldest drop out).
MAX_LOST_CARDS = 20


def _referrals_of(rec: dict[str, Any]) -> dict[str, Any]:
    """The record's ``referrals`` {count, earned: {kind: amount}} (1.3), made when absent."""
    found = rec.get("referrals")
    if not isinstance(found, dict) or not isinstance(found.get("earned"), dict):
        found = rec["referrals"] = {"count": 0, "earned": {}}
    found["count"] = int(found.get("count") or 0)
    return found


def _sell_packages(sale: Mapping[str, Any], rec: dict[str, Any], local_day: str) -> None:
    """(1.3) The packages a sale's lines sell (products with ``package`` in the club's
    catalogue): a member holding a package of that product, not expired beyond its
    grace days, has it renewed — expiry from the later of today and the old expiry,
    visits added; otherwise a new package starts today (docs/protocol/catalogue.md)."""
    from datetime import date as _date
    from datetime import timedelta as _td

    from agent.rules import packages as pk
    from hw_sim.club.catalogue import PACKAGES_BY_SKU

    today = _date.fromisoformat(local_day)
    held = rec.setdefault("packages", [])
    balances = rec.setdefault("balances", {})
    for i, line in enumerate(sale.get("lines") or []):
        product = PACKAGES_BY_SKU.get(str((line or {}).get("sku")))
        if product is None:
            continue
        spec = product["package"]
        for unit in range(max(0, int(line.get("qty") or 0))):
            mine = next((p for p in held if p.get("sku") == product["sku"]
                         and pk.state_on(p, today).state != "expired"), None)
            visits = spec["visits"]
            if mine is not None:
                start = max(today, pk.expires_on(mine) + _td(days=1))
                before = _date.fromisoformat(str(mine["expires"]))
                after = start + _td(days=spec["valid_days"] - 1 - pk.frozen_days(mine))
                mine["expires"] = after.isoformat()
                added = None
                if visits is not None and mine.get("visits_total") is not None:
                    added = visits
                    mine["visits_total"] = int(mine["visits_total"]) + visits
                    kind = pk.visits_kind(mine["package_id"])
                    balances[kind] = int(balances.get(kind, 0)) + visits
                mine.setdefault("sold_by", []).append(
                    {"sale_id": str(sale["id"]), "line": i, "visits": added,
                     "days": (after - before).days})
                continue
            package_id = f"pk-{str(sale['id'])[-12:]}-{i}-{unit}"
            held.append({"package_id": package_id, "sku": product["sku"],
                         "name": product["names"].get("en"), "visits_total": visits,
                         "starts": today.isoformat(),
                         "expires": (today + _td(days=spec["valid_days"] - 1)).isoformat(),
                         "grace_days": spec["grace_days"],
                         "freezable_days": spec["freezable_days"], "frozen": [],
                         "sold_by": [{"sale_id": str(sale["id"]), "line": i,
                                      "visits": visits, "days": spec["valid_days"]}]})
            if visits is not None:
                balances[pk.visits_kind(package_id)] = visits


def _unsell_packages(sale_id: str, units: Mapping[int, int] | None, rec: dict[str, Any],
                     local_day: str) -> None:
    """(1.3) A refund takes back what the sale's package lines gave (``units``: line →
    units refunded; None: the whole sale), each grant once (it leaves ``sold_by``):
    the visits it added come off ``visits_total`` and the balance (not below zero),
    the days it added off ``expires``. A package left with no sale that sold it is
    ``revoked`` on the refund's local day (ended, its visits 0; the entry stays)."""
    from agent.rules import packages as pk

    balances = rec.setdefault("balances", {})
    wanted = dict(units) if units is not None else None
    for pkg in reversed(rec.get("packages") or []):
        grants = pkg.get("sold_by") if isinstance(pkg, dict) else None
        if not isinstance(grants, list) or not grants:
            continue
        kind = pk.visits_kind(str(pkg["package_id"]))
        for grant in reversed(list(grants)):  # the latest unit of a line first
            if not isinstance(grant, dict) or grant.get("sale_id") != sale_id:
                continue
            line = int(grant.get("line") or 0)
            if wanted is not None:
                if wanted.get(line, 0) <= 0:
                    continue
                wanted[line] -= 1
            grants.remove(grant)
            visits = grant.get("visits")
            if visits is not None and pkg.get("visits_total") is not None:
                pkg["visits_total"] = max(0, int(pkg["visits_total"]) - int(visits))
                if kind in balances:
                    balances[kind] = max(0, int(balances[kind]) - int(visits))
            pkg["expires"] = (date.fromisoformat(str(pkg["expires"]))
                              - timedelta(days=int(grant.get("days") or 0))).isoformat()
        if not grants:
            pkg["revoked"] = local_day
            if kind in balances:
                balances[kind] = 0


def _copy_record(rec: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a member record a batch may change (the parts it changes are copied)."""
    out = dict(rec)
    for key in ("balances", "stats", "applied"):
        if isinstance(out.get(key), dict):
            out[key] = dict(out[key])
    if isinstance(out.get("identifiers"), list):
        out["identifiers"] = list(out["identifiers"])
    if isinstance(out.get("packages"), list):  # (1.3) sales, refunds, freezes change them
        out["packages"] = [{k: list(v) if isinstance(v, list) else v for k, v in p.items()}
                           if isinstance(p, dict) else p for p in out["packages"]]
    return out


_SAVE_MEMBER = ("INSERT INTO members (member_id, version, record, removed) VALUES (?,?,?,0) "
                "ON CONFLICT(member_id) DO UPDATE SET version=excluded.version, "
                "record=excluded.record, removed=0")
_ENCODE = json.JSONEncoder(separators=(",", ":")).encode
_ADD_DAY = ("INSERT INTO sales_days (member_id, day, net) VALUES (?,?,?) "
            "ON CONFLICT (member_id, day) DO UPDATE SET net = net + excluded.net")


def _next_day(day: str) -> str:
    """The UTC day after ``day`` (``YYYY-MM-DD``); sorts after every time of ``day``."""
    return (datetime.fromisoformat(day) + timedelta(days=1)).date().isoformat()


_DECODER = json.JSONDecoder()
_EVENTS_KEY = '"events":['


def parse_batch(payload: bytes) -> tuple[Any, list[str] | None]:
    """A batch payload parsed, and each event's own JSON text when it has the compact
    form the terminal sends (``None`` otherwise: then the bodies are encoded again).

    Raises ``ValueError`` (as ``json.loads``) for a payload that is not JSON.
    """
    text = payload.decode("utf-8")
    at = text.find(_EVENTS_KEY)
    if at > 0:
        try:
            head = json.loads(text[:at] + _EVENTS_KEY + "]}")
            pos = at + len(_EVENTS_KEY)
            events: list[Any] = []
            raws: list[str] = []
            if text[pos] == "]":
                pos += 1
            else:
                while True:
                    value, end = _DECODER.raw_decode(text, pos)
                    events.append(value)
                    raws.append(text[pos:end])
                    pos = end + 1
                    if text[end] == "]":
                        break
                    if text[end] != ",":
                        raise ValueError("not a compact events list")
            if isinstance(head, dict) and text[pos:].strip() == "}":
                head["events"] = events
                return head, raws
        except (ValueError, IndexError):
            pass
    return json.loads(text), None


def prepare_batch(terminal_id: str, payload: bytes) -> PreparedBatch:
    """Parse a batch payload and check each event (pure: no ledger needed).

    Raises ``ValueError`` for a payload that is not JSON or has no events list.
    """
    doc, raw = parse_batch(payload)
    if not isinstance(doc, dict) or not isinstance(doc.get("events"), list):
        raise ValueError("the batch has no events list")
    problems: dict[str, str | None] = {}
    facts: dict[str, Facts] = {}
    for ev in doc["events"]:
        if isinstance(ev, dict) and isinstance(ev_id := ev.get("id"), str) \
                and ev_id not in problems:
            problems[ev_id] = _structural_problem(ev, terminal_id, facts)
    return PreparedBatch(doc, raw, problems, facts)


def _is_seq(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _chunks(items: list[Any], size: int = 500) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _parse_time(text: str) -> datetime:
    at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _structural_problem(ev: Mapping[str, Any], terminal_id: str,
                        facts: dict[str, Facts] | None = None) -> str | None:
    """Why an event cannot be taken (None: it can); a sound sale's time, deltas and
    spend go into ``facts`` by id."""
    for key, kind in REQUIRED_KEYS.items():
        value = ev.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            return f"malformed: {key}"
    if ev.get("terminal_id") not in (None, terminal_id):
        return "foreign_terminal"
    if ev["type"] not in KNOWN_TYPES:
        return f"unknown_type: {ev['type']}"
    try:
        at = _parse_time(ev["at"])
    except ValueError:
        return "malformed: at"
    if ev["type"] == "sale":
        if (problem := effects.sale_problem(ev)) is not None:
            return problem
        try:
            deltas = effects.sale_balance_deltas(ev)
            spend = effects.sale_spend(ev)
        except (KeyError, TypeError, ValueError, AttributeError):
            return "malformed: sale amounts"
        if facts is not None:
            facts[ev["id"]] = (at, deltas, spend)
    elif ev["type"] == "refund_lines":
        return effects.refund_lines_problem(ev)
    elif ev["type"] in effects.ACCOUNT_EVENT_SIGNS:
        return effects.account_problem(ev)
    elif ev["type"] == "gift_card_redeem":
        return effects.gift_card_redeem_problem(ev)
    elif ev["type"] in ("expense", "cash_receipt"):
        return effects.amount_problem("amount", ev.get("amount"))
    elif ev["type"] == "balance_adjust":
        return effects.adjust_problem(ev)
    elif ev["type"] == "package_freeze":
        if not isinstance(ev.get("member_id"), str) or not isinstance(ev.get("package_id"), str):
            return "malformed: package_freeze needs member_id and package_id"
        for key in ("from", "until"):
            try:
                date.fromisoformat(str(ev.get(key)))
            except ValueError:
                return f"malformed: package_freeze.{key} is not a date"
    elif ev["type"] == "package_use":
        if not isinstance(ev.get("member_id"), str) or not isinstance(ev.get("package_id"), str):
            return "malformed: package_use needs member_id and package_id"
        units = ev.get("units")
        if type(units) is not int or not 1 <= units <= 100:
            return "out_of_range: package_use.units must be 1 … 100"
    elif ev["type"] == "correction":
        if not isinstance(ev.get("ref_id"), str) or ev.get("action") not in ("void", "amend"):
            return "malformed: correction"
        if ev.get("ref_type") == "member_enrol" and not isinstance(ev.get("member_id"), str):
            return "malformed: correction.member_id"
    return None
