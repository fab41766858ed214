"""The demo club: seed data matches the hw_sim test cards; the CLI starts and stops."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from importlib import resources

import pytest

from agent.carddata.tokens import pan_token

TEST_CARDS = ["4111111111111111", "5555555555554444", "4761739001010119"]


def test_demo_members_carry_the_tokens_of_the_test_cards() -> None:
    doc = json.loads(resources.files("hw_sim.club").joinpath("demo_members.json").read_text())
    key = bytes.fromhex(doc["pan_key_hex"])
    tokens = {t for m in doc["members"] for t in m["identifiers"]}
    for pan in TEST_CARDS:
        assert pan_token(key, pan) in tokens
    assert not any(pan in json.dumps(doc) for pan in TEST_CARDS)


@pytest.mark.needs_mosquitto
def test_cli_runs_with_its_own_broker(tmp_path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "hw_sim.club", "--broker", "auto",
                             "--state", str(tmp_path), "--write-pan-key",
                             str(tmp_path / "pan.key")],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        assert "is running" in proc.stdout.readline()
        lines = [proc.stdout.readline() for _ in range(3)]
        assert any("central_url" in line for line in lines)
        assert (tmp_path / "pan.key").stat().st_mode & 0o777 == 0o600
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
