"""Fixtures for the provisioning tests: the club's real HTTPS enrolment server,
a TLS mosquitto that requires client certificates, and an empty box.

The TLS broker lives here for now because tests/fixtures/mosquitto.py belongs to
the club-link work; it should move there once that fixture can take a CA.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import socket
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from hw_sim.club.enrolment import ClubCA, EnrolmentService, HttpsServer, serve_enrolment
from tests.fixtures.services import free_port

CLUB = "demo-club"


@pytest.fixture(scope="session")
def club_ca() -> ClubCA:
    return ClubCA.create(CLUB)


@pytest.fixture(scope="session")
def rules_signing_key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


@pytest.fixture
def pan_key() -> bytes:
    return os.urandom(32)


@dataclass
class Club:
    ca: ClubCA
    service: EnrolmentService
    server: HttpsServer

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture
def club(club_ca: ClubCA, rules_signing_key: ed25519.Ed25519PrivateKey,
         pan_key: bytes) -> Iterator[Club]:
    service = EnrolmentService(club_ca, club_id=CLUB, pan_key=pan_key,
                               rules_keys={"club-2026-1": rules_signing_key.public_key()},
                               broker_url="mqtts://127.0.0.1:8883")
    server = serve_enrolment(service)
    try:
        yield Club(club_ca, service, server)
    finally:
        server.stop()


@dataclass
class Box:
    root: Path

    @property
    def state_dir(self) -> Path:
        return self.root / "var/lib/clubterm"

    @property
    def config(self) -> Path:
        return self.root / "etc/clubterm/agent.toml"

    def snapshot(self) -> dict[str, bytes]:
        """Every file under the box and its content (to prove nothing changed).

        SQLite's -shm/-wal side files are left out: merely opening a WAL database
        (even read-only) makes them, without changing the database.
        """
        return {str(p.relative_to(self.root)): p.read_bytes()
                for p in sorted(self.root.rglob("*"))
                if p.is_file() and not p.name.endswith(("-shm", "-wal"))}


@pytest.fixture
def box(tmp_path: Path) -> Box:
    root = tmp_path / "box"
    root.mkdir()
    return Box(root)


def _wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"mosquitto exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError("mosquitto did not start")


@dataclass
class TlsBroker:
    port: int
    folder: Path

    @property
    def url(self) -> str:
        return f"mqtts://127.0.0.1:{self.port}"


@pytest.fixture
def tls_broker(club_ca: ClubCA, tmp_path: Path) -> Iterator[TlsBroker]:
    """mosquitto on a free port, TLS verified both ways against the club CA."""
    if shutil.which("mosquitto") is None and not Path("/usr/sbin/mosquitto").exists():
        pytest.skip("mosquitto is not installed")
    folder = tmp_path / "broker"
    folder.mkdir()
    cert, key = club_ca.issue_server(["127.0.0.1", "localhost"])
    (folder / "server.crt").write_bytes(cert)
    (folder / "server.key").write_bytes(key)
    (folder / "ca.crt").write_bytes(club_ca.cert_pem)
    port = free_port()
    (folder / "mosquitto.conf").write_text(
        f"listener {port} 127.0.0.1\n"
        f"cafile {folder / 'ca.crt'}\ncertfile {folder / 'server.crt'}\n"
        f"keyfile {folder / 'server.key'}\nrequire_certificate true\n"
        "use_identity_as_username true\nallow_anonymous false\npersistence false\n"
        "log_dest none\n"
        # Started as root, mosquitto drops to its own user, which cannot read the
        # test's private temp folder: stay as the user running the tests.
        + (f"user {pwd.getpwuid(os.geteuid()).pw_name}\n" if os.geteuid() == 0 else ""))
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    proc = subprocess.Popen([exe, "-c", str(folder / "mosquitto.conf")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_port(port, proc)
        yield TlsBroker(port, folder)
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def add_events(cfg: Any, states: list[str]) -> None:
    """Put expense events in the given states ('pending', 'sent', 'acked') into the
    terminal's queue: through agent.offline_queue when it is installed, otherwise
    straight into the table docs/provisioning.md names."""
    from datetime import UTC, datetime

    try:
        from agent.offline_queue import Store
    except ImportError:
        Store = None
    if Store is None:
        con = sqlite3.connect(cfg.db_path)
        con.execute("CREATE TABLE IF NOT EXISTS events (id TEXT PRIMARY KEY, seq INTEGER,"
                    " type TEXT, at TEXT, body TEXT, state TEXT)")
        for n, state in enumerate(states, 1):
            body = {"id": f"e{n}", "seq": n, "type": "expense", "amount": 1000 * n,
                    "category": "supplies", "note": "", "terminal_id": cfg.terminal_id,
                    "merchant_id": cfg.merchant_id}
            con.execute("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?)",
                        (f"e{n}", n, "expense", "2026-11-22T10:00:00+00:00", json.dumps(body),
                         state))
        con.commit()
        con.close()
        return
    store = Store.open(cfg.db_path, cfg.terminal_id, cfg.merchant_id)
    try:
        ids: dict[str, list[str]] = {"pending": [], "sent": [], "acked": []}
        for n, state in enumerate(states, 1):
            event = store.outbox.append("expense", {"amount": 1000 * n, "category": "supplies",
                                             "note": ""},
                                 at=datetime(2026, 11, 22, 10, tzinfo=UTC), staff_id=None,
                                 offline=False)
            ids[state].append(event.id)
        store.outbox.mark_sent(ids["sent"] + ids["acked"])
        if ids["acked"]:
            store.outbox.apply_ack(ids["acked"], [], None)
    finally:
        store.close()
