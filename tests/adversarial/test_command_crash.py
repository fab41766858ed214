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
