"""The self-test checklist against the shared TLS broker (per-terminal ACL) and the
club's HTTPS server."""

from __future__ import annotations

import base64
import json
import os
import ssl
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from agent.config import load_config
from hw_sim.broker import MosquittoBroker
from hw_sim.club.https import Request, Response
from hw_sim.club.pki import ClubCA
from provisioning.detect import Hardware
from provisioning.selftest import (
    Check,
    check_config,
    check_readers,
    check_secrets,
    connect_broker,
    run_selftest,
)
from tests.fixtures.club import ClubPki

from .conftest import Box, Club
from .test_enrolment import run_enrol

SIM_HW = Hardware(pcsc_readers=("Virtual PCD 00 00",),
                  input_devices=("/run/clubterm-sim/scanner.events",),
                  serial_ports=("/run/clubterm-sim/msr",))
MEMBERS = [{"member_id": "m-1", "version": 7, "name": "Sara K.", "status": "active",
            "identifiers": ["nfc:04A1B2C3"], "balances": {"points": 10}, "applied": {}},
           {"member_id": "m-2", "version": 9, "name": "Ali R.", "status": "active",
            "identifiers": ["tel:+989121234567"], "balances": {}, "applied": {}}]


def club_client(club_pki: ClubPki, broker: MosquittoBroker) -> mqtt.Client:
    """The club back end's own account on the test's broker (CN ``club:{club_id}``)."""
    assert broker.club_id is not None
    files = club_pki.club_cert(broker.club_id)
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="club-test")
    c.tls_set(ca_certs=str(club_pki.ca.cert_file), certfile=str(files.cert),
              keyfile=str(files.key), tls_version=ssl.PROTOCOL_TLS_CLIENT)
    c.connect("localhost", broker.tls_port or 0)
    c.loop_start()
    return c


def publish_rules(club_pki: ClubPki, broker: MosquittoBroker, key: ed25519.Ed25519PrivateKey,
                  *, key_id: str = "club-2026-1", merchant: str = "M-7",
                  expires_in: timedelta = timedelta(days=30)) -> None:
    """Publish a signed bundle (retained) as the club, then leave: the broker binds the
    club's session to its CN, so the next club client would take it over."""
    now = datetime.now(UTC)
    # A complete bundle as rules.md shows it, so agent.rules accepts it too once merged.
    bundle = {"club": broker.club_id, "merchant": merchant, "version": 42,
              "issued_at": now.isoformat(), "expires_at": (now + expires_in).isoformat(),
              "currency": "EUR", "minor_units": 2, "timezone": "Europe/Berlin",
              "tiers": [{"id": "bronze", "rank": 1}, {"id": "gold", "rank": 2}],
              "points": {"value": 1, "min_redeem": 100, "max_redeem_share_bps": 5000},
              "credits": {"accepted": ["credit.club"], "use_cap_per_invoice": 50000},
              "offline": {"max_redeem_value_per_member_day": 2000, "max_pending": 5000,
                          "max_age_hours": 72},
              "rules": [{"id": "gold10", "kind": "discount", "priority": 100,
                         "when": {"tiers": ["gold"]}, "then": {"percent_bps": 1000}}]}
    payload = json.dumps(bundle).encode()
    envelope = {"key_id": key_id, "payload": base64.b64encode(payload).decode(),
                "sig": base64.b64encode(key.sign(payload)).decode()}
    client = club_client(club_pki, broker)
    try:
        info = client.publish(f"clubterm/v1/{broker.club_id}/merchants/M-7/rules",
                              json.dumps(envelope), qos=1, retain=True)
        info.wait_for_publish(5)
    finally:
        client.loop_stop()
        client.disconnect()


def serve_members(club: Club) -> None:
    def members(request: Request) -> Response:
        assert request.client_cn is not None  # the route demands a client certificate
        body = b"".join(json.dumps(m).encode() + b"\n" for m in MEMBERS)
        return Response(200, body, {"Content-Type": "application/x-ndjson",
                                    "X-Members-Version": "9"})

    club.server.add_route("GET", r"/v1/clubs/(?P<club>[^/]+)/members", members)


@pytest.fixture
def enrolled(club: Club, box: Box, mosquitto: MosquittoBroker):
    """T-0001 enrolled for the club of the test's broker (the shared TLS mosquitto)."""
    assert mosquitto.club_id is not None
    club.service.club_id = mosquitto.club_id
    club.service.broker_url = mosquitto.tls_url
    serve_members(club)
    run_enrol(club, box, club.service.create_code("T-0001", "M-7"))
    return load_config(box.config)


def retained_status(club_pki: ClubPki, broker: MosquittoBroker) -> dict:
    got: dict = {}
    arrived = threading.Event()
    c = club_client(club_pki, broker)

    def on_message(cl, userdata, msg) -> None:
        got.update(json.loads(msg.payload))
        arrived.set()

    c.on_message = on_message
    c.subscribe(f"clubterm/v1/{broker.club_id}/terminals/T-0001/status", qos=1)
    assert arrived.wait(5), "no retained status"
    c.loop_stop()
    c.disconnect()
    return got


@pytest.mark.needs_mosquitto
def test_everything_passes_and_the_club_gets_the_result(enrolled, box: Box, club_pki: ClubPki,
                                                        mosquitto: MosquittoBroker,
                                                        rules_signing_key) -> None:
    publish_rules(club_pki, mosquitto, rules_signing_key)
    lines: list[str] = []
    checks = run_selftest(box.config, hardware=SIM_HW, timeout=5, progress=lines.append)
    assert all(c.ok for c in checks), "\n".join(lines)
    names = [c.name for c in checks]
    assert names == ["configuration", "secret files", "reader chip", "reader msr",
                     "reader scanner", "broker accepts the certificate", "rule bundle",
                     "member snapshot", "result sent to the club"]
    assert "2 members, version 9" in "\n".join(lines)
    status = retained_status(club_pki, mosquitto)
    assert status["state"] == "selftest" and status["selftest"]["ok"] is True
    assert len(status["selftest"]["checks"]) == 8


@pytest.mark.needs_mosquitto
def test_failures_are_listed_with_advice(enrolled, box: Box, club_pki: ClubPki,
                                         mosquitto: MosquittoBroker) -> None:
    # Rules signed by a key the club never handed out, and no readers attached.
    publish_rules(club_pki, mosquitto, ed25519.Ed25519PrivateKey.generate())
    lines: list[str] = []
    checks = run_selftest(box.config, hardware=Hardware(), timeout=5, progress=lines.append)
    failed = {c.name: c for c in checks if not c.ok}
    assert set(failed) == {"reader chip", "reader msr", "reader scanner", "rule bundle"}
    assert "signature" in failed["rule bundle"].detail
    assert all(c.advice for c in failed.values())
    assert "FAIL reader chip" in "\n".join(lines) and "→ " in "\n".join(lines)
    status = retained_status(club_pki, mosquitto)
    assert status["selftest"]["ok"] is False


@pytest.mark.needs_mosquitto
def test_no_retained_bundle(enrolled, box: Box) -> None:
    checks = run_selftest(box.config, hardware=SIM_HW, timeout=1, progress=lambda m: None)
    rules = next(c for c in checks if c.name == "rule bundle")
    assert not rules.ok and "no retained bundle" in rules.detail


@pytest.mark.needs_mosquitto
def test_broker_refuses_a_certificate_from_another_ca(enrolled, box: Box,
                                                      tmp_path: Path) -> None:
    cfg = load_config(box.config)
    stranger = ClubCA.create(tmp_path / "stranger", "stranger")
    files = stranger.issue(tmp_path / "stranger", "T-0001")
    cfg.cert_file.write_bytes(files.cert.read_bytes())
    cfg.key_file.write_bytes(files.key.read_bytes())
    check, session = connect_broker(cfg, timeout=3)
    assert not check.ok and session is None
    assert check.advice


def test_config_and_secret_checks(tmp_path: Path, club: Club, box: Box) -> None:
    check, cfg = check_config(tmp_path / "missing.toml")
    assert not check.ok and cfg is None and "enrol" in check.advice
    run_enrol(club, box, club.service.create_code("T-0001", "M-7"))
    check, cfg = check_config(box.config)
    assert check.ok and cfg is not None
    assert check_secrets(cfg).ok
    if os.geteuid() == 0:
        # Given to the agent's user by enrol --user: still fine when root runs the test.
        for path in (cfg.state_dir, cfg.key_file, cfg.pan_key_file):
            os.chown(path, 65534, 65534)
        assert check_secrets(cfg).ok
        os.chown(cfg.key_file, 0, 0)
        wrong = check_secrets(cfg)
        assert not wrong.ok and "owned by uid 0, not 65534" in wrong.detail
        os.chown(cfg.key_file, 65534, 65534)
    cfg.pan_key_file.chmod(0o640)
    bad = check_secrets(cfg)
    assert not bad.ok and "0640" in bad.detail and "chmod 600" in bad.advice


def test_reader_tap_prompt(club: Club, box: Box) -> None:
    run_enrol(club, box, club.service.create_code("T-0001", "M-7"))
    cfg = load_config(box.config)
    asked: list[tuple[str, str, float]] = []

    def tap(spec, name, timeout):
        asked.append((spec.name, name, timeout))
        return Check(f"reader {spec.name}", False, "no card was tapped", "tap a card")

    prompts: list[str] = []
    checks = check_readers(cfg, SIM_HW, tap_timeout=7, tap=tap, progress=prompts.append)
    assert asked == [("chip", "Virtual PCD 00 00", 7)]
    assert "Tap a test card" in prompts[0]
    assert [c.ok for c in checks] == [False, True, True]


def test_selftest_refuses_to_run_beside_a_running_agent(tmp_path) -> None:
    # The broker binds the client id to the certificate's CN: a self-test beside a
    # running agent would take over the agent's MQTT session. It holds the agent's
    # lock instead, and says what to do.
    from agent.daemon import StateDirLock
    from hw_sim.terminal import write_config
    from provisioning.selftest import run_selftest

    files = write_config(tmp_path)
    agent_lock = StateDirLock(files.state_dir)
    agent_lock.acquire()
    try:
        lines: list[str] = []
        checks = run_selftest(files.config, progress=lines.append, timeout=1)
    finally:
        agent_lock.release()
    assert checks[-1].name == "agent stopped" and not checks[-1].ok
    assert "systemctl stop clubterm" in lines[-1]
    assert not any(c.name == "broker accepts the certificate" for c in checks)
