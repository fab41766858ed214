"""Command results: running before it runs, interrupted after a crash, kept 7 days."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from agent.offline_queue import Store
from tests.agent.offline_queue.conftest import Clock


def test_a_command_is_running_before_it_runs_and_then_final(store: Store) -> None:
    assert store.commands.begin_command("c-1", "ping") is None
    assert store.commands.command_result("c-1") == {"id": "c-1", "state": "running", "type": "ping"}
    # Delivered again while it runs: the caller is told not to run it.
    assert store.commands.begin_command("c-1", "ping") == {"id": "c-1", "state": "running",
                                                  "type": "ping"}
    done = {"id": "c-1", "state": "done", "ok": True, "detail": "pong"}
    assert store.commands.save_command_result("c-1", done) == done
    # Final: a second answer never replaces it, a repeat gets it.
    assert store.commands.save_command_result("c-1", {"id": "c-1", "state": "failed", "ok": False,
                                             "detail": "x"}) == done
    assert store.commands.begin_command("c-1", "ping") == done


def test_the_running_record_is_on_disk_when_begin_returns(store: Store, db_path: Path) -> None:
    store.commands.begin_command("c-2", "set_log_level")
    # Another connection (as after a SIGKILL) sees it: committed, not in a transaction.
    with sqlite3.connect(db_path) as other:
        row = other.execute("SELECT json_extract(result, '$.state') FROM command_results "
                            "WHERE id = 'c-2'").fetchone()
    assert row == ("running",)


def test_commands_left_running_are_interrupted_once_at_start(db_path: Path,
                                                             clock: Clock) -> None:
    s = Store.open(db_path, "T-0001", "M-7", clock=clock)
    s.commands.begin_command("c-run", "resync_members")
    s.commands.begin_command("c-ok", "ping")
    s.commands.save_command_result("c-ok", {"id": "c-ok", "state": "done", "ok": True,
                                            "detail": "pong"})
    s.close()  # the agent died here
    s = Store.open(db_path, "T-0001", "M-7", clock=clock)
    try:
        out = s.commands.interrupt_running_commands()
        assert [r["id"] for r in out] == ["c-run"]
        assert out[0]["state"] == "interrupted" and out[0]["ok"] is False
        assert "not run again" in out[0]["detail"]
        # The club resends it: the stored "interrupted", never a run.
        assert s.commands.begin_command("c-run", "resync_members") == out[0]
        # A late result of the dead run cannot replace it.
        assert s.commands.save_command_result("c-run", {"id": "c-run", "state": "done", "ok": True,
                                               "detail": "x"}) == out[0]
        assert s.commands.interrupt_running_commands() == []
        assert s.commands.command_result("c-ok") == {"id": "c-ok", "state": "done", "ok": True,
                                            "detail": "pong"}
    finally:
        s.close()


def test_results_are_kept_seven_days_then_pruned(store: Store, clock: Clock) -> None:
    store.commands.begin_command("old", "ping")
    store.commands.save_command_result("old", {"id": "old", "state": "done", "ok": True,
                                               "detail": "p"})
    store.commands.begin_command("still-running", "resync_members")
    clock.advance(days=3)
    store.commands.begin_command("new", "ping")
    store.commands.save_command_result("new", {"id": "new", "state": "failed", "ok": False,
                                      "detail": "x"})
    clock.advance(days=3, hours=23)
    assert store.commands.prune_command_results() == 0  # 6 days 23 h: all kept
    clock.advance(hours=2)
    assert store.commands.prune_command_results() == 1
    assert store.commands.command_result("old") is None
    assert store.commands.command_result("new") is not None
    # A running record is never pruned, however old.
    assert store.commands.command_result("still-running") is not None
    clock.advance(days=30)
    assert store.commands.prune_command_results() == 1
    assert store.commands.command_result("still-running") is not None
    # Pruned: the id is new again (the club's resend window is 7 days).
    assert store.commands.begin_command("old", "ping") is None
    print("figure: command results kept 7 days; running records never pruned")


def test_many_results_prune_in_one_call(store: Store, clock: Clock) -> None:
    for i in range(2000):
        store.commands.save_command_result(f"c-{i}", {"id": f"c-{i}", "state": "done", "ok": True,
                                             "detail": "pong"})
    clock.advance(days=8)
    assert store.commands.prune_command_results() == 2000
    print("figure: 2000 command results pruned in one call")
