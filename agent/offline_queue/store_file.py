"""Checks on the store file before SQLite writes to it.

A file that is empty, not SQLite, or not a clubterm store is refused and left
byte for byte as it was (docs/store.md, "An empty or foreign store file").
"""

from __future__ import annotations

import os
import sqlite3
import urllib.parse
from contextlib import suppress
from pathlib import Path

from agent.offline_queue.database import CorruptStore, ForeignStore, storage_error


def fs_readonly(folder: Path) -> bool:
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return False


_SQLITE_MAGIC = b"SQLite format 3\x00"
#: The tables without which a file is not a clubterm store, whatever its version.
_OWN_TABLES = ("meta", "events")


def uri_path(path: Path) -> str:
    return urllib.parse.quote(str(path))


def fsync_dir(folder: Path) -> None:
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


def check_file_head(path: Path) -> None:
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
        refuse_foreign(path, ("empty", "0 bytes"))
    if not head.startswith(_SQLITE_MAGIC):
        raise CorruptStore(
            f"the store file {path} is damaged or is not a clubterm store (it is not an "
            f"SQLite database); it was left as it is. Stop the agent, keep the file for "
            f"support (do not delete it) and restore the newest backup as described in "
            f"docs/store.md; if [paths] state_dir names the wrong folder, fix it instead."
        )


def foreign_reason(conn: sqlite3.Connection) -> tuple[str, str] | None:
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


def refuse_foreign(path: Path, reason: tuple[str, str] | None) -> None:
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


def check_ours(path: Path, timeout: float) -> None:
    """Look at an existing file read-only and refuse it unless it is a clubterm store."""
    side = [Path(f"{path}-wal"), Path(f"{path}-shm")]
    had = [p.exists() for p in side]
    try:
        conn = sqlite3.connect(f"file:{uri_path(path)}?mode=ro", uri=True, timeout=timeout)
        try:
            reason = foreign_reason(conn)
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
    refuse_foreign(path, reason)
