"""The store file is never set up over: empty, foreign and half-made files.

What the world does to a state directory: a power loss leaves ``clubterm.db`` at
0 bytes (ext4's delayed allocation), a technician points ``state_dir`` at another
program's folder, a copy goes wrong, the agent is killed while it creates its
first store, two processes create it at once. Each file that is not a clubterm
store must be refused with a message naming it, and stay byte for byte as it was
(the folder too: no ``-wal``/``-shm`` left beside it). Only a missing file is
created, and never half.
"""

from __future__ import annotations

import hashlib
import os
import random
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from agent.errors import StorageError
from agent.offline_queue import CorruptStore, ForeignStore, Store

ROOT = Path(__file__).resolve().parents[2]


def _snapshot(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def _sqlite_file(path: Path, statements: list[str], *, wal: bool = False) -> None:
    conn = sqlite3.connect(path)
    if wal:
        conn.execute("PRAGMA journal_mode=wal")
    for sql in statements:
        conn.execute(sql)
    conn.commit()
    conn.close()


FOREIGN: dict[str, Callable[[Path], None]] = {
    "zero bytes": lambda p: p.write_bytes(b""),
    "SQLite without tables": lambda p: _sqlite_file(p, ["PRAGMA user_version = 0",
                                                        "VACUUM"]),
    "another program's database": lambda p: _sqlite_file(
        p, ["CREATE TABLE invoices (id INTEGER PRIMARY KEY, total INTEGER)",
            "INSERT INTO invoices (total) VALUES (4200)"]),
    "another program's WAL database": lambda p: _sqlite_file(
        p, ["CREATE TABLE t (x)", "INSERT INTO t VALUES (1)"], wal=True),
    "our table names but user_version 0": lambda p: _sqlite_file(
        p, ["CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
            "CREATE TABLE events (seq INTEGER PRIMARY KEY, body TEXT)"]),
    "a schema version but no meta table": lambda p: _sqlite_file(
        p, ["CREATE TABLE events (seq INTEGER PRIMARY KEY)", "PRAGMA user_version = 2"]),
    "events but no terminal": lambda p: _sqlite_file(
        p, ["CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
            "CREATE TABLE events (seq INTEGER PRIMARY KEY, body TEXT)",
            "INSERT INTO events VALUES (1, '{}')", "PRAGMA user_version = 2"]),
}


@pytest.mark.parametrize("readonly", [False, True], ids=["agent", "clubterm queue"])
@pytest.mark.parametrize("case", list(FOREIGN))
def test_an_empty_or_foreign_file_is_refused_and_left_alone(
        tmp_path: Path, case: str, readonly: bool) -> None:
    path = tmp_path / "clubterm.db"
    FOREIGN[case](path)
    before = _snapshot(tmp_path)
    with pytest.raises(ForeignStore) as info:
        Store.open(path, "T-0001", "M-7", readonly=readonly)
    message = str(info.value)
    assert str(path) in message and "left as it is" in message
    assert "backup" in message  # what to do
    if case in ("zero bytes", "SQLite without tables"):
        assert "empty" in message and "seq" in message
    else:
        assert "not a clubterm store" in message and "state_dir" in message
    assert _snapshot(tmp_path) == before
    print(f"figure: {case} ({'read-only' if readonly else 'agent'}): refused, "
          f"{len(before)} file(s) byte-identical")


def test_a_zero_byte_store_keeps_the_wal_beside_it(tmp_path: Path) -> None:
    """SQLite opening a 0-byte database deletes a -wal beside it: the check comes first."""
    path = tmp_path / "clubterm.db"
    store = Store.open(path, "T-0001", "M-7")
    store.outbox.append("expense", {"amount": 1, "category": "c", "note": ""},
                 at=store.db.clock(), staff_id=None, offline=True)
    # What a crash can leave: the events in the WAL, the main file truncated.
    wal = (tmp_path / "clubterm.db-wal").read_bytes()
    store.close()
    path.write_bytes(b"")
    (tmp_path / "clubterm.db-wal").write_bytes(wal or b"\0" * 100)
    before = _snapshot(tmp_path)
    with pytest.raises(ForeignStore, match="empty"):
        Store.open(path, "T-0001", "M-7")
    assert _snapshot(tmp_path) == before


@pytest.mark.parametrize("content", [b"\0" * 8192, b"PK\x03\x04 a zip file" + os.urandom(500)],
                         ids=["zero-filled", "not SQLite"])
def test_a_file_that_is_not_sqlite_is_refused_and_left_alone(
        tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "clubterm.db"
    path.write_bytes(content)
    with pytest.raises(CorruptStore, match="damaged or is not a clubterm store") as info:
        Store.open(path, "T-0001", "M-7")
    assert str(path) in str(info.value) and "keep the file" in str(info.value)
    assert path.read_bytes() == content
    assert [p.name for p in tmp_path.iterdir()] == ["clubterm.db"]


def test_a_missing_file_is_created_and_reopened(tmp_path: Path) -> None:
    path = tmp_path / "state" / "clubterm.db"
    store = Store.open(path, "T-0001", "M-7")
    assert store.outbox.append("expense", {"amount": 1, "category": "c", "note": ""},
                        at=store.db.clock(), staff_id=None, offline=True).seq == 1
    store.close()
    again = Store.open(path, "T-0001", "M-7")
    assert again.outbox.last_seq() == 1
    again.close()
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".new")]


def test_a_failed_creation_leaves_no_file(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from agent.offline_queue import store as store_module

    path = tmp_path / "clubterm.db"
    real = store_module.migrate

    def failing(*args: object, **kwargs: object) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(store_module, "migrate", failing)
    with pytest.raises(StorageError):
        Store.open(path, "T-0001", "M-7")
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(store_module, "migrate", real)
    Store.open(path, "T-0001", "M-7").close()


def test_a_store_is_never_created_without_its_terminal(tmp_path: Path) -> None:
    path = tmp_path / "clubterm.db"
    with pytest.raises(StorageError, match="terminal and merchant ids"):
        Store.open(path)
    assert list(tmp_path.iterdir()) == []


def test_eight_processes_creating_the_same_store_at_once(tmp_path: Path) -> None:
    """Threads stand in for processes: each has its own SQLite connection."""
    path = tmp_path / "clubterm.db"
    barrier = threading.Barrier(8)
    seqs: list[int] = []
    errors: list[BaseException] = []

    def one() -> None:
        try:
            barrier.wait(5)
            store = Store.open(path, "T-0001", "M-7")
            seqs.append(store.outbox.append("expense", {"amount": 1, "category": "c", "note": ""},
                                     at=store.db.clock(), staff_id=None, offline=True).seq)
            store.close()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    assert sorted(seqs) == list(range(1, 9))  # one store, every append in it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clubterm.db"]
    print("figure: 8 concurrent creators -> 1 store, seqs 1..8")


def test_killed_while_creating_its_first_store(tmp_path: Path) -> None:
    """kill -9 at random moments of the first start: the file is absent or a whole store."""
    rng = random.Random(13)
    path = tmp_path / "clubterm.db"
    code = ("import sys; from agent.offline_queue import Store; "
            "Store.open(sys.argv[1], 'T-0001', 'M-7').close(); print('done', flush=True)")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    outcomes = {"absent": 0, "whole": 0}
    deadline = time.monotonic() + 60
    for _ in range(12):
        if time.monotonic() > deadline:
            break
        proc = subprocess.Popen([sys.executable, "-c", code, str(path)], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        # Python starts in ~0.2-0.5 s on this box; the store is made right after.
        time.sleep(rng.uniform(0.15, 0.9))
        proc.kill()
        proc.wait()
        if path.exists():
            store = Store.open(path, "T-0001", "M-7")  # never ForeignStore
            assert store.outbox.last_seq() == 0 and store.integrity_check() == ["ok"]
            store.close()
            outcomes["whole"] += 1
            for p in tmp_path.iterdir():
                p.unlink()
        else:
            outcomes["absent"] += 1
            for p in tmp_path.glob(".clubterm.db.*.new*"):
                p.unlink()  # the leftover of a killed creation, documented
    print(f"figure: kill -9 during first start: {outcomes}")
    assert sum(outcomes.values()) >= 5
