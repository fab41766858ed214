"""Configuration and terminal profiles: valid files load, bad ones say file, key and why."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent.config import list_profiles, load_config, load_profile
from agent.errors import ConfigError

GOOD = """
[terminal]
id = "T-0001"
merchant_id = "M-7"
club_id = "acme"
profile = "sim"
default_country_code = "98"

[paths]
state_dir = "state"
socket = "run/agent.sock"

[secrets]
pan_key_file = "pan_key"

[club]
broker_url = "mqtts://broker.example:8883"
central_url = "https://central.example"
ca_file = "ca.pem"
cert_file = "cert.pem"
key_file = "key.pem"
rules_keys_dir = "rules-keys"
"""


def write(tmp_path: Path, text: str, *, key_mode: int = 0o600) -> Path:
    cfg = tmp_path / "agent.toml"
    cfg.write_text(text)
    for name in ("pan_key", "key.pem"):
        f = tmp_path / name
        f.write_bytes(os.urandom(32))
        f.chmod(key_mode)
    return cfg


def test_good_config_loads_with_relative_paths(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, GOOD))
    assert cfg.terminal_id == "T-0001"
    assert cfg.state_dir == tmp_path / "state"
    assert cfg.db_path == tmp_path / "state" / "clubterm.db"
    assert cfg.profile.name == "sim"
    assert {r.kind for r in cfg.profile.readers} == {"pcsc", "serial", "evdev"}
    assert len(cfg.read_pan_key()) == 32


def test_pan_key_as_hex(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, GOOD))
    (tmp_path / "pan_key").write_text("ab" * 32 + "\n")
    assert cfg.read_pan_key() == b"\xab" * 32


@pytest.mark.parametrize(
    ("change", "key", "words"),
    [
        (('id = "T-0001"', ""), "terminal.id", "required"),
        (('club_id = "acme"', 'club_id = "Acme Club"'), "terminal.club_id", "slug"),
        (('merchant_id = "M-7"', 'merchant_id = "M/7"'), "terminal.merchant_id", "MQTT"),
        # A terminal id is the certificate CN and client id: never the club's
        # account (club:acme) and never an ACL wildcard.
        (('id = "T-0001"', 'id = "club:acme"'), "terminal.id", "not a terminal id"),
        (('id = "T-0001"', 'id = "T+1"'), "terminal.id", "not a terminal id"),
        (('profile = "sim"', 'profile = "nope"'), "terminal.profile", "no terminal profile"),
        (('default_country_code = "98"', 'default_country_code = "+98"'),
         "terminal.default_country_code", "1 to 3 digits"),
        (('broker_url = "mqtts://broker.example:8883"', 'broker_url = "mqtt://b:1883"'),
         "club.broker_url", "allow_plain"),
        (('broker_url = "mqtts://broker.example:8883"', 'broker_url = "tcp://b"'),
         "club.broker_url", "mqtts://"),
        (('central_url = "https://central.example"', "central_url = 5"),
         "club.central_url", "string"),
        (("[paths]", "[bogus]\n[paths]"), "bogus", "not a known section"),
    ],
)
def test_bad_values_name_file_key_and_problem(
    tmp_path: Path, change: tuple[str, str], key: str, words: str
) -> None:
    path = write(tmp_path, GOOD.replace(*change))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert str(path) in message
    assert f"[{key}]" in message
    assert words in message


def test_plain_broker_allowed_when_said(tmp_path: Path) -> None:
    text = GOOD.replace('"mqtts://broker.example:8883"', '"mqtt://127.0.0.1:1883"')
    text = text.replace("[club]", "[club]\nallow_plain = true")
    assert load_config(write(tmp_path, text)).allow_plain


def test_secret_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD, key_mode=0o644)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "mode 0644" in str(err.value)
    assert "chmod 600" in str(err.value)


def test_missing_secret_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    (tmp_path / "pan_key").unlink()
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(path)


def test_invalid_toml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "agent.toml"
    bad.write_text("[terminal\nid=")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="provision enrol"):
        load_config(tmp_path / "missing.toml")


def test_every_shipped_profile_validates() -> None:
    names = list_profiles()
    assert {"sim", "rpi-acr122u-scanner", "serial-msr", "emv-wedge-msr"} <= set(names)
    for name in names:
        profile = load_profile(name)
        assert profile.readers, name
        assert profile.description, name


def test_profile_extends_and_overrides_by_reader_name(tmp_path: Path) -> None:
    child = tmp_path / "child.toml"
    child.write_text(
        'extends = "serial-msr"\ndescription = "faster"\n'
        "[readers.msr]\nbaud = 19200\n"
        '[readers.scanner]\nkind = "evdev"\ndevice = "/dev/input/x"\nrole = "barcode"\n'
    )
    profile = load_profile(str(child))
    readers = {r.name: r for r in profile.readers}
    assert readers["msr"].baud == 19200
    assert readers["msr"].device == "/dev/clubterm-msr"  # inherited
    assert readers["scanner"].role == "barcode"


def test_profile_errors_name_the_reader_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[readers.msr]\nkind = "serial"\nbaud = "fast"\ndevice = "/dev/x"\n')
    with pytest.raises(ConfigError, match=r"\[readers.msr.baud\] must be a whole number"):
        load_profile(str(bad))
    bad.write_text('[readers.msr]\nkind = "usb"\n')
    with pytest.raises(ConfigError, match=r"readers.msr.kind.*pcsc, serial, evdev"):
        load_profile(str(bad))
    loop = tmp_path / "loop.toml"
    loop.write_text(f'extends = "{loop}"\n')
    with pytest.raises(ConfigError, match="loop"):
        load_profile(str(loop))


def test_every_relative_path_is_taken_from_the_files_folder_whatever_the_cwd(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """#22.2: `profile = "./profile.toml"` run from / said "profile.toml: terminal
    profile not found"; every path key is read from the file's folder instead."""
    folder = tmp_path / "etc"
    folder.mkdir()
    (folder / "profiles").mkdir()
    (folder / "profiles" / "base.toml").write_text(
        'description = "base"\n[readers.msr]\nkind = "serial"\ndevice = "/dev/x"\n')
    # A relative `extends` is taken from the folder of the profile that names it.
    (folder / "profile.toml").write_text('extends = "profiles/base.toml"\n'
                                         'description = "local"\n')
    cfg_file = write(folder, GOOD.replace('profile = "sim"', 'profile = "./profile.toml"'))
    for cwd in (Path("/"), tmp_path):
        monkeypatch.chdir(cwd)
        for given in (cfg_file, Path("etc/agent.toml")):
            if not given.is_absolute() and cwd != tmp_path:
                continue
            cfg = load_config(given)
            assert cfg.profile.description == "local"
            assert [r.name for r in cfg.profile.readers] == ["msr"]
            assert cfg.profile.source == str(folder / "profile.toml")
            # Absolute even when the file was named relatively: the daemon may chdir.
            assert cfg.state_dir == folder / "state"
            assert cfg.socket_path == folder / "run" / "agent.sock"
            assert cfg.pan_key_file == folder / "pan_key"
            assert cfg.ca_file == folder / "ca.pem"
            assert cfg.cert_file == folder / "cert.pem"
            assert cfg.key_file == folder / "key.pem"
            assert cfg.rules_keys_dir == folder / "rules-keys"
            assert len(cfg.read_pan_key()) == 32


def test_a_relative_profile_path_that_is_missing_names_the_full_path(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg_file = write(tmp_path, GOOD.replace('profile = "sim"', 'profile = "./nope.toml"'))
    monkeypatch.chdir("/")
    with pytest.raises(ConfigError, match=f"{tmp_path}/nope.toml: terminal profile not found"):
        load_config(cfg_file)
