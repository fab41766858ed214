"""The terminal's durable store: one SQLite file, its parts composed over one database.

WAL with ``synchronous=FULL``: a method that records a fact returns only after
the fact is on disk. Every SQLite/OS error is turned into a
:class:`agent.errors.StorageError` (or a subclass) with a message a technician
can act on. The parts, each a small class over the same :class:`Database`:

- ``store.outbox`` (:class:`Outbox`): protocol events, batches, acks, pruning;
- ``store.members`` (:class:`MemberCache`): the club's member records and
  usable balances;
- ``store.records`` (:class:`LocalRecords`): staff, attendance, appointments, cash;
- ``store.bundles`` (:class:`Bundles`): the rule bundle in force and the refused one;
- ``store.commands`` (:class:`CommandResults`): the club's commands, answered once;
- ``store.catalogue`` (:class:`CatalogueStore`): the club's product catalogue in use.

Thread use: each thread gets its own SQLite connection; writes take the write
lock at ``BEGIN IMMEDIATE`` so the ``seq`` counter is read and written under one
lock, across threads and processes. See docs/store.md.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import tempfile
from collections.abc import Callable
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent.errors import StorageError
from agent.offline_queue.bundles import Bundles
from agent.offline_queue.catalogue import CatalogueStore
from agent.offline_queue.commands import COMMAND_RESULTS_KEEP, CommandResults
from agent.offline_queue.database import (
    WRITE_PRAGMAS,
    CorruptStore,
    Database,
    DiskFull,
    ForeignStore,
    ReadOnlyStore,
    storage_error,
)
from agent.offline_queue.entries import EncodedBatch, OutboxEntry, QueueStats, StoredEvent
from agent.offline_queue.local_data import LocalRecords
from agent.offline_queue.members import InvalidRecord, MemberCache
from agent.offline_queue.outbox import DEFAULT_KEEP, MIN_KEEP, PRUNE_BATCH, STATES, Outbox
from agent.offline_queue.schema import SCHEMA_VERSION, migrate, schema_version
from agent.offline_queue.store_file import (
    check_file_head,
    check_ours,
    foreign_reason,
    fs_readonly,
    fsync_dir,
    refuse_foreign,
    uri_path,
)

__all__ = [
    "COMMAND_RESULTS_KEEP", "DEFAULT_KEEP", "MIN_KEEP", "PRUNE_BATCH", "STATES", "Bundles",
    "CatalogueStore", "CommandResults", "CorruptStore", "Database", "DiskFull", "EncodedBatch",
    "ForeignStore", "InvalidRecord", "LocalRecords", "MemberCache", "Outbox", "OutboxEntry",
    "QueueStats", "ReadOnlyStore", "Store", "StoredEvent", "storage_error",
]


class Store:
    """The durable store of one terminal. Open it with :meth:`Store.open`."""

    def __init__(self, db: Database, terminal_id: str, merchant_id: str):
        self.db = db
        self.path = db.path
        self.terminal_id = terminal_id
        self.merchant_id = merchant_id
        self.readonly = db.readonly
        self.members = MemberCache(db, terminal_id)
        self.outbox = Outbox(db, self.members, terminal_id, merchant_id)
        self.bundles = Bundles(db)
        self.records = LocalRecords(db, self.outbox)
        self.commands = CommandResults(db)
        self.catalogue = CatalogueStore(db)

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
            check_file_head(path)
            database = f"file:{uri_path(path)}?mode=ro"
            if not fs_readonly(path.parent):
                check_ours(path, timeout)
            else:
                # No -shm can be made on a read-only file system; nobody can write
                # the file either, so SQLite may treat it as immutable. (A WAL left
                # by a crash is then not read: see docs/store.md.)
                database += "&immutable=1"
            pragmas: list[tuple[str, Any]] = [("query_only", 1)]
            uri = True
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
            check_file_head(path)
            check_ours(path, timeout)
            database = str(path)
            pragmas = list(WRITE_PRAGMAS)
            uri = False
        db = Database(database, path=path, pragmas=pragmas, timeout=timeout, uri=uri,
                      readonly=readonly, clock=clock)
        try:
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
                refuse_foreign(path, foreign_reason(db.connection()))
                if schema_version(db) != SCHEMA_VERSION:
                    raise StorageError(
                        f"the store {path} has schema version {schema_version(db)}, this "
                        f"agent reads {SCHEMA_VERSION}; start the agent once to upgrade it"
                    )
            tid, mid = cls._claim(db, terminal_id, merchant_id, readonly, path)
        except StorageError:
            db.close()
            raise
        except (sqlite3.Error, OSError) as exc:
            db.close()
            raise storage_error(exc, path, action) from exc
        return cls(db, tid, mid)

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
            db = Database(tmp, pragmas=WRITE_PRAGMAS, timeout=timeout)
            db.connection()
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
            fsync_dir(path.parent)
        except StorageError:
            raise
        except (sqlite3.Error, OSError) as exc:
            raise storage_error(exc, path, action) from exc
        finally:
            if tmp is not None:
                for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
                    with suppress(OSError):
                        leftover.unlink(missing_ok=True)

    @staticmethod
    def _claim(db: Database, terminal_id: str | None, merchant_id: str | None,
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
        with suppress(sqlite3.Error):
            self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def integrity_check(self) -> list[str]:
        """``PRAGMA integrity_check`` lines (``["ok"]`` when healthy)."""
        with self.db.guard("checking the store"):
            return [str(r[0]) for r in self.db.execute_sql("PRAGMA integrity_check").fetchall()]

    def schema_version(self) -> int:
        """The schema version of the file."""
        with self.db.guard("reading the schema version"):
            return schema_version(self.db)
