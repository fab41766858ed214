"""Versioned migrations: from the first schema, with a backup, losing nothing."""

import sqlite3
from pathlib import Path

import pytest

from agent.errors import StorageError
from agent.offline_queue import Database, Store
from agent.offline_queue.schema import SCHEMA_VERSION, migrate

from .helpers import AT, sale_body


def _v1_store(path: Path) -> None:
    """A file as the first released agent left it: schema 1 with events in it."""
    db = Database(str(path), pragmas=[("journal_mode", "wal")])
    migrate(db, path, target=1)
    db.execute_sql("INSERT INTO meta (key, value) VALUES ('terminal_id', 'T-0001'), "
                   "('merchant_id', 'M-7'), ('last_seq', '3'), ('club_applied_seq', '1'), "
                   "('members_version', '7'), ('import_gen', '0')")
    for seq, state in ((1, "accepted"), (2, "sent"), (3, "pending")):
        db.execute_sql(
            "INSERT INTO events (seq, id, type, at, at_us, state, recorded_at, state_at, body) "
            "VALUES (?, ?, 'expense', '2026-11-24T10:00:00.000+00:00', 0, ?, 'x', 'x', ?)",
            (seq, f"id-{seq}", state, f'{{"id":"id-{seq}","seq":{seq},"note":"é"}}'))
    # v1 kept one delta row per (member, seq, kind); v2 adds running sums.
    db.execute_sql("INSERT INTO event_deltas (member_id, seq, kind, amount) VALUES "
                   "('m-1', 2, 'points', 30), ('m-1', 3, 'points', -100), "
                   "('m-1', 3, 'credit.club', 7), ('m-2', 3, 'points', 5)")
    db.close()


def test_migrate_from_the_first_schema(tmp_path: Path) -> None:
    path = tmp_path / "clubterm.db"
    _v1_store(path)
    store = Store.open(path, "T-0001", "M-7")
    try:
        assert store.schema_version() == SCHEMA_VERSION
        assert [(e.seq, e.state) for e in store.outbox.events()] == [
            (1, "accepted"), (2, "sent"), (3, "pending")]
        # v2's size column was back-filled in bytes (é is two).
        sizes = [r[0] for r in store.db.execute_sql("SELECT size FROM events ORDER BY seq")]
        assert sizes[0] == len('{"id":"id-1","seq":1,"note":"é"}'.encode())
        assert [e["seq"] for e in store.outbox.next_batch()] == [2, 3]
        assert store.outbox.append("expense", {"amount": 1, "category": "c", "note": ""}, at=AT,
                            staff_id=None, offline=False).seq == 4
        assert store.integrity_check() == ["ok"]
        # No cached record: applied = 0, every delta counts; the projection is the
        # same as v1's SUM.
        assert store.members.usable_balances("m-1") == {"points": -70, "credit.club": 7}
        assert store.members.usable_balances("m-2") == {"points": 5}
    finally:
        store.close()
    backups = list(tmp_path.glob("clubterm.db.v1-*.bak"))
    assert len(backups) == 1
    with sqlite3.connect(backups[0]) as old:
        assert old.execute("PRAGMA user_version").fetchone()[0] == 1
        assert old.execute("SELECT count(*) FROM events").fetchone()[0] == 3


def test_a_failing_migration_leaves_the_old_schema(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from agent.offline_queue import schema

    path = tmp_path / "clubterm.db"
    _v1_store(path)
    broken = schema.Migration(2, "broken", ("ALTER TABLE events ADD COLUMN size INTEGER",
                                            "THIS IS NOT SQL"))
    monkeypatch.setattr(schema, "MIGRATIONS", (schema.MIGRATIONS[0], broken))
    with pytest.raises(StorageError):
        Store.open(path, "T-0001", "M-7")
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 1
        cols = [r[1] for r in db.execute("PRAGMA table_info(events)")]
        assert "size" not in cols
        assert db.execute("SELECT count(*) FROM events").fetchone()[0] == 3


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "clubterm.db"
    Store.open(path, "T-0001", "M-7").close()
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StorageError, match="newer than this agent"):
        Store.open(path, "T-0001", "M-7")


def test_an_event_survives_the_whole_chain(tmp_path: Path) -> None:
    path = tmp_path / "clubterm.db"
    store = Store.open(path, "T-0001", "M-7")
    e = store.outbox.append("sale", sale_body(), at=AT, staff_id=None, offline=True)
    store.close()
    again = Store.open(path, "T-0001", "M-7")
    try:
        assert again.outbox.events()[0].event == e.body
    finally:
        again.close()


def test_v3_indexes_the_quote_of_each_sale_keeping_an_old_double(tmp_path: Path) -> None:
    """Schema 3 back-fills events.quote_id; two sales of one quote (the old commit race)
    both stay, the first keeps the key."""
    import json

    path = tmp_path / "clubterm.db"
    db = Database(str(path), pragmas=[("journal_mode", "wal")])
    migrate(db, path, target=2)
    db.execute_sql("INSERT INTO meta (key, value) VALUES ('terminal_id', 'T-0001'), "
                   "('merchant_id', 'M-7'), ('last_seq', '5'), ('club_applied_seq', '0'), "
                   "('members_version', '0'), ('import_gen', '0')")
    bodies = [(1, "sale", {"quote_id": "q-a"}), (2, "sale", {"quote_id": "q-b"}),
              (3, "sale", {"quote_id": "q-a"}), (4, "expense", {"quote_id": "q-c"}),
              (5, "sale", {"quote_id": 7})]
    for seq, type_, extra in bodies:
        body = json.dumps({"id": f"id-{seq}", "seq": seq, "type": type_, **extra})
        db.execute_sql(
            "INSERT INTO events (seq, id, type, at, at_us, state, recorded_at, state_at, body, "
            "size) VALUES (?, ?, ?, '2026-11-24T10:00:00.000+00:00', 0, 'pending', 'x', 'x', "
            "?, ?)", (seq, f"id-{seq}", type_, body, len(body)))
    db.close()
    store = Store.open(path, "T-0001", "M-7")
    try:
        assert store.schema_version() == SCHEMA_VERSION  # 3, then 4 (#21)
        keys = store.db.execute_sql("SELECT seq, quote_id FROM events ORDER BY seq").fetchall()
        assert keys == [(1, "q-a"), (2, "q-b"), (3, None), (4, None), (5, None)]
        assert len(store.outbox.events()) == 5  # nothing dropped
        found = store.outbox.sale_for_quote("q-a")
        assert found is not None and found.id == "id-1"
        assert store.outbox.sale_for_quote("q-c") is None
        plan = store.db.execute_sql(
            "EXPLAIN QUERY PLAN SELECT id FROM events WHERE quote_id = ?", ("q",)).fetchall()
        assert "events_quote" in " ".join(str(r[-1]) for r in plan)
        # A new sale of an indexed quote is refused; of a new quote, indexed.
        from agent.offline_queue import QuoteAlreadyRecorded
        with pytest.raises(QuoteAlreadyRecorded) as info:
            store.outbox.append("sale", {**sale_body(), "quote_id": "q-b"}, at=AT, staff_id=None,
                         offline=False)
        assert info.value.sale_id == "id-2" and store.outbox.last_seq() == 5
        e = store.outbox.append("sale", {**sale_body(), "quote_id": "q-new"}, at=AT, staff_id=None,
                         offline=False)
        assert store.outbox.sale_for_quote("q-new").id == e.id  # type: ignore[union-attr]
        assert store.integrity_check() == ["ok"]
    finally:
        store.close()


def test_v5_keeps_a_customer_name_column_that_is_already_there(tmp_path: Path) -> None:
    # A file whose version number was set back (a restored backup over a newer agent's
    # file, a hand edit) must still open: v5 adds the column only when it is missing.
    path = tmp_path / "clubterm.db"
    Store.open(path, "T-1", "M-1").close()
    con = sqlite3.connect(path)
    con.execute("PRAGMA user_version = 4")
    con.commit()
    con.close()
    with Store.open(path, "T-1", "M-1") as store:
        assert store.schema_version() == SCHEMA_VERSION
