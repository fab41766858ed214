"""Proposing a profile from what is attached (pure functions over lists)."""

from __future__ import annotations

from pathlib import Path

from provisioning.detect import (
    Hardware,
    detect_hardware,
    propose_profile,
    rank_profiles,
    shipped_profiles,
)

ACR = "ACS ACR122U PICC Interface 00 00"
SCANNER = "/dev/input/by-id/usb-Netum_Barcode_Scanner-event-kbd"
DYNAMAG = "/dev/input/by-id/usb-Mag-Tek_USB_Swipe_Reader-event-kbd"


def test_pi_with_nfc_and_scanner() -> None:
    match = propose_profile(Hardware(pcsc_readers=(ACR,), input_devices=(SCANNER,)))
    assert match is not None and match.name == "rpi-acr122u-scanner"
    assert dict(match.found) == {"nfc": ACR, "scanner": SCANNER}


def test_the_more_specific_profile_wins() -> None:
    hw = Hardware(pcsc_readers=(ACR,), input_devices=(SCANNER,),
                  serial_ports=("/dev/clubterm-msr",))
    match = propose_profile(hw)
    assert match is not None and match.name == "rpi-acr122u-scanner-msr"


def test_emv_box_and_serial_box() -> None:
    emv = propose_profile(Hardware(pcsc_readers=("Identiv SCR3310 [CCID] 00 00",),
                                   input_devices=(DYNAMAG,)))
    assert emv is not None and emv.name == "emv-wedge-msr"
    serial = propose_profile(Hardware(serial_ports=("/dev/clubterm-msr",)))
    assert serial is not None and serial.name == "serial-msr"


def test_nothing_attached_proposes_nothing_and_says_what_is_missing() -> None:
    assert propose_profile(Hardware()) is None
    ranked = rank_profiles(shipped_profiles(), Hardware(pcsc_readers=(ACR,)))
    pi = next(m for m in ranked if m.name == "rpi-acr122u-scanner")
    assert pi.missing == ("scanner",) and not pi.complete
    assert all(m.name != "sim" for m in ranked)


def test_detect_hardware_reads_the_device_folders(tmp_path: Path) -> None:
    by_id = tmp_path / "by-id"
    by_id.mkdir()
    (by_id / "usb-Netum_Barcode_Scanner-event-kbd").touch()
    (tmp_path / "clubterm-msr").touch()
    hw = detect_hardware(input_glob=str(by_id / "*"),
                         serial_globs=(str(tmp_path / "clubterm-*"),), pcsc=False)
    assert hw.input_devices == (str(by_id / "usb-Netum_Barcode_Scanner-event-kbd"),)
    assert hw.serial_ports == (str(tmp_path / "clubterm-msr"),)
    assert hw.to_json()["pcsc"] == []
