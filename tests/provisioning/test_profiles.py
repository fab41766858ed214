"""Every shipped terminal profile validates, is documented, and `extends` works."""

from __future__ import annotations

from importlib import resources

import pytest

from agent.config import list_profiles, load_profile
from agent.errors import ConfigError

DOC_SECTIONS = ("Readers", "Device paths", "udev rules needed", "Keymap")


@pytest.mark.parametrize("name", list_profiles())
def test_shipped_profile_validates_and_is_documented(name: str) -> None:
    profile = load_profile(name)
    assert profile.readers, f"{name} has no reader"
    assert profile.description
    text = resources.files("terminal_profiles").joinpath(f"{name}.toml").read_text()
    for section in DOC_SECTIONS:
        assert f"# {section}" in text, f"{name}.toml does not document {section}"
    for reader in profile.readers:
        assert reader.model, f"{name}: reader {reader.name} names no model"
        assert f"{reader.name}" in text


def test_expected_profiles_ship() -> None:
    assert {"emv-wedge-msr", "rpi-acr122u-scanner", "rpi-acr122u-scanner-msr", "serial-msr",
            "sim"} <= set(list_profiles())


def test_extends_adds_a_reader_and_keeps_the_parents() -> None:
    parent = load_profile("rpi-acr122u-scanner")
    child = load_profile("rpi-acr122u-scanner-msr")
    assert [r.name for r in child.readers] == ["nfc", "scanner", "msr"]
    by_name = {r.name: r for r in child.readers}
    for reader in parent.readers:
        assert by_name[reader.name] == reader
    assert by_name["msr"].kind == "serial" and by_name["msr"].device == "/dev/clubterm-msr"
    assert child.udev_rules == parent.udev_rules
    assert child.description != parent.description


def test_extends_overrides_by_reader_name(tmp_path) -> None:
    local = tmp_path / "shop-42.toml"
    local.write_text('extends = "rpi-acr122u-scanner"\n'
                     '[readers.scanner]\ndevice = "/dev/input/by-id/usb-Netum_Scanner-event-kbd"\n'
                     'keymap = "de"\n')
    profile = load_profile(str(local))
    scanner = {r.name: r for r in profile.readers}["scanner"]
    assert scanner.device.endswith("Netum_Scanner-event-kbd")
    assert scanner.keymap == "de" and scanner.kind == "evdev" and scanner.role == "barcode"


def test_extends_loop_is_refused(tmp_path) -> None:
    a = tmp_path / "a.toml"
    b = tmp_path / "b.toml"
    a.write_text(f'extends = "{b}"\n')
    b.write_text(f'extends = "{a}"\n')
    with pytest.raises(ConfigError, match="loop"):
        load_profile(str(a))
