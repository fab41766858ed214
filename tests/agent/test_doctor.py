"""`clubterm doctor` tells a technician what is wrong and what to try."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from agent.cli import main
from agent.config import ReaderSpec
from agent.doctor import check_certificate_expiry, check_reader
from provisioning.tomlwrite import dump_toml


def test_serial_reader_present_and_missing(tmp_path: Path) -> None:
    master, slave = os.openpty()
    try:
        tty = os.ttyname(slave)
        ok = check_reader(ReaderSpec(name="msr", kind="serial", role="card", device=tty))
        assert ok.ok, ok.detail
    finally:
        os.close(master)
        os.close(slave)
    gone = check_reader(ReaderSpec(name="msr", kind="serial", role="card",
                                   device=str(tmp_path / "ttyUSB9")))
    assert not gone.ok
    assert "udev" in gone.fix


def test_pcsc_reader_matched_by_pattern() -> None:
    spec = ReaderSpec(name="nfc", kind="pcsc", role="card", reader="ACS ACR122U*")
    assert check_reader(spec, pcsc_list=lambda: ["ACS ACR122U PICC Interface 00 00"]).ok
    miss = check_reader(spec, pcsc_list=lambda: ["Virtual PCD 00 00"])
    assert not miss.ok
    assert "Virtual PCD 00 00" in miss.detail


def _cert(days: int) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "T-0001")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=days))
            .sign(key, hashes.SHA256()))
    from cryptography.hazmat.primitives.serialization import Encoding
    return cert.public_bytes(Encoding.PEM)


@pytest.mark.parametrize(("days", "ok", "warning"), [(200, True, False), (10, True, True)])
def test_certificate_expiry_warns_30_days_before(tmp_path: Path, days: int, ok: bool,
                                                 warning: bool) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_bytes(_cert(days))
    check = check_certificate_expiry(cert, datetime.now(UTC))
    assert (check.ok, check.warning) == (ok, warning)


def test_doctor_cli_reports_and_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = tmp_path / "pan_key"
    key.write_bytes(os.urandom(32))
    key.chmod(0o644)
    cfg = tmp_path / "agent.toml"
    cfg.write_text(dump_toml({
        "terminal": {"id": "T-1", "merchant_id": "M-1", "club_id": "acme",
                     "profile": "serial-msr"},
        "paths": {"state_dir": str(tmp_path)}, "secrets": {"pan_key_file": "pan_key"},
    }))
    assert main(["--config", str(cfg), "doctor"]) == 1
    out = capsys.readouterr().out
    assert "[FAIL] msr" in out
    assert "[FAIL] pan_key" in out and "chmod 600" in out
    assert "[ OK ] state folder" in out
    assert main(["--config", str(cfg), "doctor", "--json"]) == 1
    checks = json.loads(capsys.readouterr().out)
    assert any(c["name"] == "broker" and not c["ok"] for c in checks)


def test_missing_config_is_a_clear_error(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(tmp_path / "none.toml"), "doctor"]) == 2
    assert "provision enrol" in capsys.readouterr().err
