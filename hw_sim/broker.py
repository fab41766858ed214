"""Run a private ``mosquitto`` for tests, benchmarks and the demo.

Each broker has its own temporary directory and free ports, a plain listener and
(optionally) a TLS listener for one club that requires a client certificate, takes
the certificate's CN as the user name *and* as the client id (whatever id the
client asks for), and applies an ACL that lets a terminal use only its own topics
of its own club. The broker can be stopped and started again on the same ports with
its persistent state (sessions, queued messages), for fault tests.

The TLS listener's settings are the configuration ``docs/sync.md`` ships for a club
("Broker identity"); the plain listener is for tests, benchmarks and the demo only.
"""

from __future__ import annotations

import getpass
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from agent.config import TERMINAL_ID


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# A terminal id (= its certificate's CN = its MQTT user name and client id). It
# has no ':', so no terminal id can ever be a club account (club_account below),
# and no '/', '+' or '#', so '%u' in an ACL pattern stays one topic level.
# TERMINAL_ID (the pattern) is the agent configuration's own definition.
CLUB_ID = re.compile(r"[a-z0-9-]{1,64}")


def is_terminal_id(text: str) -> bool:
    """Whether ``text`` may be a terminal id (and so a terminal certificate's CN)."""
    return TERMINAL_ID.fullmatch(text) is not None


def club_account(club_id: str) -> str:
    """The CN (user name, client id) of the club back end's own broker account:
    ``club:{club_id}``, which no terminal id can match (terminal ids have no ':')."""
    return f"club:{club_id}"


def acl_text(club_id: str, club_user: str | None = None) -> str:
    """The ACL of one club: a terminal (user = certificate CN) may use only its own
    topics, and only under ``clubterm/v1/{club_id}``.

    Rule bundles of every merchant of the club are readable by every terminal of
    the club: they are signed and not secret, and the broker cannot know a
    terminal's merchant. ``club_user`` (default :func:`club_account`) may use every
    topic of the club, no other club's.
    """
    if CLUB_ID.fullmatch(club_id) is None:
        raise ValueError(f"club id {club_id!r} is not a slug [a-z0-9-]{{1,64}}")
    user = club_user or club_account(club_id)
    if is_terminal_id(user):
        raise ValueError(f"club account {user!r} could be a terminal id; use club_account()")
    p = f"clubterm/v1/{club_id}"
    return "\n".join([
        f"user {user}",
        f"topic readwrite {p}/#",
        "",
        f"pattern write {p}/terminals/%u/events",
        f"pattern readwrite {p}/terminals/%u/status",
        f"pattern write {p}/terminals/%u/command-results",
        f"pattern read {p}/terminals/%u/acks",
        f"pattern read {p}/terminals/%u/commands",
        f"pattern read {p}/members/changes",
        # Scoped member changes (docs/protocol/club.md, "Member scopes"): a broker that
        # knows each terminal's merchant should narrow these to its own scope.
        f"pattern read {p}/members/merchants/+/changes",
        f"pattern read {p}/members/groups/+/changes",
        f"pattern read {p}/merchants/+/rules",
        # Staff lists (docs/protocol/staff.md): signed like rule bundles; they hold PIN
        # hashes, so a broker that knows each terminal's merchant should narrow this.
        f"pattern read {p}/merchants/+/staff",
        # The product catalogue, whole and change sets (docs/protocol/catalogue.md).
        f"pattern read {p}/merchants/+/catalogue",
        f"pattern read {p}/merchants/+/catalogue/changes",
        "",
    ])


def tls_listener_text(port: int, tls: TlsFiles, acl_file: Path) -> str:
    """The club's TLS listener: certificate required, CN = user name = client id."""
    return "\n".join([
        f"listener {port} 127.0.0.1",
        f"cafile {tls.ca}",
        f"certfile {tls.cert}",
        f"keyfile {tls.key}",
        "tls_version tlsv1.2",
        "require_certificate true",
        "use_identity_as_username true",
        # The client id the client asks for is ignored: a certificate can only ever
        # hold the session of its own CN, never take over another terminal's.
        "use_username_as_clientid true",
        "allow_anonymous false",
        f"acl_file {acl_file}",
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
                 club_id: str | None = None, club_user: str | None = None,
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
        tls_text = ""
        if tls is not None:
            if club_id is None:
                raise ValueError("a TLS broker serves one club: give club_id")
            acl = self.directory / "acl"
            acl.write_text(acl_text(club_id, club_user))
            tls_text = tls_listener_text(self.tls_port or 0, tls, acl)
        self.conf_file.write_text("\n".join(lines) + "\n" + tls_text + extra_conf)

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
