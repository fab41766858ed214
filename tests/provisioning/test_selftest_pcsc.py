"""The self-test's PC/SC steps against an isolated real pcscd with the vpcd virtual
reader and hw_sim's virtual cards: reader detection, the driver read, the pyscard
ATR fallback. Skipped only where pcscd or the vpcd driver is not installed."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from agent.config import load_config
from hw_sim import cards
from provisioning.detect import detect_hardware, reader_present
from provisioning.selftest import pcsc_tap, reader_checks

from .conftest import Box, Club
from .test_enrolment import run_enrol


@pytest.fixture
def chip_cfg(club: Club, box: Box, tmp_path: Path):
    profile = tmp_path / "chip.toml"
    profile.write_text('description = "vpcd only"\n[readers.chip]\nkind = "pcsc"\n'
                       'model = "vsmartcard vpcd"\nreader = "Virtual PCD*"\n')
    run_enrol(club, box, club.service.create_code("T-0001", "M-7"), profile=str(profile))
    return load_config(box.config)


@pytest.mark.needs_pcscd
def test_detects_the_reader_and_reads_a_test_card(pcscd: Any, chip_cfg) -> None:
    hw = detect_hardware(input_glob="/nonexistent/*", serial_globs=())
    spec = chip_cfg.profile.readers[0]
    assert reader_present(spec, hw) is not None, hw
    lines: list[str] = []
    sessions: list[Any] = []

    def insert_when_asked() -> None:
        deadline = time.monotonic() + 5
        while not any("Tap" in line for line in lines) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        sessions.append(pcscd.insert(cards.visa_contact()))

    helper = threading.Thread(target=insert_when_asked)
    helper.start()
    try:
        checks = reader_checks(chip_cfg, hw, tap_timeout=10, progress=lines.append)
    finally:
        helper.join()
        for session in sessions:
            session.remove()
    assert [c.ok for c in checks] == [True], [c.line() for c in checks]
    assert "******" in checks[0].detail


@pytest.mark.needs_pcscd
def test_atr_fallback_with_pyscard(pcscd: Any, chip_cfg) -> None:
    hw = detect_hardware(input_glob="/nonexistent/*", serial_globs=())
    spec = chip_cfg.profile.readers[0]
    name = reader_present(spec, hw)
    assert name is not None
    session = pcscd.insert(cards.visa_contact())
    try:
        check = pcsc_tap(spec, name, 5)
    finally:
        session.remove()
    assert check is not None and check.ok and "ATR" in check.detail
    pcscd.wait_card_state(present=False)
    check = pcsc_tap(spec, name, 1)
    assert check is not None and not check.ok and "no card was tapped" in check.detail
