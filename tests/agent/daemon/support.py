"""Run the real agent (``python -m agent run``) as a subprocess, with a notify socket."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from hw_sim.terminal import TerminalFiles, seed_store, write_config

ROOT = Path(__file__).resolve().parents[3]


class NotifyListener:
    """A datagram socket standing in for systemd's $NOTIFY_SOCKET."""

    def __init__(self, path: Path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.messages: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            self.messages.append((time.monotonic(), data.decode()))

    def fields(self) -> list[str]:
        return [f for _, m in list(self.messages) for f in m.split("\n")]

    def wait_for(self, prefix: str, timeout: float = 10.0, after: int = 0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for f in self.fields()[after:]:
                if f.startswith(prefix):
                    return f
            time.sleep(0.02)
        raise AssertionError(f"no {prefix!r} from the agent; got {self.fields()}")

    def close(self) -> None:
        self._stop.set()
        self.sock.close()
        self._thread.join(1)


class AgentProcess:
    """``python -m agent --config … run`` with its output captured to a file."""

    def __init__(self, files: TerminalFiles, notify: NotifyListener | None,
                 watchdog_usec: int | None = None, env: dict[str, str] | None = None):
        self.files = files
        self.log_path = files.root / "agent.log"
        run_env = {**os.environ, **(env or {}), "PYTHONPATH": str(ROOT)}
        run_env.pop("NOTIFY_SOCKET", None)
        if notify is not None:
            run_env["NOTIFY_SOCKET"] = str(notify.path)
        if watchdog_usec:
            run_env["WATCHDOG_USEC"] = str(watchdog_usec)
        self.started = time.monotonic()
        self.log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "agent", "--config", str(files.config), "run"],
            stdout=self.log, stderr=subprocess.STDOUT, env=run_env, cwd=ROOT)

    def wait_socket(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.files.socket.exists():
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"agent exited {self.proc.returncode}:\n{self.output()}")
            time.sleep(0.02)
        raise AssertionError(f"agent socket never appeared:\n{self.output()}")

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_records(self) -> list[dict[str, object]]:
        out = []
        for line in self.output().splitlines():
            with contextlib.suppress(ValueError):
                out.append(json.loads(line))
        return out

    def signal(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    def stop(self, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@contextlib.contextmanager
def terminal_dir(**seed: object) -> Iterator[TerminalFiles]:
    """A fresh simulated terminal in a short /tmp path (Unix socket paths are short)."""
    root = Path(tempfile.mkdtemp(prefix="ctd", dir="/tmp"))
    try:
        broker = seed.pop("broker_url", None)
        files = write_config(root, broker_url=broker)  # type: ignore[arg-type]
        seed_store(files, **seed)  # type: ignore[arg-type]
        yield files
    finally:
        shutil.rmtree(root, ignore_errors=True)
