"""One agent per state directory.

A second ``clubterm run`` on the same configuration (a technician starting it
by hand beside the service, a unit started twice) used to replace the running
agent's socket, delete it on exit and fight over the MQTT client id. It must
stop with a clear error naming the running agent's PID, before it touches the
socket or the store; the first agent must go on answering.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from agent.errors import ClubtermError
from agent.localapi.client import SyncClient
from tests.agent.daemon.support import ROOT, AgentProcess, terminal_dir


def _status(socket: Path, agent: AgentProcess, timeout: float = 15.0) -> dict[str, object]:
    """The agent's status once its socket answers (a killed agent's stale socket file
    may be there before)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with SyncClient(socket) as client:
                return dict(client.call("agent.status"))
        except ClubtermError:
            if time.monotonic() > deadline or agent.proc.poll() is not None:
                raise AssertionError(f"the agent never answered:\n{agent.output()}") from None
            time.sleep(0.05)


def _second_run(config: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agent", "--config", config, "run"],
                          capture_output=True, text=True, cwd=ROOT, timeout=30,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_a_second_agent_on_the_same_state_dir_exits_and_leaves_the_first_alone() -> None:
    with terminal_dir() as files:
        first = AgentProcess(files, None)
        try:
            assert _status(files.socket, first)["terminal_id"] == "T-0001"
            socket_inode = files.socket.stat().st_ino
            db_before = files.db.stat().st_mtime_ns
            started = time.monotonic()
            second = _second_run(str(files.config))
            took = time.monotonic() - started
            assert second.returncode != 0
            err = second.stderr
            assert "another agent is already running" in err, err
            assert f"PID {first.proc.pid}" in err and str(files.db.parent) in err
            # The first agent's socket is the same socket, and it answers.
            assert files.socket.stat().st_ino == socket_inode
            with SyncClient(files.socket) as client:
                assert client.call("agent.status")["terminal_id"] == "T-0001"
            assert files.db.stat().st_mtime_ns == db_before
            assert first.proc.poll() is None
            print(f"figure: second agent refused in {took:.2f} s (exit {second.returncode}), "
                  f"first agent PID {first.proc.pid} still answering")
        finally:
            assert first.stop() == 0


def test_the_lock_of_a_killed_agent_does_not_block_the_next_one() -> None:
    with terminal_dir() as files:
        first = AgentProcess(files, None)
        _status(files.socket, first)
        first.proc.send_signal(signal.SIGKILL)
        first.kill()
        assert (files.db.parent / "agent.lock").exists()  # stale file, no lock
        second = AgentProcess(files, None)
        try:
            assert _status(files.socket, second)["terminal_id"] == "T-0001"
        finally:
            assert second.stop() == 0


def test_an_empty_store_stops_the_agent_before_its_socket() -> None:
    with terminal_dir() as files:
        files.db.write_bytes(b"")
        for side in ("-wal", "-shm"):
            files.db.with_name(files.db.name + side).unlink(missing_ok=True)
        run = _second_run(str(files.config))
        assert run.returncode != 0
        assert f"the store {files.db} is empty" in run.stderr, run.stderr
        assert files.db.read_bytes() == b""
        assert not files.socket.exists()
