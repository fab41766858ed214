"""A command running when the agent is killed is answered "interrupted" after the
restart and never run again, even when the club sends the same id again (#17).

The terminal's real ClubLink runs in its own process (tests/agent/sync/link_process)
against the real mosquitto and the simulated club; a test-injected slow ``ping``
writes its id to a file before blocking, so the file counts real runs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.agent.sync.conftest import Terminal, make_terminal  # noqa: F401  (fixture)

pytestmark = pytest.mark.needs_mosquitto


def spawn(term: Terminal, slow_log: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-m", "tests.agent.sync.link_process",
                             str(term.config.path), str(slow_log)],
                            stdout=subprocess.PIPE, text=True, cwd=os.getcwd())
    assert proc.stdout is not None and proc.stdout.readline().strip() == "started"
    return proc


def test_killed_mid_command_then_interrupted_never_run_twice(
        make_club, mosquitto_factory, tmp_path: Path,
        make_terminal: Callable[..., Terminal]) -> None:  # noqa: F811
    broker = mosquitto_factory()
    club = make_club(broker)
    term = make_terminal(club, broker.tls_url, start=False)
    term.store.close()
    slow_log = tmp_path / "runs.log"
    proc = spawn(term, slow_log)
    try:
        club.wait_status(term.id, lambda st: st.get("state") == "online")
        cmd = club.send_command(term.id, "ping")
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == f"running {cmd}"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert club.command_results.get(cmd) is None  # it never finished
        # The broker may redeliver the command (unacked QoS 1) and the club resends it.
        proc = spawn(term, slow_log)
        first = club.wait_command_result(cmd)[0]
        assert first["state"] == "interrupted" and first["ok"] is False, first
        club.send_command(term.id, "ping", command_id=cmd)
        club.wait_for(lambda: len(club.command_results.get(cmd, [])) >= 2, 15, "resend answer")
        # Other commands still run (a second ping would block: use send_status).
        later = club.send_command(term.id, "send_status")
        assert club.wait_command_result(later)[0]["state"] == "done"
        time.sleep(0.5)  # any late duplicate run/answer would show by now
        answers = club.command_results[cmd]
        assert all(a == first for a in answers), answers
        assert slow_log.read_text().split() == [cmd]  # ran exactly once, before the kill
    finally:
        proc.terminate()
        proc.wait(10)
    print(f"figure: killed mid-command, {len(answers)} answers after restart, all "
          f"'interrupted'; runs of the command: 1")


def test_the_daemon_prunes_command_results_older_than_seven_days() -> None:
    import asyncio
    from datetime import UTC, datetime, timedelta

    from agent.config import load_config
    from agent.daemon import Agent
    from agent.offline_queue import Store
    from agent.sdnotify import Notifier
    from tests.agent.daemon.support import terminal_dir

    n_old = 300
    with terminal_dir() as files:
        now = datetime.now(UTC)
        old = Store.open(files.db, "T-0001", "M-7", clock=lambda: now - timedelta(days=7, hours=1))
        for i in range(n_old):
            old.commands.save_command_result(f"old-{i}", {"id": f"old-{i}", "state": "done",
                                                          "ok": True,
                                                 "detail": "pong"})
        old.close()
        recent = Store.open(files.db, "T-0001", "M-7",
                            clock=lambda: now - timedelta(days=6, hours=23))
        recent.commands.save_command_result("recent", {"id": "recent", "state": "done", "ok": True,
                                              "detail": "pong"})
        recent.close()

        async def scenario() -> tuple[Any, Any]:
            agent = Agent(load_config(files.config), notifier=Notifier({}))
            run = asyncio.create_task(agent.run())
            try:
                for _ in range(500):  # at most 5 s
                    if agent.store is not None and agent.db is not None and \
                            await agent.db.read(agent.store.commands.command_result,
                                                "old-0") is None:
                        break
                    await asyncio.sleep(0.01)
                assert agent.db is not None and agent.store is not None
                return (await agent.db.read(agent.store.commands.command_result,
                                            f"old-{n_old - 1}"),
                        await agent.db.read(agent.store.commands.command_result, "recent"))
            finally:
                agent.request_stop()
                assert await asyncio.wait_for(run, 15) == 0

        gone, kept = asyncio.run(scenario())
    assert gone is None and kept is not None and kept["state"] == "done"
    print(f"figure: daemon start pruned {n_old} command results older than 7 days, "
          "kept one of 6 days 23 h")
