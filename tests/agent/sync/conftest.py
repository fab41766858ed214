"""Terminals for the link tests: a config, a store and a ClubLink against a SimClub."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from agent.config import Config, load_config
from agent.offline_queue import Store
from agent.rules import BundleState, load_trusted_keys
from agent.sync import ClubLink, LinkTuning
from hw_sim.club.sim import SimClub
from provisioning.tomlwrite import dump_toml
from tests.fixtures.club import ClubPki

FAST = LinkTuning(keepalive_s=3, reconnect_base_s=0.2, reconnect_cap_s=2.0, ack_timeout_s=3.0,
                  status_interval_s=300.0, status_min_gap_s=0.2, snapshot_retry_s=1.0)


def open_store(path: Path, terminal_id: str, merchant_id: str) -> Store:
    """The real store (agent.offline_queue)."""
    return Store.open(path, terminal_id, merchant_id)


def make_bundle_state(config: Config) -> BundleState:
    trusted = load_trusted_keys(config.rules_keys_dir) if config.rules_keys_dir else {}
    return BundleState(trusted, club=config.club_id, merchant=config.merchant_id)


def write_config(directory: Path, *, terminal_id: str, merchant_id: str, club: SimClub,
                 pki: ClubPki, broker_url: str | list[str], extra: str = "",
                 mqtt_version: str = "5") -> Config:
    """``broker_url`` one URL, or a list (written as ``broker_urls``)."""
    directory.mkdir(parents=True, exist_ok=True)
    certs = pki.terminal_cert(terminal_id)
    keys = directory / "rule-keys"
    club.signing_key.write_public(keys)
    text = dump_toml({
        "terminal": {"id": terminal_id, "merchant_id": merchant_id, "club_id": club.club_id,
                     "profile": "sim"},
        "paths": {"state_dir": str(directory), "socket": str(directory / "agent.sock")},
        "club": {**({"broker_urls": broker_url} if isinstance(broker_url, list)
                    else {"broker_url": broker_url}),
                 **({"mqtt_version": mqtt_version} if mqtt_version != "5" else {}),
                 "central_url": club.central_url,
                 "allow_plain": str(broker_url[0] if isinstance(broker_url, list)
                                    else broker_url).startswith("mqtt:"),
                 "ca_file": str(pki.ca.cert_file), "cert_file": str(certs.cert),
                 "key_file": str(certs.key), "rules_keys_dir": str(keys)},
    })
    path = directory / "agent.toml"
    path.write_text(text + extra)  # extra: more TOML tables, as given
    return load_config(path)


@dataclass
class Terminal:
    """One terminal under test."""

    config: Config
    store: Any
    bundle_state: Any
    tuning: LinkTuning
    events: list[dict[str, Any]] = field(default_factory=list)
    link: ClubLink | None = None
    _cond: threading.Condition = field(default_factory=threading.Condition)

    @property
    def id(self) -> str:
        return self.config.terminal_id

    def on_event(self, event: dict[str, Any]) -> None:
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()

    def start(self) -> ClubLink:
        self.link = ClubLink(self.config, self.store, self.bundle_state, self.on_event,
                             tuning=self.tuning)
        self.link.start()
        return self.link

    def stop(self) -> None:
        if self.link is not None:
            self.link.stop()
            self.link = None

    def sale(self, member_id: str | None, *, gross: int = 1000, earned: int = 10,
             redeemed: int = 0, credit_used: int = 0, offline: bool = False) -> Any:
        body = {"member_id": member_id, "identified_by": None,
                "lines": [{"sku": "x", "category": "c", "qty": 1, "unit_price": gross}],
                "gross": gross, "discounts": [], "redeemed_points": redeemed,
                "redeemed_value": redeemed,
                "credits_used": ([{"kind": "credit.club", "amount": credit_used}]
                                 if credit_used else []),
                "payable": gross - redeemed - credit_used,
                "points_earned": [{"rule": "base-points", "points": earned}],
                "credits_earned": [{"rule": "cashback", "kind": "credit.club", "amount": 3,
                                    "expires": "2027-03-01"}],
                "lottery_entries": 0, "rules_version": 1, "payment": "cash"}
        ev = self.store.outbox.append("sale", body, at=datetime.now(UTC), staff_id=None,
                               offline=offline)
        if self.link is not None:
            self.link.wake()
        return ev

    def wait(self, predicate: Callable[[], bool], timeout: float = 30.0,
             what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError(f"terminal {self.id}: timed out waiting for {what}")
            time.sleep(0.05)

    def wait_drained(self, timeout: float = 60.0) -> None:
        self.wait(lambda: self.store.outbox.queue_stats().pending == 0, timeout, "queue drained")


@pytest.fixture
def make_terminal(tmp_path: Path, club_pki: ClubPki) -> Iterator[Callable[..., Terminal]]:
    made: list[Terminal] = []

    def make(club: SimClub, broker_url: str | list[str], *, terminal_id: str = "T-1",
             merchant_id: str = "M-7", tuning: LinkTuning = FAST, extra: str = "",
             start: bool = True, mqtt_version: str = "5") -> Terminal:
        directory = tmp_path / f"term-{terminal_id}-{len(made)}"
        config = write_config(directory, terminal_id=terminal_id, merchant_id=merchant_id,
                              club=club, pki=club_pki, broker_url=broker_url, extra=extra,
                              mqtt_version=mqtt_version)
        store = open_store(config.db_path, terminal_id, merchant_id)
        term = Terminal(config, store, make_bundle_state(config), tuning)
        made.append(term)
        if start:
            term.start()
        return term

    yield make
    for term in made:
        term.stop()
        try:
            term.store.close()
        except Exception:
            pass


def club_and_terminal_agree(club: SimClub, term: Terminal, member_id: str) -> None:
    """The member's balances at the club equal what the terminal shows."""
    at_club = club.ledger.member(member_id)
    assert at_club is not None
    term.wait(lambda: term.store.members.members_version() >= club.ledger.members_version(), 20,
              "member cache up to date")
    assert term.store.members.usable_balances(member_id) == at_club["balances"]
