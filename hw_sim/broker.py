"""Run a private ``mosquitto`` for tests, benchmarks and the demo.

Each broker has its own temporary directory and free ports, a plain listener and
(optionally) a TLS listener that requires a client certificate, takes the
certificate's CN as the user name and applies an ACL that lets a terminal use only
its own topics. The broker can be stopped and started again on the same ports with
its persistent state (sessions, queued messages), for fault tests.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def acl_text(club_id: str = "+", club_user: str = "club") -> str:
    """The ACL: a terminal (user = certificate CN) may use only its own topics.

    Rule bundles of every merchant are readable by every terminal: they are signed
    and not secret, and the broker cannot know a terminal's merchant. ``club_id``
    "+" serves any club (tests give every test its own club id).
    """
    p = f"clubterm/v1/{club_id}"
    return "\n".join([
        f"user {club_user}",
        "topic readwrite clubterm/v1/#",
        "",
        f"pattern write {p}/terminals/%u/events",
        f"pattern readwrite {p}/terminals/%u/status",
        f"pattern write {p}/terminals/%u/command-results",
        f"pattern read {p}/terminals/%u/acks",
        f"pattern read {p}/terminals/%u/commands",
        f"pattern read {p}/members/changes",
        f"pattern read {p}/merchants/+/rules",
        "",
    ])


@dataclass
class TlsFiles:
    """CA, server certificate and key the TLS listener uses."""

    ca: Path
    cert: Path
    key: Path


class MosquittoBroker:
    """One mosquitto process in its own directory; ``start``/``stop``/``restart``."""

    def __init__(self, directory: Path, *, tls: TlsFiles | None = None,
                 club_id: str = "+", club_user: str = "club",
                 executable: str | None = None, extra_conf: str = ""):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.tls = tls
        self.club_id = club_id
        self.port = free_port()
        self.tls_port = free_port() if tls else None
        self.executable = executable or shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.proc: subprocess.Popen[bytes] | None = None
        self.conf_file = self.directory / "mosquitto.conf"
        self.log_file = self.directory / "mosquitto.log"
        lines = [
            # Run as whoever started us (mosquitto started as root would switch to
            # the 'mosquitto' user, which cannot read our temporary directory).
            f"user {getpass.getuser()}",
            "per_listener_settings true",
            "persistence true",
            f"persistence_location {self.directory}/",
            "autosave_interval 5",
            f"log_dest file {self.log_file}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "max_queued_messages 200000",
            "max_inflight_messages 200",
            "set_tcp_nodelay true",
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
        ]
        if tls is not None:
            acl = self.directory / "acl"
            acl.write_text(acl_text(club_id, club_user))
            lines += [
                f"listener {self.tls_port} 127.0.0.1",
                f"cafile {tls.ca}",
                f"certfile {tls.cert}",
                f"keyfile {tls.key}",
                "tls_version tlsv1.2",
                "require_certificate true",
                "use_identity_as_username true",
                "allow_anonymous false",
                f"acl_file {acl}",
            ]
        self.conf_file.write_text("\n".join(lines) + "\n" + extra_conf)

    @property
    def url(self) -> str:
        """The plain listener, ``mqtt://127.0.0.1:PORT``."""
        return f"mqtt://127.0.0.1:{self.port}"

    @property
    def tls_url(self) -> str:
        """The TLS listener, ``mqtts://localhost:PORT`` (the name is in the certificate)."""
        if self.tls_port is None:
            raise RuntimeError("this broker has no TLS listener")
        return f"mqtts://localhost:{self.tls_port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 10.0) -> None:
        """Start mosquitto and wait until every listener accepts connections."""
        if self.running:
            return
        out = (self.directory / "stdout.log").open("ab")
        self.proc = subprocess.Popen([self.executable, "-c", str(self.conf_file)],
                                     stdout=out, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        out.close()
        deadline = time.monotonic() + timeout
        ports = [p for p in (self.port, self.tls_port) if p is not None]
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited with {self.proc.returncode}: "
                                   f"{self._log_tail()}")
            if all(_accepts(p) for p in ports):
                return
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"mosquitto did not start: {self._log_tail()}")
            time.sleep(0.05)

    def stop(self, *, kill: bool = False, timeout: float = 10.0) -> None:
        """Stop mosquitto (SIGTERM saves its state; ``kill`` loses what is unsaved)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        """Stop and start again on the same ports, keeping persistent sessions."""
        self.stop()
        self.start()

    def _log_tail(self) -> str:
        texts = []
        for name in ("mosquitto.log", "stdout.log"):
            f = self.directory / name
            if f.exists():
                texts.append(f.read_text(errors="replace")[-2000:])
        return " | ".join(texts)

    def __enter__(self) -> MosquittoBroker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _accepts(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        try:
            s.connect(("127.0.0.1", port))
        except OSError:
            return False
        return True


def mosquitto_available() -> bool:
    """Whether a mosquitto executable can be found."""
    return bool(shutil.which("mosquitto") or os.path.exists("/usr/sbin/mosquitto"))
