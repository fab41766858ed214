"""The store's schema and its versioned migrations.

The schema version is ``PRAGMA user_version``. Opening a store runs every missing
migration in order, each inside one transaction together with the new
``user_version``, after a copy of the file has been taken with SQLite's online
backup API. A migration only ever adds or reshapes; none drops an event.

Never edit a released migration: add the next one. ``SCHEMA_VERSION`` is the
version this code reads and writes.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent.errors import StorageError

SCHEMA_VERSION = 7


@dataclass(frozen=True)
class Migration:
    """One step from ``version - 1`` to ``version``."""

    version: int
    description: str
    statements: tuple[str, ...] = ()
    run: Callable[[Any], None] | None = None


_V1 = (
    # Small key/value facts: terminal_id, merchant_id, last_seq (the seq counter,
    # kept apart from the events so that pruning can never let a seq be reused),
    # club_applied_seq, members_version, import_gen.
    """CREATE TABLE meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    ) WITHOUT ROWID""",
    # The outbox. `body` is the full wire event (compact JSON). The columns beside
    # it are what queries need without parsing JSON.
    """CREATE TABLE events (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        type TEXT NOT NULL,
        at TEXT NOT NULL,
        at_us INTEGER NOT NULL,
        member_id TEXT,
        ref_id TEXT,
        recorded_by TEXT,
        state TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'accepted', 'rejected')),
        reason TEXT,
        recorded_at TEXT NOT NULL,
        sent_at TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        acked_at TEXT,
        state_at TEXT NOT NULL,
        redeemed_value INTEGER NOT NULL DEFAULT 0,
        credit_used INTEGER NOT NULL DEFAULT 0,
        purchases INTEGER NOT NULL DEFAULT 0,
        spend INTEGER NOT NULL DEFAULT 0,
        body TEXT NOT NULL
    )""",
    "CREATE INDEX events_state ON events (state, seq)",
    "CREATE INDEX events_member ON events (member_id, seq) WHERE member_id IS NOT NULL",
    "CREATE INDEX events_ref ON events (ref_id) WHERE ref_id IS NOT NULL",
    # Balance change of each own event per member and kind: the projection is one
    # SUM over a clustered range of this table.
    """CREATE TABLE event_deltas (
        member_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        kind TEXT NOT NULL,
        amount INTEGER NOT NULL,
        PRIMARY KEY (member_id, seq, kind)
    ) WITHOUT ROWID""",
    # The member cache: the record as the club sent it, plus applied[this terminal].
    """CREATE TABLE members (
        member_id TEXT PRIMARY KEY,
        version INTEGER NOT NULL,
        applied_here INTEGER NOT NULL DEFAULT 0,
        gen INTEGER NOT NULL DEFAULT 0,
        provisional INTEGER NOT NULL DEFAULT 0,
        record TEXT NOT NULL
    )""",
    """CREATE TABLE member_tokens (
        token TEXT PRIMARY KEY,
        member_id TEXT NOT NULL
    ) WITHOUT ROWID""",
    "CREATE INDEX member_tokens_member ON member_tokens (member_id)",
    # slot = 'current' or 'refused'.
    """CREATE TABLE bundles (
        slot TEXT PRIMARY KEY,
        version INTEGER,
        envelope TEXT NOT NULL,
        reason TEXT,
        saved_at TEXT NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TABLE command_results (
        id TEXT PRIMARY KEY,
        result TEXT NOT NULL,
        at TEXT NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TABLE staff (
        staff_id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('cashier', 'manager', 'technician')),
        pin_hash TEXT,
        active INTEGER NOT NULL DEFAULT 1,
        created_by TEXT, created_at TEXT NOT NULL,
        updated_by TEXT, updated_at TEXT NOT NULL
    )""",
    """CREATE TABLE staff_badges (
        token TEXT PRIMARY KEY,
        staff_id TEXT NOT NULL REFERENCES staff (staff_id)
    ) WITHOUT ROWID""",
    """CREATE TABLE attendance (
        event_id TEXT PRIMARY KEY,
        staff_id TEXT NOT NULL,
        action TEXT NOT NULL CHECK (action IN ('in', 'out')),
        at TEXT NOT NULL,
        at_us INTEGER NOT NULL,
        identified_by TEXT,
        created_by TEXT, created_at TEXT NOT NULL,
        updated_by TEXT, updated_at TEXT NOT NULL
    )""",
    "CREATE INDEX attendance_at ON attendance (at_us)",
    """CREATE TABLE appointments (
        appointment_id TEXT PRIMARY KEY,
        customer TEXT,
        service TEXT,
        staff_id TEXT,
        start TEXT NOT NULL,
        start_us INTEGER NOT NULL,
        end_us INTEGER NOT NULL,
        minutes INTEGER NOT NULL,
        note TEXT,
        status TEXT NOT NULL CHECK (status IN ('active', 'cancelled')),
        created_by TEXT, created_at TEXT NOT NULL,
        updated_by TEXT, updated_at TEXT NOT NULL
    )""",
    "CREATE INDEX appointments_staff ON appointments (staff_id, start_us)",
    "CREATE INDEX appointments_start ON appointments (start_us)",
    # Expenses and cash receipts of the day, as the UI lists them.
    """CREATE TABLE cash_entries (
        event_id TEXT PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('expense', 'cash_receipt')),
        amount INTEGER NOT NULL,
        category TEXT,
        note TEXT,
        at TEXT NOT NULL,
        at_us INTEGER NOT NULL,
        created_by TEXT, created_at TEXT NOT NULL,
        updated_by TEXT, updated_at TEXT NOT NULL
    )""",
    "CREATE INDEX cash_entries_at ON cash_entries (at_us)",
)

_V2 = (
    # The serialized size of each event, so next_batch can cut a batch at 256 KiB
    # without re-encoding every waiting event; back-filled from the stored bodies.
    "ALTER TABLE events ADD COLUMN size INTEGER NOT NULL DEFAULT 0",
    "UPDATE events SET size = length(CAST(body AS BLOB))",
    # Only the waiting events: these indexes stay small however long the history.
    "CREATE INDEX events_waiting ON events (seq) WHERE state IN ('pending', 'sent')",
    "CREATE INDEX events_waiting_type ON events (type, state) WHERE state IN ('pending', 'sent')",
    # Day counters (redeemed today per member) read a time range, index only.
    "CREATE INDEX events_member_at ON events (member_id, at_us, state, redeemed_value, "
    "credit_used) WHERE member_id IS NOT NULL",
    "CREATE INDEX events_at ON events (at_us)",
    # Balance deltas with a running sum per member and kind, and the total: the
    # projection becomes total - running sum at applied[T], two index probes per
    # kind instead of a SUM over every pending event (v1). Derived data only:
    # rebuilt from the v1 rows, no event is touched.
    """CREATE TABLE event_deltas_v2 (
        member_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        seq INTEGER NOT NULL,
        amount INTEGER NOT NULL,
        running INTEGER NOT NULL,
        PRIMARY KEY (member_id, kind, seq)
    ) WITHOUT ROWID""",
    """INSERT INTO event_deltas_v2 (member_id, kind, seq, amount, running)
        SELECT member_id, kind, seq, amount,
               sum(amount) OVER (PARTITION BY member_id, kind ORDER BY seq)
        FROM event_deltas""",
    "DROP TABLE event_deltas",
    "ALTER TABLE event_deltas_v2 RENAME TO event_deltas",
    """CREATE TABLE delta_totals (
        member_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        total INTEGER NOT NULL,
        PRIMARY KEY (member_id, kind)
    ) WITHOUT ROWID""",
    """INSERT INTO delta_totals (member_id, kind, total)
        SELECT member_id, kind, sum(amount) FROM event_deltas GROUP BY member_id, kind""",
)

_V3 = (
    # The quote a sale was committed from (services.py's commit idempotency), so a
    # retried commit finds its sale by one index probe instead of a walk through
    # the outbox. UNIQUE: at most one sale per quote, whatever calls the store.
    "ALTER TABLE events ADD COLUMN quote_id TEXT",
    # Back-fill from the bodies. A store written by an agent with the double-commit
    # race may hold two sales of one quote: the first (lowest seq) keeps the key,
    # the later ones stay as they are (no event is changed or dropped) but
    # without it, so the unique index can be built.
    """UPDATE events SET quote_id = q.qid FROM (
        SELECT seq, qid, row_number() OVER (PARTITION BY qid ORDER BY seq) AS n
        FROM (SELECT seq, CASE WHEN json_valid(body) AND
                          json_type(body, '$.quote_id') = 'text'
                          THEN json_extract(body, '$.quote_id') END AS qid
              FROM events WHERE type = 'sale')
        WHERE qid IS NOT NULL) AS q
       WHERE events.seq = q.seq AND q.n = 1""",
    "CREATE UNIQUE INDEX events_quote ON events (quote_id) WHERE quote_id IS NOT NULL",
)

_V4 = (
    # The promotions of each sale (its uses, codes used and coupons issued), so the
    # rules engine's counts read these rows instead of every sale body through
    # LIKE (issue #21). One row per sale that has any; written with the sale.
    """CREATE TABLE sale_promotions (
        seq INTEGER PRIMARY KEY,
        promo TEXT NOT NULL
    )""",
)

#: The keys of a sale body ``sale_promotions`` keeps (as schema 4 defined them).
_V4_KEYS = ("uses", "codes_used", "coupons_issued")


def _v4_backfill(db: Any) -> None:
    """Index the promotions of the sales already in the outbox (bodies read in
    pages by seq; a body that is not a JSON object is left out, as before)."""
    last = 0
    while True:
        rows = db.execute_sql("SELECT seq, body FROM events WHERE type = 'sale' AND seq > ? "
                              "ORDER BY seq LIMIT 2000", (last,)).fetchall()
        if not rows:
            return
        found = []
        for seq, body in rows:
            try:
                data = json.loads(body)
            except ValueError:
                continue
            if isinstance(data, dict):
                part = {k: data[k] for k in _V4_KEYS if data.get(k)}
                if part:
                    found.append((seq, json.dumps(part, separators=(",", ":"),
                                                  ensure_ascii=False)))
        if found:
            db.connection().executemany(
                "INSERT INTO sale_promotions (seq, promo) VALUES (?, ?)", found)
        last = rows[-1][0]


def _v5_customer_name(db: Any) -> None:
    """``appointments.customer_name``, added only when missing: a file whose version
    number was set back by hand (or restored over a newer one) keeps its column."""
    columns = {row[1] for row in db.execute_sql("PRAGMA table_info(appointments)").fetchall()}
    if "customer_name" not in columns:
        db.execute_sql("ALTER TABLE appointments ADD COLUMN customer_name TEXT")


_V6 = (
    # The club's product catalogue in use (agent/offline_queue/catalogue.py): each
    # product's JSON, and its sku and names folded for search; barcodes to skus.
    # IF NOT EXISTS: a file whose version number was set back keeps its tables (as v5).
    """CREATE TABLE IF NOT EXISTS catalogue_products (
        sku TEXT PRIMARY KEY,
        body TEXT NOT NULL,
        search TEXT NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS catalogue_barcodes (
        barcode TEXT PRIMARY KEY,
        sku TEXT NOT NULL
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS catalogue_barcodes_sku ON catalogue_barcodes (sku)",
)


_V7 = (
    # Members kept from online lookups (agent/offline_queue/members.py LOOKED_UP_KEY),
    # oldest first: the cache keeps at most MAX_LOOKED_UP of them without a scan of
    # every cached record. The expression is the one the queries use, word for word.
    """CREATE INDEX IF NOT EXISTS members_looked_up
        ON members (json_extract(record, '$._looked_up_at'))
        WHERE json_extract(record, '$._looked_up_at') IS NOT NULL""",
)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "first schema", _V1),
    Migration(2, "event sizes, running balance sums, indexes for waiting events and days", _V2),
    Migration(3, "the quote of each sale, indexed (commit idempotency without a scan)", _V3),
    Migration(4, "the promotions of each sale, indexed (promotion counts without a scan)",
              _V4, _v4_backfill),
    Migration(5, "the name of an appointment's customer who is not a member",
              run=lambda db: _v5_customer_name(db)),
    Migration(6, "the club's product catalogue", _V6),
    Migration(7, "members kept from online lookups, indexed by when (the lookup cache's bound)",
              _V7),
)


def schema_version(db: Any) -> int:
    """The schema version of an open database (0 = empty)."""
    row = db.execute_sql("PRAGMA user_version").fetchone()
    return int(row[0])


def backup_file(db: Any, path: Path, version: int, now: datetime) -> Path:
    """Copy the live database with the online backup API (consistent, WAL included)."""
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{path.name}.v{version}-{stamp}.bak")
    n = 1
    while target.exists():
        target = path.with_name(f"{path.name}.v{version}-{stamp}-{n}.bak")
        n += 1
    dest = sqlite3.connect(str(target))
    try:
        db.connection().backup(dest)
    except BaseException:
        dest.close()
        # A half-written copy (disk full) would only take the space still needed.
        target.unlink(missing_ok=True)
        raise
    dest.close()
    return target


def migrate(db: Any, path: Path | None, *, target: int = SCHEMA_VERSION,
            now: datetime | None = None) -> Path | None:
    """Bring ``db`` to ``target``; returns the backup taken, if any.

    A database that already holds a schema is backed up next to itself first (when
    ``path`` is a file). Each migration and its ``user_version`` commit together,
    so a crash leaves the file at one version or the next, never in between.
    """
    current = schema_version(db)
    if current > target:
        raise StorageError(
            f"the store has schema version {current}, newer than this agent knows "
            f"({target}); install the newer agent or restore a backup"
        )
    if current == target:
        return None
    backup = None
    if current > 0 and path is not None:
        backup = backup_file(db, path, current, now or datetime.now(UTC))
    for step in MIGRATIONS:
        if current < step.version <= target:
            with db.atomic():
                for sql in step.statements:
                    db.execute_sql(sql)
                if step.run is not None:
                    step.run(db)
                # PRAGMA user_version is part of the transaction.
                db.execute_sql(f"PRAGMA user_version = {int(step.version)}")
    return backup
