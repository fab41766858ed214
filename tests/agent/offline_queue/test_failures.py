"""Never lose data: disk full, read-only file system, damaged file.

Each failure must raise the project's StorageError with a clear message, leave
everything recorded before untouched (no seq used, no gap), and leave the store
serving reads; once the cause is gone, recording resumes with the next seq.
Real failures where the machine allows it (a tiny tmpfs, a read-only remount,
an immutable file), SQLite's page limit otherwise.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.errors import StorageError
from agent.offline_queue import CorruptStore, Database, DiskFull, ReadOnlyStore, Store

from .helpers import AT, member_record, sale_body


def _mount(args: list[str]) -> bool:
    return subprocess.run(["mount", *args], capture_output=True).returncode == 0


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs of our own (needs root); skipped where mounting is not allowed."""
    where = tmp_path / "tmpfs"
    where.mkdir()
    if os.geteuid() != 0 or not _mount(["-t", "tmpfs", "-o", "size=1m", "tmpfs", str(where)]):
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def _fill(store: Store) -> int:
    """Append big sales until the store refuses; returns how many succeeded."""
    n = 0
    with pytest.raises(DiskFull) as info:
        for _ in range(100_000):
            store.outbox.append("sale", sale_body(note="x" * 3000), at=AT, staff_id=None,
                                offline=True)
            n += 1
    assert "the disk is full" in str(info.value) and "nothing was recorded" in str(info.value)
    return n


def _intact(store: Store, n: int) -> None:
    assert [e.seq for e in store.outbox.events()] == list(range(1, n + 1))
    assert store.outbox.last_seq() == n
    assert store.integrity_check() == ["ok"]


def _seed(store: Store) -> None:
    store.members.apply_changes({"from_version": 0, "to_version": 1, "members": [member_record()],
                         "removed": []})


def test_disk_full_on_a_real_tmpfs(tmpfs: Path) -> None:
    store = Store.open(tmpfs / "clubterm.db", "T-0001", "M-7")
    try:
        _seed(store)
        n = _fill(store)
        assert n > 0
        with pytest.raises(DiskFull, match=str(tmpfs)):
            store.outbox.append("sale", sale_body(), at=AT, staff_id=None, offline=True)
        _intact(store, n)
        assert store.members.lookup("nfc:04A1B2") is not None  # still serving
        assert store.outbox.queue_stats().pending == n
        assert _mount(["-o", "remount,size=4m", str(tmpfs)])
        assert store.outbox.append("sale", sale_body(), at=AT, staff_id=None,
                                   offline=True).seq == n + 1
    finally:
        store.close()


def test_disk_full_simulated_with_the_page_limit(store: Store) -> None:
    _seed(store)
    store.outbox.append("sale", sale_body(), at=AT, staff_id=None, offline=True)
    pages = store.db.execute_sql("PRAGMA page_count").fetchone()[0]
    store.db.execute_sql(f"PRAGMA max_page_count = {pages + 3}")
    n = 1 + _fill(store)
    _intact(store, n)
    assert store.members.usable_balances("m-1")["points"] == 1000 + 10 * n
    store.db.execute_sql("PRAGMA max_page_count = 1000000")
    assert store.outbox.append("sale", sale_body(), at=AT, staff_id=None, offline=True).seq == n + 1


def test_read_only_file_system(tmpfs: Path) -> None:
    path = tmpfs / "clubterm.db"
    store = Store.open(path, "T-0001", "M-7")
    _seed(store)
    store.outbox.append("sale", sale_body(), at=AT, staff_id=None, offline=True)
    store.close()
    assert _mount(["-o", "remount,ro", str(tmpfs)])
    try:
        with pytest.raises(ReadOnlyStore, match="read-only"):
            Store.open(path, "T-0001", "M-7")
        reader = Store.open(path, readonly=True)
        try:
            assert reader.members.lookup("nfc:04A1B2") is not None
            assert reader.outbox.queue_stats().pending == 1
            with pytest.raises(ReadOnlyStore, match="nothing was recorded"):
                reader.outbox.append("sale", sale_body(), at=AT, staff_id=None, offline=True)
        finally:
            reader.close()
    finally:
        assert _mount(["-o", "remount,rw", str(tmpfs)])
    store = Store.open(path, "T-0001", "M-7")
    try:
        assert store.outbox.append("sale", sale_body(), at=AT, staff_id=None, offline=True).seq == 2
    finally:
        store.close()


def test_file_made_unwritable_under_a_running_store(store: Store, db_path: Path) -> None:
    if os.geteuid() != 0 or shutil.which("chattr") is None:
        pytest.skip("needs root and chattr")
    _seed(store)
    store.outbox.append("sale", sale_body(), at=AT, staff_id=None, offline=True)
    files = [str(p) for p in (db_path, db_path.with_name(db_path.name + "-wal"))]
    if subprocess.run(["chattr", "+i", *files], capture_output=True).returncode != 0:
        pytest.skip("this file system has no immutable flag")
    try:
        with pytest.raises(StorageError, match=r"nothing was recorded|failed"):
            store.outbox.append("sale", sale_body(), at=AT, staff_id=None, offline=True)
        assert store.members.lookup("nfc:04A1B2") is not None
        assert store.outbox.last_seq() == 1
    finally:
        subprocess.run(["chattr", "-i", *files], check=True)
    assert store.outbox.append("sale", sale_body(), at=AT, staff_id=None, offline=True).seq == 2
    _intact(store, 2)


def test_a_garbage_file_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "clubterm.db"
    path.write_bytes(b"this is not SQLite" + os.urandom(8000))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(CorruptStore, match="damaged") as info:
        Store.open(path, "T-0001", "M-7")
    assert "keep the file" in str(info.value)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clubterm.db"]


def test_a_damaged_outbox_page_fails_appends_but_the_cache_still_serves(
        store: Store, db_path: Path) -> None:
    _seed(store)
    for _ in range(3):
        store.outbox.append("sale", sale_body(), at=AT, staff_id=None, offline=True)
    root = store.db.execute_sql(
        "SELECT rootpage FROM sqlite_master WHERE name = 'events'").fetchone()[0]
    page_size = store.db.execute_sql("PRAGMA page_size").fetchone()[0]
    store.close()  # checkpoints the WAL into the file
    with db_path.open("r+b") as fh:
        fh.seek((root - 1) * page_size)
        fh.write(b"\xff" * page_size)
    damaged = Store.open(db_path, "T-0001", "M-7")
    try:
        with pytest.raises(CorruptStore, match="damaged"):
            damaged.outbox.append("sale", sale_body(), at=AT, staff_id=None, offline=True)
        assert damaged.members.lookup("nfc:04A1B2") is not None
        assert damaged.members.member("m-1") is not None
        assert damaged.bundles.current_bundle() is None
        assert damaged.outbox.last_seq() == 3  # no seq was used by the failed append
    finally:
        damaged.close()


def test_an_upgrade_without_room_for_the_backup_changes_nothing(tmpfs: Path) -> None:
    import sqlite3

    from agent.offline_queue.schema import migrate

    path = tmpfs / "clubterm.db"
        # A rollback journal while filling: a WAL would hold a second copy of the ballast.
    db = Database(str(path), pragmas=[("journal_mode", "delete")])
    migrate(db, path, target=1)
    db.execute_sql("INSERT INTO meta (key, value) VALUES ('terminal_id', 'T-0001'), "
                   "('merchant_id', 'M-7'), ('last_seq', '0')")
    # Fill the store to well over half the file system: no room for its copy.
    db.execute_sql("CREATE TABLE ballast (b BLOB)")
    while path.stat().st_size < 550_000:
        db.execute_sql("INSERT INTO ballast VALUES (randomblob(50000))")
    rows = db.execute_sql("SELECT count(*), sum(length(b)) FROM ballast").fetchone()
    db.close()
    with pytest.raises(DiskFull):
        Store.open(path, "T-0001", "M-7")
    assert not list(tmpfs.glob("*.bak"))
    # Only the journal mode in the header changed (to WAL); schema and data did not.
    with sqlite3.connect(path) as check:
        assert check.execute("PRAGMA user_version").fetchone()[0] == 1
        assert check.execute("SELECT count(*), sum(length(b)) FROM ballast").fetchone() == rows
        assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
