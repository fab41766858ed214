"""The one database object every part of the store works through.

:class:`Database` owns the SQLite connections (one per thread), the write
transaction (``BEGIN IMMEDIATE``, so a counter read and written inside it is
under one lock across threads and processes), the guard that turns every
SQLite/OS error into a :class:`agent.errors.StorageError` a technician can act
on, the clock, and the fault hook tests use to make writes fail.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent.errors import StorageError


class DiskFull(StorageError):
    """The file system of the store has no space left."""


class ReadOnlyStore(StorageError):
    """The store cannot be written (read-only mount, permissions, opened read-only)."""


class CorruptStore(StorageError):
    """The store file is damaged or is not a clubterm database."""


class ForeignStore(StorageError):
    """The store file is empty or is not a clubterm store; it was left as it is."""


#: What a writing connection sets. WAL + FULL: a commit is on disk (fsync of the
#: WAL) before it returns. A WAL that grew (a reader held a checkpoint back, a
#: big import) is cut back to 32 MiB when it is reset, not kept at its peak.
WRITE_PRAGMAS: tuple[tuple[str, Any], ...] = (
    ("journal_mode", "wal"), ("synchronous", "full"), ("foreign_keys", 0),
    ("temp_store", "memory"), ("journal_size_limit", 32 * 2**20))

#: Called with the action before every write (see :attr:`Database.before_write`).
WriteHook = Callable[[str], None]


def utc_text(at: datetime) -> str:
    """``at`` as stored in the audit columns (UTC, milliseconds)."""
    return at.astimezone(UTC).isoformat(timespec="milliseconds")


def _sqlite_cause(exc: BaseException) -> BaseException:
    """The sqlite3 (or OS) error behind ``exc``, skipping a follow-up
    "no transaction is active" (SQLite rolled back by itself: disk full, I/O)."""
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


class _PerThread(threading.local):
    conn: sqlite3.Connection | None = None
    depth: int = 0


class Database:
    """One SQLite file: a connection per thread, transactions, guard, clock, fault hook.

    ``target`` is what :func:`sqlite3.connect` opens (a path, or a ``file:`` URI
    with ``uri``); ``path`` names the file in error messages. ``pragmas`` are set
    on each new connection. Connections are in autocommit mode: every write goes
    through :meth:`atomic`.
    """

    def __init__(self, target: str | os.PathLike[str], *, path: Path | None = None,
                 pragmas: Sequence[tuple[str, Any]] = (), timeout: float = 10.0,
                 uri: bool = False, readonly: bool = False,
                 clock: Callable[[], datetime] | None = None):
        self.target = str(target)
        self.path = path if path is not None else Path(self.target)
        self.pragmas = tuple(pragmas)
        self.timeout = timeout
        self.uri = uri
        self.readonly = readonly
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        #: The fault hook: called with the action before every write (after the
        #: read-only check); whatever it raises is what the write raises, with
        #: nothing recorded. Tests simulate a full disk with it; None in service.
        self.before_write: WriteHook | None = None
        self._local = _PerThread()

    # ------------------------------------------------------------------ connections

    def connection(self) -> sqlite3.Connection:
        """This thread's connection (opened on first use)."""
        conn = self._local.conn
        if conn is None:
            conn = sqlite3.connect(self.target, timeout=self.timeout, uri=self.uri,
                                   isolation_level=None, check_same_thread=False)
            try:
                for name, value in self.pragmas:
                    conn.execute(f"PRAGMA {name} = {value}")
            except BaseException:
                conn.close()
                raise
            self._local.conn = conn
            self._local.depth = 0
        return conn

    connect = connection

    def close(self) -> None:
        """Close this thread's connection (others close when their thread ends)."""
        conn, self._local.conn = self._local.conn, None
        self._local.depth = 0
        if conn is not None:
            conn.close()

    def execute_sql(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()
                    ) -> sqlite3.Cursor:
        """Run one statement on this thread's connection."""
        return self.connection().execute(sql, params)

    @contextmanager
    def atomic(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE``); nested, a savepoint.

        Everything done inside commits together or not at all; the commit is on
        disk (WAL, ``synchronous=FULL``) when the block ends.
        """
        conn = self.connection()
        local = self._local
        if local.depth:
            name = f"sp{local.depth}"
            conn.execute(f"SAVEPOINT {name}")
            local.depth += 1
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute(f"ROLLBACK TO {name}")
                    conn.execute(f"RELEASE {name}")
                raise
            else:
                conn.execute(f"RELEASE {name}")
            finally:
                local.depth -= 1
            return
        conn.execute("BEGIN IMMEDIATE")
        local.depth = 1
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            # SQLite may have rolled back by itself (disk full, I/O error).
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        finally:
            local.depth = 0

    # ------------------------------------------------------------------ guard, clock

    @contextmanager
    def guard(self, action: str) -> Iterator[None]:
        """Turn SQLite and OS errors inside the block into StorageError (cause kept)."""
        try:
            yield
        except (sqlite3.Error, OSError) as exc:
            raise storage_error(exc, self.path, action) from exc

    @contextmanager
    def write(self, action: str) -> Iterator[sqlite3.Connection]:
        """:meth:`writable`, then a guarded :meth:`atomic` transaction."""
        self.writable(action)
        with self.guard(action), self.atomic() as conn:
            yield conn

    def writable(self, action: str) -> None:
        """Refuse a write on a store opened read-only; then run the fault hook."""
        if self.readonly:
            raise ReadOnlyStore(f"the store {self.path} was opened read-only; {action} failed "
                                f"and nothing was recorded")
        if self.before_write is not None:
            self.before_write(action)

    def now_text(self) -> str:
        """The clock's time as the audit columns store it."""
        return utc_text(self.clock())

    # ------------------------------------------------------------------ meta

    def meta_int(self, key: str) -> int:
        """An integer of the ``meta`` table (0 when absent)."""
        row = self.execute_sql("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return int(row[0]) if row else 0

    def set_meta(self, key: str, value: object) -> None:
        """Set a ``meta`` value (inside the caller's transaction)."""
        self.execute_sql("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) "
                         "DO UPDATE SET value = excluded.value", (key, str(value)))
