"""The self-test's test-card step through the agent's own drivers (agent.drivers),
with hw_sim's virtual serial magstripe reader on a pseudo-terminal."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from agent.config import load_config
from hw_sim import serial_msr
from provisioning.detect import Hardware
from provisioning.selftest import reader_checks

from .conftest import Box, Club
from .test_enrolment import run_enrol

PAN = "4111111111111111"


@pytest.fixture
def msr_box(club: Club, box: Box, tmp_path: Path):
    link = tmp_path / "msr"
    msr = serial_msr.VirtualSerialMsr(link)
    profile = tmp_path / "one-msr.toml"
    profile.write_text('description = "one serial MSR"\n[readers.msr]\nkind = "serial"\n'
                       f'model = "hw_sim virtual MSR"\ndevice = "{link}"\n')
    run_enrol(club, box, club.service.create_code("T-0001", "M-7"), profile=str(profile))
    yield load_config(box.config), msr, link
    msr.unplug()


def test_a_swiped_test_card_passes_and_no_pan_is_printed(msr_box) -> None:
    cfg, msr, link = msr_box
    lines: list[str] = []

    def swipe_when_asked() -> None:
        deadline = time.monotonic() + 5
        while not any("Tap, swipe or scan" in line for line in lines):
            if time.monotonic() > deadline:
                return
            time.sleep(0.05)
        time.sleep(0.5)  # the driver opens the port after the prompt
        msr.swipe(serial_msr.track_data(PAN))

    helper = threading.Thread(target=swipe_when_asked)
    helper.start()
    checks = reader_checks(cfg, Hardware(serial_ports=(str(link),)), tap_timeout=8,
                           progress=lines.append)
    helper.join()
    assert [c.ok for c in checks] == [True], [c.line() for c in checks]
    assert "411111******1111" in checks[0].detail
    text = "\n".join(lines + [c.line() for c in checks])
    assert PAN not in text


def test_no_swipe_is_a_failure_with_advice(msr_box) -> None:
    cfg, _, link = msr_box
    checks = reader_checks(cfg, Hardware(serial_ports=(str(link),)), tap_timeout=1,
                           progress=lambda m: None)
    assert not checks[0].ok and "no test card" in checks[0].detail and checks[0].advice
