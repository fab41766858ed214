"""Certificate rotation and the expiry warning."""

from __future__ import annotations

import dataclasses
import hashlib
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509

from agent.config import load_config
from agent.errors import ProvisioningError
from provisioning.enrol import rotate
from provisioning.expiry import cert_expiry_warning

from .conftest import Box, Club
from .test_enrolment import run_enrol


def make_queue(db: Path) -> str:
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE events (id TEXT PRIMARY KEY, seq INTEGER, type TEXT, at TEXT,"
                " body TEXT, state TEXT)")
    con.execute("INSERT INTO events VALUES ('e1', 1, 'sale', '2026-11-22T10:00:00+00:00',"
                " '{\"gross\": 1000}', 'pending')")
    con.commit()
    con.close()
    return hashlib.sha256(db.read_bytes()).hexdigest()


def test_rotate_swaps_key_and_certificate_and_keeps_the_queue(club: Club, box: Box,
                                                               pan_key: bytes) -> None:
    run_enrol(club, box, club.service.create_code("T-0001", "M-7"))
    old = load_config(box.config)
    digest = make_queue(old.db_path)
    result = rotate(old)
    new = load_config(box.config)
    assert (new.terminal_id, new.merchant_id, new.club_id) == ("T-0001", "M-7", old.club_id)
    assert new.key_file != old.key_file and new.key_file.read_bytes() != old.key_file.read_bytes()
    assert new.read_pan_key() == pan_key
    cert = x509.load_pem_x509_certificate(new.cert_file.read_bytes())
    cert.verify_directly_issued_by(club.ca.cert)
    assert sorted(p.name for p in new.rules_keys_dir.iterdir()) == ["club-2026-1.pub"]
    # The queue is exactly as it was; the previous generation stays for a running agent.
    assert hashlib.sha256(new.db_path.read_bytes()).hexdigest() == digest
    assert result.previous == old.cert_file.parent and old.key_file.exists()

    # A second rotation drops the oldest generation.
    rotate(new)
    assert not old.key_file.exists()
    assert new.key_file.exists()


def test_rotate_only_for_its_own_terminal(club: Club, box: Box) -> None:
    run_enrol(club, box, club.service.create_code("T-0001", "M-7"))
    cfg = load_config(box.config)
    before = box.snapshot()
    # The certificate says T-0001: the club will not renew T-0002 with it.
    with pytest.raises(ProvisioningError, match="cannot renew"):
        rotate(dataclasses.replace(cfg, terminal_id="T-0002"))
    assert box.snapshot() == before


def test_short_lived_certificate_is_warned_and_rotated(club: Club, box: Box) -> None:
    club.service.cert_days = 20
    run_enrol(club, box, club.service.create_code("T-0001", "M-7"))
    cfg = load_config(box.config)
    assert "expires on" in (cert_expiry_warning(cfg.cert_file, datetime.now(UTC)) or "")
    club.service.cert_days = 365
    rotate(cfg)
    assert cert_expiry_warning(load_config(box.config).cert_file, datetime.now(UTC)) is None


@pytest.mark.parametrize(("days_left", "expect"), [
    (365, None), (31, None), (30, "expires on"), (1, "(in 1 day)"), (-1, "expired on"),
])
def test_cert_expiry_warning(club: Club, box: Box, days_left: int, expect: str | None) -> None:
    run_enrol(club, box, club.service.create_code("T-0001", "M-7"))
    cfg = load_config(box.config)
    not_after = x509.load_pem_x509_certificate(cfg.cert_file.read_bytes()).not_valid_after_utc
    now = not_after - timedelta(days=days_left) + timedelta(seconds=1 if days_left <= 0 else 0)
    warning = cert_expiry_warning(cfg.cert_file, now)
    if expect is None:
        assert warning is None
    else:
        assert warning is not None and expect in warning and "rotate" in warning


def test_cert_expiry_warning_on_an_unreadable_file(tmp_path: Path) -> None:
    warning = cert_expiry_warning(tmp_path / "missing.crt", datetime.now(UTC))
    assert warning is not None and "cannot be read" in warning
