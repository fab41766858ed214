"""A real agent process wired to a simulated club, a real broker and (optionally) pcscd."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from agent.localapi.client import SyncClient
from hw_sim.broker import MosquittoBroker
from hw_sim.club.__main__ import load_members_file
from hw_sim.club.sim import SimClub
from hw_sim.terminal import TerminalFiles, seed_store, write_config
from tests.agent.daemon.support import AgentProcess, NotifyListener
from tests.fixtures.club import ClubPki

PCSC_ONLY = """description = "vpcd only (end-to-end tests)"
[readers.chip]
kind = "pcsc"
model = "vsmartcard vpcd"
reader = "Virtual PCD*"
role = "card"
"""
TEST_PANS = ("4111111111111111", "5555555555554444", "4761739001010119")


@dataclass
class ClubTerminal:
    files: TerminalFiles
    club: SimClub
    broker: MosquittoBroker
    env: dict[str, str]
    notify: NotifyListener
    agent: AgentProcess | None = None

    def start(self) -> AgentProcess:
        self.agent = AgentProcess(self.files, self.notify, env=self.env)
        self.agent.wait_socket(20)
        return self.agent

    def status(self) -> dict[str, Any]:
        with SyncClient(self.files.socket, timeout_s=10) as client:
            result: dict[str, Any] = client.call("agent.status")
            return result

    def wait_synced(self, timeout: float = 30.0) -> dict[str, Any]:
        """Wait until the agent is online with the club's members and rules."""
        deadline = time.monotonic() + timeout
        last: dict[str, Any] = {}
        while time.monotonic() < deadline:
            try:
                last = self.status()
            except Exception:  # the agent may be restarting
                time.sleep(0.1)
                continue
            if last["online"] and last["members_version"] > 0 and last["rules_version"]:
                return last
            time.sleep(0.1)
        raise AssertionError(f"the agent never synced with the club: {last}\n"
                             f"{self.agent.output() if self.agent else ''}")


@contextmanager
def club_terminal(broker: MosquittoBroker, club: SimClub, pki: ClubPki, *,
                  pcsc_socket: Path | None = None,
                  link_tuning: Mapping[str, Any] | None = None,
                  profile_text: str | None = None) -> Iterator[ClubTerminal]:
    """A terminal of ``club`` (TLS to the broker, HTTPS snapshot) with the demo members;
    ``profile_text``: its terminal profile (default: the vpcd reader, or none)."""
    seed = load_members_file(None)
    club.upsert_members(seed["members"])
    club.publish_bundle("M-7", 1)
    root = Path(tempfile.mkdtemp(prefix="cte", dir="/tmp"))
    try:
        keys = root / "rule-keys"
        club.signing_key.write_public(keys)
        certs = pki.terminal_cert("T-0001")
        files = write_config(
            root, broker_url=broker.tls_url, central_url=club.central_url, club_id=club.club_id,
            tls=(pki.ca.cert_file, certs.cert, certs.key), trusted_keys=keys,
            pan_key_hex=seed["pan_key_hex"],
            profile_text=profile_text or (PCSC_ONLY if pcsc_socket else None),
            club_settings=link_tuning)
        seed_store(files, demo_members=False, bundle=False)  # staff only
        env = {"PCSCLITE_CSOCK_NAME": str(pcsc_socket)} if pcsc_socket else {}
        notify = NotifyListener(root / "notify.sock")
        term = ClubTerminal(files, club, broker, env, notify)
        try:
            yield term
        finally:
            if term.agent is not None:
                term.agent.stop()
            notify.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)


class Sniffer:
    """Everything published on the broker, captured from its plain listener."""

    def __init__(self, broker: MosquittoBroker):
        self.payloads: list[bytes] = []
        self.topics: list[str] = []
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="sniffer")
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, *a: c.subscribe("#", qos=1)
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        self.topics.append(msg.topic)
        self.payloads.append(bytes(msg.payload))

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def assert_no_test_pan(*blobs: bytes) -> None:
    """No test PAN (as digits, or as the first 12 digits of one) in any of ``blobs``."""
    for blob in blobs:
        for pan in TEST_PANS:
            assert pan.encode() not in blob, "a test PAN was found"
            assert pan[:12].encode() not in blob, "a test PAN prefix was found"
