"""The terminal's durable store: outbox, member cache, bundles, command results.

One SQLite file (peewee), WAL with ``synchronous=FULL``: a method that records a
fact returns only after the fact is on disk. Every SQLite/peewee/OS error is
turned into a :class:`agent.errors.StorageError` (or a subclass) with a message a
technician can act on. Pure arithmetic lives in :mod:`.events`.

Thread use: each thread gets its own SQLite connection (peewee); writes take the
write lock at ``BEGIN IMMEDIATE`` so the ``seq`` counter is read and written
under one lock, across threads and processes.
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import tempfile
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import peewee

from agent.errors import ClubtermError, LimitExceeded, StorageError
from agent.offline_queue import events as ev
from agent.offline_queue.local_data import LocalDataMixin
from agent.offline_queue.models import BoundModels
from agent.offline_queue.schema import SCHEMA_VERSION, migrate, schema_version
from agent.offline_queue.uuid7 import uuid7_str

STATES = ("pending", "sent", "accepted", "rejected")
WAITING = ("pending", "sent")
#: Deltas of projected stats live beside the balance kinds under this prefix
#: (protocol balance kinds are ``points`` and ``credit.*``).
STATS_PREFIX = "stats."

#: Accepted events younger than this (by ``at`` and by ack) stay even when
#: reflected: day reports, refunds and their already-refunded check need them.
DEFAULT_KEEP = timedelta(days=35)
#: The shortest ``keep``: today's (local) day must stay whole for its report.
MIN_KEEP = timedelta(days=2)
#: How long command results are kept (a resent command id gets the same answer).
COMMAND_RESULTS_KEEP = timedelta(days=7)
#: Events pruned per transaction by default.
PRUNE_BATCH = 500


class DiskFull(StorageError):
    """The file system of the store has no space left."""


class ReadOnlyStore(StorageError):
    """The store cannot be written (read-only mount, permissions, opened read-only)."""


class CorruptStore(StorageError):
    """The store file is damaged or is not a clubterm database."""


class ForeignStore(StorageError):
    """The store file is empty or is not a clubterm store; it was left as it is."""


class InvalidRecord(ClubtermError, ValueError):
    """A member record, change set or snapshot line is malformed; nothing was applied
    (a snapshot keeps the chunks applied before the bad line; see docs/store.md)."""


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


def _utc_text(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds")


def _sqlite_cause(exc: BaseException) -> BaseException:
    """The sqlite3 (or OS) error behind a peewee error.

    When SQLite rolls a transaction back by itself (disk full, I/O error), peewee's
    own ROLLBACK then fails with "no transaction is active" and hides the real
    error in its context chain: skip such follow-up errors.
    """
    found: list[BaseException] = []
    todo: list[BaseException] = [exc]
    seen: set[int] = set()
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, sqlite3.Error | OSError):
            found.append(current)
        if current.args and isinstance(current.args[0], BaseException):
            todo.append(current.args[0])
        for nxt in (current.__cause__, current.__context__):
            if nxt is not None:
                todo.append(nxt)
    for candidate in found:
        if "no transaction is active" not in str(candidate):
            return candidate
    return found[0] if found else exc


def _fs_readonly(folder: Path) -> bool:
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def storage_error(exc: BaseException, path: Path, action: str) -> StorageError:
    """Turn a library error into a StorageError a technician can act on."""
    cause = _sqlite_cause(exc)
    name = str(getattr(cause, "sqlite_errorname", ""))
    text = str(cause)
    folder = path.parent
    os_errno = getattr(cause, "errno", None)
    fs_readonly = fs_full = False
    try:
        st = os.statvfs(folder)
        fs_readonly = bool(st.f_flag & os.ST_RDONLY)
        fs_full = st.f_bavail == 0
    except OSError:
        pass
    if name == "SQLITE_FULL" or os_errno == errno.ENOSPC or (
            name.startswith("SQLITE_IOERR") and fs_full and not fs_readonly):
        return DiskFull(
            f"the disk is full: free space on {folder} (the store {path} could not grow); "
            f"{action} failed and nothing was recorded. Everything recorded before is kept."
        )
    if name.startswith("SQLITE_READONLY") or os_errno in (errno.EROFS, errno.EACCES) or (
            (name.startswith("SQLITE_IOERR") or name == "SQLITE_CANTOPEN") and fs_readonly):
        return ReadOnlyStore(
            f"the store {path} cannot be written (is {folder} mounted read-only, or owned by "
            f"another user?); {action} failed and nothing was recorded. ({text})"
        )
    if name in ("SQLITE_CORRUPT", "SQLITE_NOTADB") or "malformed" in text or (
            "not a database" in text):
        return CorruptStore(
            f"the store file {path} is damaged ({text}); {action} failed. Stop the agent, keep "
            f"the file for support (do not delete it) and restore the newest backup as "
            f"described in docs/store.md."
        )
    if name in ("SQLITE_BUSY", "SQLITE_LOCKED") or "locked" in text:
        return StorageError(
            f"the store {path} stayed locked by another process (is a second agent running?); "
            f"{action} failed and nothing was recorded."
        )
    if name == "SQLITE_CANTOPEN" or isinstance(cause, FileNotFoundError):
        return StorageError(
            f"cannot open the store {path}: does {folder} exist and may the agent's user "
            f"write it? ({text})"
        )
    if name.startswith("SQLITE_IOERR"):
        return StorageError(
            f"an I/O error on the store {path} ({text}); {action} failed. Check the storage "
            f"device (dmesg, smartctl) and free space on {folder}."
        )
    return StorageError(f"{action} failed on the store {path}: {text}")


#: What a writing connection sets. WAL + FULL: a commit is on disk (fsync of the
#: WAL) before it returns. A WAL that grew (a reader held a checkpoint back, a
#: big import) is cut back to 32 MiB when it is reset, not kept at its peak.
_WRITE_PRAGMAS: tuple[tuple[str, Any], ...] = (
    ("journal_mode", "wal"), ("synchronous", "full"), ("foreign_keys", 0),
    ("temp_store", "memory"), ("journal_size_limit", 32 * 2**20))

_SQLITE_MAGIC = b"SQLite format 3\x00"
#: The tables without which a file is not a clubterm store, whatever its version.
_OWN_TABLES = ("meta", "events")


def _uri_path(path: Path) -> str:
    return urllib.parse.quote(str(path))


def _fsync_dir(folder: Path) -> None:
    """Make a new directory entry durable (best effort where the OS refuses)."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _check_file_head(path: Path) -> None:
    """Refuse an empty file or one that is not SQLite, reading only its first bytes.

    Done before SQLite sees the file: SQLite takes a 0-byte file for a new
    database (and would drop a ``-wal`` lying beside it).
    """
    try:
        with path.open("rb") as fh:
            head = fh.read(len(_SQLITE_MAGIC))
    except OSError as exc:
        raise storage_error(exc, path, f"opening the store {path}") from None
    if not head:
        _refuse_foreign(path, ("empty", "0 bytes"))
    if not head.startswith(_SQLITE_MAGIC):
        raise CorruptStore(
            f"the store file {path} is damaged or is not a clubterm store (it is not an "
            f"SQLite database); it was left as it is. Stop the agent, keep the file for "
            f"support (do not delete it) and restore the newest backup as described in "
            f"docs/store.md; if [paths] state_dir names the wrong folder, fix it instead."
        )


def _foreign_reason(conn: sqlite3.Connection) -> tuple[str, str] | None:
    """``("empty" | "foreign", why)`` when an SQLite database is not a clubterm store."""
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    tables = sorted(str(r[0]) for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"))
    if not tables:
        return ("empty", "an SQLite file without tables") if version == 0 else (
            "foreign", f"schema version {version} but no tables")
    shown = ", ".join(tables[:5]) + (", …" if len(tables) > 5 else "")
    if version == 0:
        return "foreign", f"its tables ({shown}) carry no clubterm schema version"
    missing = [t for t in _OWN_TABLES if t not in tables]
    if missing:
        return "foreign", (f"schema version {version} but no {' or '.join(missing)} table "
                           f"(it has: {shown})")
    if conn.execute("SELECT 1 FROM meta WHERE key = 'terminal_id'").fetchone() is None and (
            conn.execute("SELECT 1 FROM events LIMIT 1").fetchone() is not None):
        return "foreign", "it holds events but names no terminal"
    return None


def _refuse_foreign(path: Path, reason: tuple[str, str] | None) -> None:
    if reason is None:
        return
    kind, why = reason
    if kind == "empty":
        raise ForeignStore(
            f"the store {path} is empty ({why}): a store the agent made is never empty, so "
            f"it was truncated or replaced (power loss, a full disk, a copy gone wrong). It "
            f"was left as it is: a new store would restart seq at 1 and the club would "
            f"reject every new event. Restore the newest backup (docs/store.md, \"An empty "
            f"or foreign store file\"); only if this terminal never recorded anything, "
            f"delete the file and start the agent again."
        )
    raise ForeignStore(
        f"the file {path} is not a clubterm store ({why}); it was left as it is and no "
        f"store is set up over it. Check [paths] state_dir in the configuration; move the "
        f"file elsewhere if it belongs to another program, or restore this terminal's "
        f"store from the newest backup (docs/store.md, \"An empty or foreign store file\")."
    )


def _check_ours(path: Path, timeout: float) -> None:
    """Look at an existing file read-only and refuse it unless it is a clubterm store."""
    side = [Path(f"{path}-wal"), Path(f"{path}-shm")]
    had = [p.exists() for p in side]
    try:
        conn = sqlite3.connect(f"file:{_uri_path(path)}?mode=ro", uri=True, timeout=timeout)
        try:
            reason = _foreign_reason(conn)
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise storage_error(exc, path, f"opening the store {path}") from None
    if reason is not None:
        # The look may have made an empty -wal and a -shm beside a WAL-mode
        # file: take them away again, the folder stays as it was.
        for p, existed in zip(side, had, strict=True):
            with suppress(OSError):
                if not existed and (p.name.endswith("-shm") or p.stat().st_size == 0):
                    p.unlink()
    _refuse_foreign(path, reason)


class Store(LocalDataMixin):
    """The durable store of one terminal. Open it with :meth:`Store.open`."""

    def __init__(self, db: peewee.SqliteDatabase, path: Path, terminal_id: str,
                 merchant_id: str, *, readonly: bool,
                 clock: Callable[[], datetime] | None = None):
        # peewee is untyped; the store's own methods are the typed surface.
        self.db: Any = db
        self.path = path
        self.terminal_id = terminal_id
        self.merchant_id = merchant_id
        self.readonly = readonly
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        self.m = BoundModels(db)
        self._overhead = ev.batch_overhead(terminal_id)

    # ------------------------------------------------------------------ opening

    @classmethod
    def open(cls, db_path: str | os.PathLike[str], terminal_id: str | None = None,
             merchant_id: str | None = None, *, readonly: bool = False,
             clock: Callable[[], datetime] | None = None, timeout: float = 10.0) -> Store:
        """Open (create, migrate) the store of ``terminal_id``.

        A store belongs to one terminal: opening it for another raises StorageError.
        ``readonly`` opens without creating or migrating (CLI inspection); the ids
        may then be omitted and are read from the file. A damaged file is never
        modified: CorruptStore is raised. A file that is empty (0 bytes, or SQLite
        without tables) or is not a clubterm store is never set up over:
        ForeignStore is raised and the file is left byte for byte as it was. Only
        a missing file is created, built aside and moved into place complete.
        """
        path = Path(db_path)
        action = f"opening the store {path}"
        now = (clock or (lambda: datetime.now(UTC)))
        if readonly:
            if not path.exists():
                raise StorageError(f"there is no store at {path}")
            _check_file_head(path)
            database = f"file:{_uri_path(path)}?mode=ro"
            if not _fs_readonly(path.parent):
                _check_ours(path, timeout)
            else:
                # No -shm can be made on a read-only file system; nobody can write
                # the file either, so SQLite may treat it as immutable. (A WAL left
                # by a crash is then not read: see docs/store.md.)
                database += "&immutable=1"
            pragmas: list[tuple[str, Any]] = [("query_only", 1)]
            kwargs: dict[str, Any] = {"uri": True}
        else:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                exists = path.exists()
            except OSError as exc:
                raise storage_error(exc, path, action) from None
            if not exists:
                cls._create(path, terminal_id, merchant_id, now(), timeout)
            # Before any write (WAL mode, a migration): a file that is not ours
            # must come out of this unchanged. (Also after _create: another
            # process may have put its file there first.)
            _check_file_head(path)
            _check_ours(path, timeout)
            database = str(path)
            pragmas = list(_WRITE_PRAGMAS)
            kwargs = {}
        db: Any = peewee.SqliteDatabase(database, pragmas=pragmas, lock_type="IMMEDIATE",
                                   timeout=timeout, **kwargs)
        try:
            db.connect()
            # Reading the schema reads the file header: a garbage file fails here.
            db.execute_sql("SELECT count(*) FROM sqlite_master").fetchone()
            if not readonly:
                mode = db.execute_sql("PRAGMA journal_mode").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise StorageError(
                        f"the store {path} cannot use write-ahead logging (journal mode "
                        f"{mode}); put the state directory on a local file system"
                    )
                migrate(db, path, now=now())
            else:
                _refuse_foreign(path, _foreign_reason(db.connection()))
                if schema_version(db) != SCHEMA_VERSION:
                    raise StorageError(
                        f"the store {path} has schema version {schema_version(db)}, this "
                        f"agent reads {SCHEMA_VERSION}; start the agent once to upgrade it"
                    )
            tid, mid = cls._claim(db, terminal_id, merchant_id, readonly, path)
        except StorageError:
            db.close()
            raise
        except (peewee.PeeweeException, sqlite3.Error, OSError) as exc:
            db.close()
            raise storage_error(exc, path, action) from None
        return cls(db, path, tid, mid, readonly=readonly, clock=clock)

    @classmethod
    def _create(cls, path: Path, terminal_id: str | None, merchant_id: str | None,
                now: datetime, timeout: float) -> None:
        """Make a new store at ``path`` that is complete from its first byte.

        The store is built in a temporary file beside ``path`` (schema and
        terminal), checkpointed and then linked into place; a crash meanwhile
        leaves at most a ``.clubterm.db.*.new`` file, never an empty or half-made
        store at ``path`` (which the next start would have to refuse).
        """
        action = f"creating the store {path}"
        if terminal_id is None or merchant_id is None:
            raise StorageError(f"there is no store at {path} yet; open it with the terminal "
                               f"and merchant ids to create it")
        tmp: Path | None = None
        try:
            fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".new",
                                            dir=path.parent)
            os.close(fd)
            tmp = Path(tmp_name)
            db: Any = peewee.SqliteDatabase(str(tmp), pragmas=list(_WRITE_PRAGMAS),
                                            lock_type="IMMEDIATE", timeout=timeout)
            db.connect()
            try:
                migrate(db, None, now=now)
                cls._claim(db, terminal_id, merchant_id, False, path)
                busy, _, _ = db.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
                if busy:
                    raise StorageError(f"{action} failed: the new file {tmp} stayed busy")
            finally:
                db.close()
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass  # made meanwhile by another process: that one is opened and checked
            except OSError as exc:
                if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV):
                    raise
                if not path.exists():  # no hard links on this file system
                    os.rename(tmp, path)
            _fsync_dir(path.parent)
        except StorageError:
            raise
        except (peewee.PeeweeException, sqlite3.Error, OSError) as exc:
            raise storage_error(exc, path, action) from None
        finally:
            if tmp is not None:
                for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
                    with suppress(OSError):
                        leftover.unlink(missing_ok=True)

    @staticmethod
    def _claim(db: Any, terminal_id: str | None, merchant_id: str | None,
               readonly: bool, path: Path) -> tuple[str, str]:
        rows = dict(db.execute_sql(
            "SELECT key, value FROM meta WHERE key IN ('terminal_id', 'merchant_id')").fetchall())
        have_t, have_m = rows.get("terminal_id"), rows.get("merchant_id")
        if have_t is not None and terminal_id is not None and have_t != terminal_id:
            raise StorageError(
                f"the store {path} belongs to terminal {have_t}, not {terminal_id}; its "
                f"events carry that terminal's seq. Move it away only after its events "
                f"were sent (clubterm queue status)."
            )
        tid = terminal_id or have_t
        mid = merchant_id or have_m
        if tid is None or mid is None:
            raise StorageError(f"the store {path} has no terminal yet; open it with the "
                               f"terminal and merchant ids")
        if not readonly:
            with db.atomic():
                for key, value in (("terminal_id", tid), ("merchant_id", mid)):
                    db.execute_sql("INSERT INTO meta (key, value) VALUES (?, ?) "
                                   "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                                   (key, value))
                for key in ("last_seq", "club_applied_seq", "members_version", "import_gen"):
                    db.execute_sql("INSERT OR IGNORE INTO meta (key, value) VALUES (?, '0')",
                                   (key,))
        return tid, mid

    def close(self) -> None:
        """Close this thread's connection (others close when their thread ends)."""
        try:
            self.db.close()
        except (peewee.PeeweeException, sqlite3.Error):
            pass

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ helpers

    @contextmanager
    def _guard(self, action: str) -> Iterator[None]:
        try:
            yield
        except (peewee.PeeweeException, sqlite3.Error, OSError) as exc:
            raise storage_error(exc, self.path, action) from None

    def _writable(self, action: str) -> None:
        if self.readonly:
            raise ReadOnlyStore(f"the store {self.path} was opened read-only; {action} failed "
                                f"and nothing was recorded")

    def _now_text(self) -> str:
        return _utc_text(self.clock())

    def _meta_int(self, key: str) -> int:
        row = self.db.execute_sql("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return int(row[0]) if row else 0

    def _set_meta(self, key: str, value: object) -> None:
        self.db.execute_sql("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) "
                            "DO UPDATE SET value = excluded.value", (key, str(value)))

    def integrity_check(self) -> list[str]:
        """``PRAGMA integrity_check`` lines (``["ok"]`` when healthy)."""
        with self._guard("checking the store"):
            return [str(r[0]) for r in self.db.execute_sql("PRAGMA integrity_check").fetchall()]

    def schema_version(self) -> int:
        """The schema version of the file."""
        with self._guard("reading the schema version"):
            return schema_version(self.db)

    # ------------------------------------------------------------------ outbox

    def append(self, type: str, body: dict[str, Any], *, at: datetime,
               staff_id: str | None, offline: bool, check_funds: bool = False) -> StoredEvent:
        """Record one event durably and return it with its ``id`` and ``seq``.

        ``body`` holds the type's own keys (protocol.md); the store adds the common
        ones. Raises InvalidEvent for a malformed body and StorageError when it
        could not be made durable; in both cases nothing was recorded and no
        ``seq`` was used.

        A sale whose body has a ``quote_id`` (the local API's commit) is recorded
        at most once per quote: a second one raises QuoteAlreadyRecorded.
        ``check_funds`` (a sale of a member): inside the same write transaction,
        refuse with LimitExceeded (``points_balance`` / ``credit_balance`` /
        ``balance_bound``) when the points or credit it spends exceed the member's
        usable balances at this moment, or a balance would pass MAX_AMOUNT. The
        check and the append are one atomic step: no interleaving of sales on
        any thread or process takes a balance below zero.
        """
        ev.validate_body(type, body)
        at_text = ev.format_at(at)
        self._writable(f"recording a {type}")
        with self._guard(f"recording a {type}"), self.db.atomic():
            return self._append_in_tx(type, body, at, at_text, staff_id, offline, check_funds)

    def _append_in_tx(self, type_: str, body: dict[str, Any], at: datetime, at_text: str,
                      staff_id: str | None, offline: bool,
                      check_funds: bool = False) -> StoredEvent:
        """The body of :meth:`append`; the caller validated ``body`` and holds the
        write transaction (peewee's), whose connection is used directly here: this
        is the hot path."""
        conn = self.db.connection()
        effect = self._effect_in_tx(type_, body)
        quote_id = body.get("quote_id") if type_ == "sale" else None
        if not isinstance(quote_id, str):
            quote_id = None
        if quote_id is not None:
            earlier = conn.execute("SELECT id FROM events WHERE quote_id = ?",
                                   (quote_id,)).fetchone()
            if earlier is not None:
                raise ev.QuoteAlreadyRecorded(quote_id, str(earlier[0]))
        if check_funds and type_ == "sale" and effect.member_id is not None:
            self._check_funds_in_tx(effect.member_id, body, effect)
        seq = int(conn.execute(
            "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'last_seq' "
            "RETURNING value").fetchone()[0])
        event_id = uuid7_str()
        wire = ev.wire_event(event_id=event_id, seq=seq, type_=type_, at=at_text,
                             merchant_id=self.merchant_id, terminal_id=self.terminal_id,
                             staff_id=staff_id, offline=offline, body=body)
        data = ev.encode_json(wire)
        if len(data) + self._overhead > ev.MAX_PAYLOAD_BYTES:
            raise ev.InvalidEvent(
                f"a {type_} event of {len(data)} bytes cannot be sent (batches are at most "
                f"{ev.MAX_PAYLOAD_BYTES} bytes)")
        now = self._now_text()
        conn.execute(
            "INSERT INTO events (seq, id, type, at, at_us, member_id, ref_id, recorded_by, "
            "state, recorded_at, state_at, redeemed_value, credit_used, purchases, spend, "
            "size, body, quote_id) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (seq, event_id, type_, at_text, ev.epoch_us(at), effect.member_id,
             body.get("sale_id") if type_ == "refund" else None, staff_id, now, now,
             effect.redeemed_value, effect.credit_used, effect.purchases, effect.spend,
             len(data), data.decode("utf-8"), quote_id))
        if effect.member_id is not None:
            self._add_deltas_in_tx(effect.member_id, seq, _delta_rows(effect))
        if type_ == "member_enrol":
            self._provisional_member_in_tx(body)
        elif type_ == "card_link":
            self._link_token_in_tx(str(body["member_id"]), str(body["identifier"]),
                                   replaces=body.get("replaces"))
        return StoredEvent(id=event_id, seq=seq, type=type_, at=at_text, body=wire)

    def _check_funds_in_tx(self, member_id: str, body: dict[str, Any],
                           effect: ev.Effect) -> None:
        """Refuse a sale spending more than the usable balances (read in the same
        write transaction as the append, so nothing can spend them meanwhile)."""
        spent: dict[str, int] = {}
        if int(body.get("redeemed_points") or 0) > 0:
            spent[ev.POINTS] = int(body["redeemed_points"])
        for row in body.get("credits_used") or []:
            spent[str(row["kind"])] = spent.get(str(row["kind"]), 0) + int(row["amount"])
        balances = self.usable_balances(member_id)
        for kind, amount in spent.items():
            have = balances.get(kind, 0)
            if amount > 0 and amount > have:
                limit = "points_balance" if kind == ev.POINTS else "credit_balance"
                raise LimitExceeded(limit, f"the member has {have} {kind}, the sale spends "
                                           f"{amount}; nothing was recorded")
        for kind, change in effect.balance.items():
            if balances.get(kind, 0) + change > ev.MAX_AMOUNT:
                raise LimitExceeded("balance_bound", f"the member's {kind} balance would pass "
                                    f"{ev.MAX_AMOUNT}; nothing was recorded")

    def sale_for_quote(self, quote_id: str) -> OutboxEntry | None:
        """The sale recorded from ``quote_id`` (one probe of the ``events_quote``
        index), or None."""
        with self._guard("reading the outbox"):
            row = self.db.execute_sql(
                f"SELECT {self._ENTRY_COLS} FROM events INDEXED BY events_quote "  # noqa: S608 (placeholders only)
                "WHERE quote_id = ?", (quote_id,)).fetchone()
        return None if row is None else self._entry(row)

    def _effect_in_tx(self, type_: str, body: dict[str, Any]) -> ev.Effect:
        if type_ == "sale":
            return ev.sale_effect(body)
        if type_ != "refund":
            return ev.Effect()
        sale_id = body["sale_id"]
        row = self.db.execute_sql(
            "SELECT type, state, body FROM events WHERE id = ?", (sale_id,)).fetchone()
        if row is None:
            # A sale of another terminal, or one pruned long ago: the club applies the
            # refund; this terminal sees it when the member record comes back.
            return ev.Effect()
        if row[0] != "sale":
            raise ev.InvalidEvent(f"refund.sale_id {sale_id} is a {row[0]}, not a sale")
        if row[1] == "rejected":
            return ev.Effect()
        done = self.db.execute_sql(
            "SELECT id FROM events WHERE ref_id = ? AND type = 'refund' AND state != 'rejected'",
            (sale_id,)).fetchone()
        if done is not None:
            raise ev.AlreadyRefunded(f"sale {sale_id} was already refunded by {done[0]}")
        return ev.sale_effect(json.loads(row[2])).reversed()

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
        with self._guard("reading the outbox"):
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

    def mark_sent(self, ids: Iterable[str]) -> None:
        """Note that these events were published (they stay in the send list)."""
        id_list = list(ids)
        if not id_list:
            return
        self._writable("marking events sent")
        now = self._now_text()
        with self._guard("marking events sent"), self.db.atomic():
            for chunk in _chunks(id_list, 500):
                marks = ", ".join("?" for _ in chunk)
                self.db.execute_sql(
                    "UPDATE events SET sent_at = ?, attempts = attempts + 1, "  # noqa: S608 (placeholders only)
                    "state_at = CASE WHEN state = 'pending' THEN ? ELSE state_at END, "
                    # `+state`: find the rows by id; on `state` SQLite would walk
                    # every waiting event for each statement (O(queue) per call).
                    f"state = 'sent' WHERE +state IN ('pending', 'sent') AND id IN ({marks})",
                    (now, now, *chunk))

    def apply_ack(self, accepted: Sequence[str],
                  rejected: Sequence[tuple[str, str] | dict[str, Any]],
                  applied_seq: int | None) -> None:
        """Apply a club ack: accepted and rejected events leave the send list.

        A rejected event keeps its reason for the manager and stops counting in the
        balances. ``rejected`` holds ``(id, reason)`` pairs or the ack's own
        ``{"id", "reason"}`` objects. ``applied_seq`` only ever moves forward. Unknown ids (already
        pruned) are ignored; an ack never turns a rejected event into an accepted one.
        """
        self._writable("recording an ack")
        now = self._now_text()
        with self._guard("recording an ack"), self.db.atomic():
            for chunk in _chunks(list(accepted), 500):
                marks = ", ".join("?" for _ in chunk)
                self.db.execute_sql(
                    # An accepted event was sent even when the link skipped its
                    # "sent" mark (acked before the mark was due, docs/sync.md).
                    "UPDATE events SET state = 'accepted', acked_at = ?1, state_at = ?1, "  # noqa: S608 (placeholders only)
                    "sent_at = coalesce(sent_at, ?1), attempts = max(attempts, 1) "
                    f"WHERE +state IN ('pending', 'sent') AND id IN ({marks})",  # by id
                    (now, *chunk))
            for item in rejected:
                if isinstance(item, dict):
                    event_id, reason = str(item.get("id")), str(item.get("reason") or "")
                else:
                    event_id, reason = item
                row = self.db.execute_sql(
                    "UPDATE events SET state = 'rejected', reason = ?, acked_at = ?, "
                    "state_at = ? WHERE id = ? AND +state IN ('pending', 'sent') "
                    "RETURNING seq, member_id, type", (str(reason), now, now, event_id)
                ).fetchone()
                if row is None:
                    continue
                seq, member_id, type_ = row
                if member_id is not None:
                    self._drop_deltas_in_tx([(member_id, seq)])
                if type_ == "sale":
                    # A refund of a sale the club refused undoes nothing.
                    self._drop_deltas_in_tx((r_member, r_seq) for r_seq, r_member in
                                            self.db.execute_sql(
                        "SELECT seq, member_id FROM events WHERE ref_id = ? AND "
                        "member_id IS NOT NULL", (event_id,)).fetchall())
            if applied_seq is not None:
                self.db.execute_sql(
                    "UPDATE meta SET value = max(CAST(value AS INTEGER), ?) "
                    "WHERE key = 'club_applied_seq'", (int(applied_seq),))

    def _add_deltas_in_tx(self, member_id: str, seq: int,
                          rows: list[tuple[str, int]]) -> None:
        """Add one event's deltas; ``seq`` is the newest, so each new running sum
        is the kind's new total."""
        if not rows:
            return
        conn = self.db.connection()
        conn.executemany(
            "INSERT INTO delta_totals (member_id, kind, total) VALUES (?, ?, ?) "
            "ON CONFLICT (member_id, kind) DO UPDATE SET total = total + excluded.total",
            [(member_id, kind, amount) for kind, amount in rows])
        conn.executemany(
            "INSERT INTO event_deltas (member_id, kind, seq, amount, running) VALUES "
            "(?1, ?2, ?3, ?4, (SELECT total FROM delta_totals WHERE member_id = ?1 "
            "AND kind = ?2))", [(member_id, kind, seq, amount) for kind, amount in rows])

    def _drop_deltas_in_tx(self, pairs: Iterable[tuple[str, int]]) -> None:
        """Remove the deltas of events (member_id, seq) and redo the running sums of
        the kinds touched (rejections and pruning only: rare, off the sale path)."""
        conn = self.db.connection()
        touched: set[tuple[str, str]] = set()
        for member_id, seq in pairs:
            for (kind,) in conn.execute(
                    "DELETE FROM event_deltas WHERE member_id = ? AND seq = ? RETURNING kind",
                    (member_id, seq)).fetchall():
                touched.add((member_id, kind))
        for member_id, kind in touched:
            conn.execute(
                "UPDATE event_deltas SET running = w.r FROM (SELECT seq AS s, sum(amount) "
                "OVER (ORDER BY seq) AS r FROM event_deltas WHERE member_id = ?1 AND kind = ?2)"
                " AS w WHERE event_deltas.member_id = ?1 AND event_deltas.kind = ?2 "
                "AND event_deltas.seq = w.s", (member_id, kind))
            total = conn.execute(
                "SELECT sum(amount) FROM event_deltas WHERE member_id = ? AND kind = ?",
                (member_id, kind)).fetchone()[0]
            if total is None:
                conn.execute("DELETE FROM delta_totals WHERE member_id = ? AND kind = ?",
                             (member_id, kind))
            else:
                conn.execute("UPDATE delta_totals SET total = ? WHERE member_id = ? AND "
                             "kind = ?", (total, member_id, kind))

    def club_applied_seq(self) -> int:
        """The highest ``applied_seq`` the club has acked."""
        with self._guard("reading the outbox"):
            return self._meta_int("club_applied_seq")

    def last_seq(self) -> int:
        """The ``seq`` of the newest event ever recorded (0 if none)."""
        with self._guard("reading the outbox"):
            return self._meta_int("last_seq")

    def queue_stats(self) -> QueueStats:
        """Waiting (pending + sent) events, the oldest one's time, rejected, per type."""
        with self._guard("reading the outbox"):
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

    _ENTRY_COLS = ("seq, id, type, at, state, reason, recorded_at, sent_at, attempts, "
                   "acked_at, state_at, body")

    @staticmethod
    def _entry(row: Sequence[Any]) -> OutboxEntry:
        return OutboxEntry(seq=row[0], id=row[1], type=row[2], at=row[3], state=row[4],
                           reason=row[5], recorded_at=row[6], sent_at=row[7],
                           attempts=row[8], acked_at=row[9], state_at=row[10],
                           event=json.loads(row[11]))

    def iter_events(self, state: str | None = None, *, page: int = 1000) -> Iterator[OutboxEntry]:
        """Every outbox entry (of one state) in ``seq`` order, read page by page."""
        if state is not None and state not in STATES:
            raise ValueError(f"state must be one of {', '.join(STATES)}")
        last = 0
        while True:
            where = "seq > ?" + ("" if state is None else " AND state = ?")
            params: tuple[Any, ...] = (last,) if state is None else (last, state)
            with self._guard("reading the outbox"):
                rows = self.db.execute_sql(
                    f"SELECT {self._ENTRY_COLS} FROM events WHERE {where} ORDER BY seq "  # noqa: S608 (placeholders only)
                    f"LIMIT {int(page)}", params).fetchall()
            if not rows:
                return
            for row in rows:
                yield self._entry(row)
            last = rows[-1][0]

    def events(self, state: str | None = None) -> list[OutboxEntry]:
        """The outbox entries (of one state) in ``seq`` order."""
        return list(self.iter_events(state))

    def event(self, event_id: str) -> OutboxEntry | None:
        """One outbox entry by id."""
        with self._guard("reading the outbox"):
            row = self.db.execute_sql(
                f"SELECT {self._ENTRY_COLS} FROM events WHERE id = ?", (event_id,)).fetchone()  # noqa: S608 (placeholders only)
        return None if row is None else self._entry(row)

    def events_between(self, start: datetime, end: datetime,
                       types: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Wire events whose ``at`` is in [start, end) (a local day's summary),
        each with ``_state`` added (rejected ones included so a view can mark them)."""
        sql = "SELECT state, body FROM events WHERE at_us >= ? AND at_us < ?"
        params: list[Any] = [ev.epoch_us(start), ev.epoch_us(end)]
        if types:
            sql += f" AND type IN ({', '.join('?' for _ in types)})"
            params.extend(types)
        with self._guard("reading the outbox"):
            rows = self.db.execute_sql(sql + " ORDER BY seq", params).fetchall()
        return [{**json.loads(body), "_state": state} for state, body in rows]

    def sales_before(self, before_seq: int | None, limit: int) -> list[OutboxEntry]:
        """At most ``limit`` sale entries with ``seq < before_seq`` (None: from the
        newest), newest first (the till's list of recent sales)."""
        sql = f"SELECT {self._ENTRY_COLS} FROM events WHERE type = 'sale'"  # noqa: S608 (placeholders only)
        params: list[Any] = []
        if before_seq is not None:
            sql += " AND seq < ?"
            params.append(int(before_seq))
        with self._guard("reading the outbox"):
            rows = self.db.execute_sql(sql + f" ORDER BY seq DESC LIMIT {int(limit)}",
                                       params).fetchall()
        return [self._entry(row) for row in rows]

    def refunds_of(self, sale_ids: Sequence[str]) -> dict[str, OutboxEntry]:
        """The refund (not rejected) of each of ``sale_ids`` that has one."""
        out: dict[str, OutboxEntry] = {}
        for chunk in _chunks(list(sale_ids), 500):
            marks = ", ".join("?" for _ in chunk)
            with self._guard("reading the outbox"):
                rows = self.db.execute_sql(
                    f"SELECT {self._ENTRY_COLS}, ref_id FROM events WHERE type = 'refund' "  # noqa: S608 (placeholders only)
                    f"AND state != 'rejected' AND ref_id IN ({marks})", chunk).fetchall()
            for row in rows:
                out[str(row[-1])] = self._entry(row[:-1])
        return out

    def prune(self, *, now: datetime | None = None, keep: timedelta = DEFAULT_KEEP,
              batch: int = PRUNE_BATCH, limit: int | None = None) -> int:
        """Delete accepted events the club applied and the member cache reflects.

        An event goes only when all of these hold: it is **accepted**; it was acked
        and happened (``at``) more than ``keep`` ago; its seq ≤ the club's
        ``applied_seq``; and, for an event of a member in the cache, seq ≤ that
        member's ``applied[this terminal]`` (protocol.md: events are kept until
        the cache reflects them; however old, an unreflected event stays).
        Pending, sent and rejected events are never pruned, and ``seq`` numbers
        are never reused (the counter is in ``meta``).

        Works in transactions of at most ``batch`` events and stops after
        ``limit`` (None: until nothing is left), so a caller that shares the
        store with sales can keep each step short. Returns how many went.
        """
        if keep < MIN_KEEP:
            raise ValueError(f"keep must be at least {MIN_KEEP.days} days (today's report "
                             f"reads today's events), not {keep}")
        if batch < 1:
            raise ValueError("batch must be at least 1")
        self._writable("pruning the outbox")
        cutoff = (now or self.clock()) - keep
        keep_before, keep_before_us = _utc_text(cutoff), ev.epoch_us(cutoff)
        total = 0
        while limit is None or total < limit:
            size = batch if limit is None else min(batch, limit - total)
            with self._guard("pruning the outbox"), self.db.atomic():
                applied = self._meta_int("club_applied_seq")
                rows = self.db.execute_sql(
                    # Oldest first through the at_us index: the scan stops after
                    # `size` candidates instead of walking every accepted event.
                    "SELECT e.seq, e.member_id FROM events e INDEXED BY events_at "
                    "LEFT JOIN members m ON m.member_id = e.member_id "
                    "WHERE e.at_us < ? AND e.state = 'accepted' AND e.acked_at < ? "
                    "AND e.seq <= ? AND (e.member_id IS NULL OR m.member_id IS NULL "
                    "OR m.applied_here >= e.seq) ORDER BY e.at_us LIMIT ?",
                    (keep_before_us, keep_before, applied, size)).fetchall()
                if not rows:
                    return total
                self._prune_deltas_in_tx([(member_id, seq) for seq, member_id in rows
                                          if member_id is not None])
                seqs = [r[0] for r in rows]
                self.db.execute_sql(
                    f"DELETE FROM events WHERE seq IN ({', '.join('?' for _ in seqs)})", seqs)  # noqa: S608 (placeholders only)
                total += len(seqs)
            if len(rows) < size:
                return total
        return total

    def _prune_deltas_in_tx(self, pairs: list[tuple[str, int]]) -> None:
        """Remove the deltas of pruned events and shift the running sums after them.

        Like :meth:`_drop_deltas_in_tx`, but without recomputing each kind's window:
        a row's running sum drops by the amounts removed before it, one range
        ``UPDATE`` per removed row (pruned rows are usually a member's oldest, so
        that is one short update per member and kind).
        """
        conn = self.db.connection()
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

    # ------------------------------------------------------------------ members

    def members_version(self) -> int:
        """The club-wide member version the cache is at (0 = empty)."""
        with self._guard("reading the member cache"):
            return self._meta_int("members_version")

    def lookup(self, token: str) -> dict[str, Any] | None:
        """The cached record of the member holding ``token``, or None."""
        with self._guard("reading the member cache"):
            row = self.db.execute_sql(
                "SELECT m.record FROM member_tokens t JOIN members m ON m.member_id = t.member_id"
                " WHERE t.token = ?", (token,)).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def member(self, member_id: str) -> dict[str, Any] | None:
        """The cached record of ``member_id`` (balances as cached), or None."""
        with self._guard("reading the member cache"):
            row = self.db.execute_sql("SELECT record FROM members WHERE member_id = ?",
                                      (member_id,)).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def member_count(self) -> int:
        """How many members the cache holds."""
        with self._guard("reading the member cache"):
            return int(self.db.execute_sql("SELECT count(*) FROM members").fetchone()[0])

    def find_members(self, name_part: str, limit: int) -> list[dict[str, Any]]:
        """At most ``limit`` cached records whose name holds ``name_part`` (any case),
        by name (a till's member search; phone and card go through :meth:`lookup`)."""
        pattern = "%" + name_part.replace("\\", "\\\\").replace("%", "\\%") \
            .replace("_", "\\_") + "%"
        with self._guard("reading the member cache"):
            rows = self.db.execute_sql(
                "SELECT record FROM members WHERE json_extract(record, '$.name') LIKE ? "
                "ESCAPE '\\' ORDER BY json_extract(record, '$.name') LIMIT ?",
                (pattern, int(limit))).fetchall()
        return [dict(json.loads(row[0])) for row in rows]

    def _projection(self, member_id: str) -> tuple[dict[str, Any] | None, dict[str, int]]:
        """The cached record and the sum of own deltas with seq > applied[T], per kind
        (balance kinds and the ``stats.`` pseudo-kinds): total minus the running
        sum at applied[T], two index probes per kind."""
        with self._guard("reading balances"):
            row = self.db.execute_sql(
                "SELECT record, applied_here FROM members WHERE member_id = ?",
                (member_id,)).fetchone()
            applied = int(row[1]) if row else 0
            deltas = self.db.execute_sql(
                "SELECT t.kind, t.total - coalesce((SELECT d.running FROM event_deltas d "
                "WHERE d.member_id = t.member_id AND d.kind = t.kind AND d.seq <= ? "
                "ORDER BY d.seq DESC LIMIT 1), 0) FROM delta_totals t WHERE t.member_id = ?",
                (applied, member_id)).fetchall()
        record = json.loads(row[0]) if row else None
        return record, {str(k): int(v) for k, v in deltas}

    def usable_balances(self, member_id: str) -> dict[str, int]:
        """Cached balances plus this terminal's own events not yet reflected
        (``seq > applied[this terminal]``), per protocol.md."""
        record, deltas = self._projection(member_id)
        cached = (record or {}).get("balances") or {}
        return ev.sum_balances(cached, ((k, v) for k, v in deltas.items()
                                        if not k.startswith(STATS_PREFIX)))

    def member_view(self, member_id: str) -> dict[str, Any] | None:
        """The record with usable balances and stats projected over own unreflected
        sales (``purchase_count`` +sales, ``spend_30d`` +payable, ``last_purchase``)."""
        record, deltas = self._projection(member_id)
        if record is None:
            return None
        cached = record.get("balances") or {}
        record["balances"] = ev.sum_balances(cached, ((k, v) for k, v in deltas.items()
                                                      if not k.startswith(STATS_PREFIX)))
        applied = int((record.get("applied") or {}).get(self.terminal_id, 0))
        with self._guard("reading balances"):
            last = self.db.execute_sql(
                "SELECT at FROM events WHERE member_id = ? AND seq > ? AND type = 'sale' "
                "AND state != 'rejected' ORDER BY seq DESC LIMIT 1",
                (member_id, applied)).fetchone()
        stats = dict(record.get("stats") or {})
        stats["purchase_count"] = (int(stats.get("purchase_count") or 0)
                                   + deltas.get(STATS_PREFIX + "purchases", 0))
        stats["spend_30d"] = (int(stats.get("spend_30d") or 0)
                              + deltas.get(STATS_PREFIX + "spend", 0))
        day = str(last[0])[:10] if last else None
        if day and (not stats.get("last_purchase") or day > str(stats["last_purchase"])):
            stats["last_purchase"] = day
        record["stats"] = stats
        return dict(record)

    def offline_counters(self, member_id: str, local_day_start: datetime,
                         local_day_end: datetime) -> tuple[int, int]:
        """(redeemed value, credits used) by ``member_id`` at this terminal in
        [start, end), refunds netted, rejected sales left out; never negative."""
        with self._guard("reading the day counters"):
            redeemed, used = self.db.execute_sql(
                "SELECT coalesce(sum(redeemed_value), 0), coalesce(sum(credit_used), 0) "
                "FROM events WHERE member_id = ? AND at_us >= ? AND at_us < ? "
                "AND state != 'rejected'",
                (member_id, ev.epoch_us(local_day_start), ev.epoch_us(local_day_end))
            ).fetchone()
        return max(0, int(redeemed)), max(0, int(used))

    def promotion_counts(self, member_id: str | None, tz: Any) -> dict[str, Any]:
        """What the rules engine needs for limits, budgets and codes (docs/rules.md,
        "What the store passes"), from this terminal's sales that are not rejected
        nor refunded: ``pending_purchases``, ``member_uses`` (this member's uses the
        record does not hold yet), ``store_uses``, ``budget_used``, ``used_codes``
        and ``coupons`` (issued here). Dates are local dates in ``tz``. Only the
        events the outbox still holds count (accepted ones are pruned after a while).
        """
        with self._guard("reading the promotion counters"):
            applied = 0
            if member_id is not None:
                row = self.db.execute_sql("SELECT applied_here FROM members "
                                          "WHERE member_id = ?", (member_id,)).fetchone()
                applied = int(row[0]) if row else 0
            rows = self.db.execute_sql(
                "SELECT seq, type, at, member_id, body FROM events WHERE state != 'rejected' "
                "AND (type = 'refund' OR (type = 'sale' AND (member_id = ? OR "
                "body LIKE '%\"uses\"%' OR body LIKE '%\"codes_used\"%' OR "
                "body LIKE '%\"coupons_issued\"%'))) ORDER BY seq",
                (member_id,)).fetchall()
        sales: list[tuple[int, str, str | None, dict[str, Any]]] = []
        refunded: set[str] = set()
        for seq, type_, at, mid, body in rows:
            data = json.loads(body)
            if type_ == "refund":
                refunded.add(str(data.get("sale_id")))
            else:
                sales.append((int(seq), str(at), mid, data))
        out: dict[str, Any] = {"pending_purchases": 0, "member_uses": {}, "store_uses": {},
                               "budget_used": {}, "used_codes": set(), "coupons": []}
        for seq, at, mid, data in sales:
            if data.get("id") in refunded:
                continue
            day = datetime.fromisoformat(at.replace("Z", "+00:00")).astimezone(tz)
            local = day.date().isoformat()
            mine = member_id is not None and mid == member_id
            if mine and seq > applied:
                out["pending_purchases"] += 1
            for use in data.get("uses") or []:
                rule, amount = str(use.get("rule")), int(use.get("amount") or 0)
                out["store_uses"].setdefault(rule, []).append(local)
                out["budget_used"][rule] = out["budget_used"].get(rule, 0) + amount
                if mine and seq > applied:
                    out["member_uses"].setdefault(rule, []).append(local)
            for used in data.get("codes_used") or []:
                if used.get("single_use") and isinstance(used.get("code"), str):
                    out["used_codes"].add(used["code"])
            for coupon in data.get("coupons_issued") or []:
                out["coupons"].append({"code": coupon.get("code"),
                                       "rule": coupon.get("for_rule"),
                                       "expires": coupon.get("expires"), "member_id": mid})
        out["used_codes"] = frozenset(out["used_codes"])
        return out

    @staticmethod
    def _parse_record(record: Any, where: str) -> dict[str, Any]:
        if not isinstance(record, dict):
            raise InvalidRecord(f"{where}: a member record must be a JSON object")
        if not isinstance(record.get("member_id"), str) or not record["member_id"]:
            raise InvalidRecord(f"{where}: member_id is missing")
        version = record.get("version")
        if not isinstance(version, int) or isinstance(version, bool):
            raise InvalidRecord(f"{where}: version of {record['member_id']} is not an integer")
        for key, kind in (("identifiers", list), ("balances", dict), ("applied", dict)):
            if record.get(key) is not None and not isinstance(record[key], kind):
                raise InvalidRecord(f"{where}: {key} of {record['member_id']} is malformed")
        return record

    def _upsert_in_tx(self, rows: list[tuple[dict[str, Any], str]], gen: int) -> None:
        """Replace whole records (and their tokens); the caller holds the transaction.

        A record older than the cached one (lower ``version``: a snapshot fetched
        before a change that was applied meanwhile) is skipped.
        """
        conn = self.db.connection()
        cached: dict[str, int] = {}
        ids = [r["member_id"] for r, _ in rows]
        for start in range(0, len(ids), 900):
            part = ids[start:start + 900]
            cached.update(conn.execute(
                "SELECT member_id, version FROM members WHERE member_id IN "  # noqa: S608 (placeholders only)
                f"({', '.join('?' for _ in part)})", part).fetchall())
        newer = [r["member_id"] for r, _ in rows if cached.get(r["member_id"], -1) > r["version"]]
        if newer:
            # Still named by the snapshot: not to be swept as gone.
            conn.executemany("UPDATE members SET gen = ? WHERE member_id = ?",
                             [(gen, m) for m in newer])
            rows = [(r, t) for r, t in rows if cached.get(r["member_id"], -1) <= r["version"]]
        conn.executemany(
            "INSERT INTO members (member_id, version, applied_here, gen, provisional, record) "
            "VALUES (?, ?, ?, ?, 0, ?) ON CONFLICT (member_id) DO UPDATE SET "
            "version = excluded.version, applied_here = excluded.applied_here, "
            "gen = excluded.gen, provisional = 0, record = excluded.record",
            [(r["member_id"], r["version"],
              int((r.get("applied") or {}).get(self.terminal_id, 0)), gen, text)
             for r, text in rows])
        conn.executemany("DELETE FROM member_tokens WHERE member_id = ?",
                         [(r["member_id"],) for r, _ in rows])
        conn.executemany(
            "INSERT OR REPLACE INTO member_tokens (token, member_id) VALUES (?, ?)",
            [(token, r["member_id"]) for r, _ in rows for token in (r.get("identifiers") or [])
             if isinstance(token, str)])

    def _remove_in_tx(self, member_ids: Sequence[str]) -> None:
        conn = self.db.connection()
        conn.executemany("DELETE FROM member_tokens WHERE member_id = ?",
                         [(m,) for m in member_ids])
        conn.executemany("DELETE FROM members WHERE member_id = ?", [(m,) for m in member_ids])

    def apply_changes(self, change: dict[str, Any]) -> bool:
        """Apply a ``/members/changes`` message atomically.

        Returns False (and changes nothing) on a version gap: the caller then
        fetches a snapshot. A change the cache already has (``to_version`` ≤ the
        cache's version) is ignored and returns True.
        """
        try:
            from_v, to_v = int(change["from_version"]), int(change["to_version"])
            records = [self._parse_record(r, "member change")
                       for r in change.get("members") or []]
            removed = [str(m) for m in change.get("removed") or []]
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, InvalidRecord):
                raise
            raise InvalidRecord(f"malformed member change: {exc}") from None
        self._writable("applying member changes")
        with self._guard("applying member changes"), self.db.atomic():
            current = self._meta_int("members_version")
            if to_v <= current:
                return True
            if from_v != current:
                return False
            gen = self._meta_int("import_gen")
            self._upsert_in_tx([(r, json.dumps(r, separators=(",", ":"), ensure_ascii=False))
                                for r in records], gen)
            self._remove_in_tx(removed)
            self._set_meta("members_version", to_v)
        return True

    def import_snapshot(self, lines: Iterable[bytes | str], version: int, full: bool, *,
                        chunk_size: int = 5000) -> int:
        """Stream an NDJSON snapshot into the cache; returns how many records.

        Records are applied in chunks, each one transaction (sales are never kept
        waiting behind a million-row import); a record replaces the cached one
        whole. ``full`` (``since=0``) then removes the members the snapshot did not
        name (local enrolments awaiting the club stay). ``members_version`` moves
        to ``version`` only at the very end, so an interrupted import is simply
        fetched again.
        """
        self._writable("importing members")
        with self._guard("importing members"), self.db.atomic():
            gen = self._meta_int("import_gen") + 1
            self._set_meta("import_gen", gen)
        count = 0
        chunk: list[tuple[dict[str, Any], str]] = []
        for number, raw in enumerate(lines, start=1):
            text = raw.decode("utf-8") if isinstance(raw, bytes | bytearray) else raw
            text = text.strip()
            if not text:
                continue
            try:
                record = json.loads(text)
            except ValueError as exc:
                raise InvalidRecord(f"snapshot line {number} is not JSON: {exc}") from None
            chunk.append((self._parse_record(record, f"snapshot line {number}"), text))
            if len(chunk) >= chunk_size:
                self._import_chunk(chunk, gen)
                count += len(chunk)
                chunk = []
        if chunk:
            self._import_chunk(chunk, gen)
            count += len(chunk)
        if full:
            self._sweep_members(gen)
        with self._guard("importing members"), self.db.atomic():
            # Never backwards: change sets applied during the import stay counted.
            self.db.execute_sql(
                "UPDATE meta SET value = max(CAST(value AS INTEGER), ?) "
                "WHERE key = 'members_version'", (int(version),))
        return count

    def _import_chunk(self, chunk: list[tuple[dict[str, Any], str]], gen: int) -> None:
        with self._guard("importing members"), self.db.atomic():
            self._upsert_in_tx(chunk, gen)

    def _sweep_members(self, gen: int) -> None:
        last_rowid = 0
        while True:
            with self._guard("importing members"), self.db.atomic():
                rows = self.db.execute_sql(
                    "SELECT rowid, member_id FROM members WHERE rowid > ? AND gen < ? AND "
                    "provisional = 0 ORDER BY rowid LIMIT 5000", (last_rowid, gen)).fetchall()
                if not rows:
                    return
                self._remove_in_tx([r[1] for r in rows])
                last_rowid = rows[-1][0]

    def _provisional_member_in_tx(self, body: dict[str, Any]) -> None:
        """A member enrolled here offline is usable at once, until the club's record."""
        record = {
            "member_id": body["member_id"], "version": 0, "name": body.get("name"),
            "status": "active", "tier": None, "groups": [], "birthday": None, "joined": None,
            "identifiers": list(body.get("identifiers") or []), "balances": {}, "stats": {},
            "applied": {},
        }
        self.db.execute_sql(
            "INSERT OR IGNORE INTO members (member_id, version, applied_here, gen, provisional, "
            "record) VALUES (?, 0, 0, 0, 1, ?)",
            (record["member_id"], json.dumps(record, separators=(",", ":"), ensure_ascii=False)))
        for token in record["identifiers"]:
            self.db.execute_sql(
                "INSERT OR IGNORE INTO member_tokens (token, member_id) VALUES (?, ?)",
                (token, record["member_id"]))

    def _link_token_in_tx(self, member_id: str, token: str, *,
                          replaces: object = None) -> None:
        """A card linked here finds its member at once (the club confirms later).

        ``replaces`` (a lost card's token, an extra key of the card_link event) stops
        finding the member at this terminal at once.
        """
        row = self.db.execute_sql("SELECT record FROM members WHERE member_id = ?",
                                  (member_id,)).fetchone()
        if row is None:
            return
        record = json.loads(row[0])
        ids = list(record.get("identifiers") or [])
        if isinstance(replaces, str) and replaces != token:
            ids = [t for t in ids if t != replaces]
            self.db.execute_sql("DELETE FROM member_tokens WHERE token = ? AND member_id = ?",
                                (replaces, member_id))
        if token not in ids or ids != record.get("identifiers"):
            if token not in ids:
                ids.append(token)
            record["identifiers"] = ids
            self.db.execute_sql("UPDATE members SET record = ? WHERE member_id = ?",
                                (json.dumps(record, separators=(",", ":"), ensure_ascii=False),
                                 member_id))
        self.db.execute_sql("INSERT OR REPLACE INTO member_tokens (token, member_id) "
                            "VALUES (?, ?)", (token, member_id))

    # ------------------------------------------------------------------ bundles

    def save_bundle(self, envelope: dict[str, Any], version: int) -> None:
        """Keep ``envelope`` as the current (accepted) bundle."""
        self._put_bundle("current", envelope, version, None)

    def save_refused_bundle(self, envelope: dict[str, Any], reason: str) -> None:
        """Keep the last refused bundle and why, for the status and a technician."""
        self._put_bundle("refused", envelope, None, reason)

    def _put_bundle(self, slot: str, envelope: dict[str, Any], version: int | None,
                    reason: str | None) -> None:
        self._writable("saving a rule bundle")
        with self._guard("saving a rule bundle"), self.db.atomic():
            self.m.Bundle.replace(slot=slot, version=version, envelope=json.dumps(envelope),
                                  reason=reason, saved_at=self._now_text()).execute()

    def current_bundle(self) -> dict[str, Any] | None:
        """The envelope of the current bundle, or None."""
        row = self._bundle_row("current")
        return None if row is None else dict(json.loads(row.envelope))

    def current_bundle_version(self) -> int | None:
        """The version saved with the current bundle, or None."""
        row = self._bundle_row("current")
        return None if row is None else int(row.version)

    def refused_bundle(self) -> dict[str, Any] | None:
        """``{"envelope", "reason", "at"}`` of the last refused bundle, or None."""
        row = self._bundle_row("refused")
        if row is None:
            return None
        return {"envelope": json.loads(row.envelope), "reason": row.reason, "at": row.saved_at}

    def clear_refused_bundle(self) -> None:
        """Forget the refused bundle (a good one arrived after it)."""
        self._writable("clearing the refused bundle")
        with self._guard("clearing the refused bundle"), self.db.atomic():
            self.m.Bundle.delete().where(self.m.Bundle.slot == "refused").execute()

    def _bundle_row(self, slot: str) -> Any:
        with self._guard("reading the rule bundle"):
            return self.m.Bundle.get_or_none(self.m.Bundle.slot == slot)

    # ------------------------------------------------------------------ commands

    def command_result(self, command_id: str) -> dict[str, Any] | None:
        """The result already given to command ``command_id`` (``state`` ``running``
        while it runs), or None."""
        with self._guard("reading command results"):
            row = self.m.CommandResult.get_or_none(self.m.CommandResult.id == command_id)
        return None if row is None else dict(json.loads(row.result))

    def begin_command(self, command_id: str, command_type: str) -> dict[str, Any] | None:
        """Record command ``command_id`` as ``running`` before it runs (durably: the
        commit is on disk when this returns). Returns None when the caller is to run
        it; otherwise the record already there (a final result, or ``running``: it
        is running now or was when the agent stopped) and the caller must not run it.
        """
        self._writable("recording a command as running")
        running = {"id": command_id, "state": "running", "type": command_type}
        with self._guard("recording a command as running"), self.db.atomic():
            row = self.m.CommandResult.get_or_none(self.m.CommandResult.id == command_id)
            if row is not None:
                return dict(json.loads(row.result))
            self.m.CommandResult.insert(id=command_id, result=json.dumps(running),
                                        at=self._now_text()).execute()
        return None

    def save_command_result(self, command_id: str, result: dict[str, Any]) -> dict[str, Any]:
        """Record the final result of a command (replacing its ``running`` record);
        the first final result recorded wins and is returned (a command is never
        answered two ways)."""
        self._writable("saving a command result")
        with self._guard("saving a command result"), self.db.atomic():
            row = self.m.CommandResult.get_or_none(self.m.CommandResult.id == command_id)
            if row is None:
                self.m.CommandResult.insert(id=command_id, result=json.dumps(result),
                                            at=self._now_text()).execute()
                return dict(result)
            stored = dict(json.loads(row.result))
            if stored.get("state") != "running":
                return stored
            self.m.CommandResult.update(result=json.dumps(result), at=self._now_text()).where(
                self.m.CommandResult.id == command_id).execute()
        return dict(result)

    def interrupt_running_commands(self) -> list[dict[str, Any]]:
        """At start: every command still ``running`` (the agent stopped while it ran)
        gets the final result ``interrupted``, so it is never run again. Returns
        those results, to be sent to the club."""
        self._writable("closing interrupted commands")
        out: list[dict[str, Any]] = []
        with self._guard("closing interrupted commands"), self.db.atomic():
            now = self._now_text()
            for row in self.m.CommandResult.select():
                stored = json.loads(row.result)
                if not isinstance(stored, dict) or stored.get("state") != "running":
                    continue
                result = {"id": row.id, "ok": False, "state": "interrupted",
                          "detail": f"the agent stopped while the command "
                                    f"{stored.get('type', '')} was running; it is not run "
                                    f"again (send a new command id to run it)"}
                self.m.CommandResult.update(result=json.dumps(result), at=now).where(
                    self.m.CommandResult.id == row.id).execute()
                out.append(result)
        return out

    def prune_command_results(self, *, now: datetime | None = None,
                              keep: timedelta = COMMAND_RESULTS_KEEP) -> int:
        """Delete final command results recorded more than ``keep`` ago (a ``running``
        record is never pruned). Returns how many went."""
        self._writable("pruning command results")
        cutoff = _utc_text((now or self.clock()) - keep)
        with self._guard("pruning command results"), self.db.atomic():
            cur = self.db.execute_sql(
                "DELETE FROM command_results WHERE at < ? "
                "AND coalesce(json_extract(result, '$.state'), '') != 'running'", (cutoff,))
            return int(cur.rowcount)


def _delta_rows(effect: ev.Effect) -> list[tuple[str, int]]:
    """Balance kinds plus the stats pseudo-kinds of one event, zeros left out."""
    rows = list(effect.balance.items())
    rows += [(STATS_PREFIX + "purchases", effect.purchases), (STATS_PREFIX + "spend", effect.spend)]
    return [(k, v) for k, v in rows if v]


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
