"""Fixtures for the provisioning tests: the club's enrolment routes on a club HTTPS
server, and an empty box.

The CA, the HTTPS server and the broker are the shared ones (tests/fixtures/club.py
and mosquitto.py: ``club_pki``, ``club_https``, ``mosquitto``, ``sim_club``), the
same the sync tests use.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from agent.offline_queue import Store
from hw_sim.club.enrolment import EnrolmentService
from hw_sim.club.https import ClubHttpServer
from hw_sim.club.pki import ClubCA
from tests.fixtures.club import ClubPki

CLUB = "demo-club"


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
    server: ClubHttpServer

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture
def club(club_pki: ClubPki, club_https: Callable[..., ClubHttpServer],
         rules_signing_key: ed25519.Ed25519PrivateKey, pan_key: bytes) -> Club:
    """The enrolment routes mounted on a club HTTPS server of the session's CA."""
    server = club_https()
    service = EnrolmentService(club_pki.ca, club_id=CLUB, pan_key=pan_key,
                               rules_keys={"club-2026-1": rules_signing_key.public_key()},
                               broker_url="mqtts://127.0.0.1:8883", central_url=server.url)
    service.mount(server)
    return Club(club_pki.ca, service, server)


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


def add_events(cfg: Any, states: list[str]) -> None:
    """Put expense events in the given states ('pending', 'sent', 'acked') into the
    terminal's queue through agent.offline_queue."""
    store = Store.open(cfg.db_path, cfg.terminal_id, cfg.merchant_id)
    try:
        ids: dict[str, list[str]] = {"pending": [], "sent": [], "acked": []}
        for n, state in enumerate(states, 1):
            event = store.append("expense", {"amount": 1000 * n, "category": "supplies",
                                             "note": ""},
                                 at=datetime(2026, 11, 22, 10, tzinfo=UTC), staff_id=None,
                                 offline=False)
            ids[state].append(event.id)
        store.mark_sent(ids["sent"] + ids["acked"])
        if ids["acked"]:
            store.apply_ack(ids["acked"], [], None)
    finally:
        store.close()
