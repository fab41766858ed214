"""The `clubterm provision` command as a technician runs it: messages, exit codes,
and no secret in anything it prints or logs."""

from __future__ import annotations

import base64
import io
import logging
import re
from pathlib import Path

import pytest

from agent.cli import main
from agent.config import load_config
from agent.log import configure_logging
from provisioning.state import PENDING_KEY

from .conftest import Box, Club


def run_cli(argv: list[str]) -> int:
    """The real entry point, as `clubterm ...` runs it."""
    return main(argv)


@pytest.fixture
def all_logs() -> io.StringIO:
    stream = io.StringIO()
    handler = configure_logging("debug", "json", stream)
    yield stream
    logging.getLogger().removeHandler(handler)


def enrol_argv(club: Club, box: Box, code: str) -> list[str]:
    return ["--config", str(box.config), "provision", "enrol", "--central", club.url,
            "--code", code, "--ca-fingerprint", club.ca.fingerprint, "--profile", "sim",
            "--state-dir", str(box.state_dir), "--timeout", "5"]


def secret_forms(pan_key: bytes, key_pem: bytes) -> list[str]:
    body = b"".join(line for line in key_pem.splitlines() if not line.startswith(b"-----"))
    return [pan_key.hex(), pan_key.hex().upper(), base64.b64encode(pan_key).decode(),
            base64.urlsafe_b64encode(pan_key).decode().rstrip("="), body.decode()[:40],
            "PRIVATE KEY"]


def test_enrol_prints_steps_and_no_secret(club: Club, box: Box, pan_key: bytes,
                                          capsys: pytest.CaptureFixture[str],
                                          all_logs: io.StringIO) -> None:
    code = club.service.create_code("T-0001", "M-7")
    assert run_cli(enrol_argv(club, box, code)) == 0
    out = capsys.readouterr()
    text = out.out + out.err + all_logs.getvalue()
    assert "6/6 Writing the configuration" in text
    assert "Enrolled as terminal T-0001" in text
    assert "Next: clubterm provision selftest" in text
    cfg = load_config(box.config)
    for secret in secret_forms(pan_key, cfg.key_file.read_bytes()):
        assert secret not in text
    # The one-time code is not echoed either (it is as good as a password until used).
    assert code not in text
    # Nor is the pan_key anywhere in the configuration file.
    for secret in secret_forms(pan_key, cfg.key_file.read_bytes()):
        assert secret not in box.config.read_text()

    # status: identity and certificate; rotate: a new key; neither leaks secrets.
    assert run_cli(["--config", str(box.config), "provision", "status"]) == 0
    assert run_cli(["--config", str(box.config), "provision", "rotate"]) == 0
    out = capsys.readouterr()
    text = out.out + out.err + all_logs.getvalue()
    assert "terminal T-0001" in text and "certificate valid until" in text
    new_key = load_config(box.config).key_file.read_bytes()
    for secret in secret_forms(pan_key, new_key):
        assert secret not in text


def test_enrol_errors_are_clear_and_change_nothing(club: Club, box: Box,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(enrol_argv(club, box, "WRONG-CODE-0000")) == 2
    err = capsys.readouterr().err
    assert re.search(r"clubterm: error: The enrolment code is wrong", err)
    assert not box.config.exists() and not (box.state_dir / PENDING_KEY).exists()


def test_rotate_if_expiring_within(club: Club, box: Box,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(enrol_argv(club, box, club.service.create_code("T-0001", "M-7"))) == 0
    before = box.config.read_bytes()
    assert run_cli(["--config", str(box.config), "provision", "rotate",
                    "--if-expiring-within", "30"]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert box.config.read_bytes() == before


def test_provision_without_step_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["provision"]) == 2
    assert "enrol" in capsys.readouterr().out


def test_detect_lists_profiles(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert run_cli(["provision", "detect"]) == 0
    out = capsys.readouterr().out
    assert "rpi-acr122u-scanner" in out and "serial-msr" in out


def test_selftest_exits_non_zero_on_a_failure(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["--config", str(tmp_path / "none.toml"), "provision", "selftest"]) == 1
    out = capsys.readouterr().out
    assert "FAIL configuration" in out and "clubterm provision enrol" in out
