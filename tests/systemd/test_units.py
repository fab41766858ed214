"""The systemd units, sysusers and udev rules: systemd's own tools accept them."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from agent.config import list_profiles, load_profile

SYSTEMD = Path(__file__).resolve().parents[2] / "systemd"
UNITS = ("clubterm.service", "clubterm-tui@.service")

needs_systemd = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                                   reason="systemd-analyze is not installed (apt install systemd)")


def _staged(tmp_path: Path) -> Path:
    """The units with ExecStart pointing at an executable that exists here.

    ``systemd-analyze verify`` refuses a unit whose binary is missing, and
    /usr/bin/clubterm exists only once the package is installed.
    """
    for name in UNITS:
        text = (SYSTEMD / name).read_text().replace("/usr/bin/clubterm", "/bin/true")
        (tmp_path / name).write_text(text)
    return tmp_path


@needs_systemd
def test_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    staged = _staged(tmp_path)
    for name in (*UNITS, "clubterm-tui@tty1.service"):
        out = subprocess.run(["systemd-analyze", "verify", f"./{name}"], cwd=staged,
                             capture_output=True, text=True)
        # verify also returns 0 on unknown keys; it only warns. Any output is a finding.
        assert out.returncode == 0 and not out.stderr.strip() and not out.stdout.strip(), \
            f"{name}: {out.stdout}{out.stderr}"


@needs_systemd
def test_agent_unit_exposure_is_low(tmp_path: Path) -> None:
    staged = _staged(tmp_path)
    out = subprocess.run(["systemd-analyze", "security", "--offline=true", "./clubterm.service"],
                         cwd=staged, capture_output=True, text=True)
    match = re.search(r"Overall exposure level for clubterm\.service: ([0-9.]+)", out.stdout)
    assert match, out.stdout + out.stderr
    assert float(match.group(1)) <= 2.0


def test_agent_unit_has_the_required_sandbox() -> None:
    text = (SYSTEMD / "clubterm.service").read_text()
    for line in ("Type=notify", "User=clubterm", "ProtectSystem=strict", "StateDirectory=clubterm",
                 "ConfigurationDirectory=clubterm", "RuntimeDirectory=clubterm",
                 "NoNewPrivileges=yes", "PrivateTmp=yes", "DevicePolicy=closed",
                 "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6", "ExecReload=/bin/kill -HUP"):
        assert any(ln.startswith(line) for ln in text.splitlines()), line
    assert re.search(r"^WatchdogSec=\d+", text, re.M)


def test_device_allow_covers_every_shipped_profile() -> None:
    """Each reader a shipped profile names is reachable inside the sandbox."""
    allowed = re.findall(r"^DeviceAllow=(\S+)", (SYSTEMD / "clubterm.service").read_text(), re.M)
    for name in list_profiles():
        for reader in load_profile(name).readers:
            if reader.kind == "serial":
                assert {"char-ttyUSB", "char-ttyACM", "char-ttyS"} <= set(allowed)
            elif reader.kind == "evdev":
                assert "char-input" in allowed


@needs_systemd
def test_sysusers_creates_the_users(tmp_path: Path) -> None:
    if shutil.which("systemd-sysusers") is None:
        pytest.skip("systemd-sysusers is not installed")
    (tmp_path / "etc").mkdir()
    subprocess.run(["systemd-sysusers", f"--root={tmp_path}",
                    str(SYSTEMD / "sysusers.d" / "clubterm.conf")], check=True,
                   capture_output=True)
    group = (tmp_path / "etc" / "group").read_text()
    assert re.search(r"^clubterm:x:\d+:clubterm-ui$", group, re.M)
    assert "clubterm-ui:" in (tmp_path / "etc" / "passwd").read_text()


_UDEV_PAIR = re.compile(r'^(?:[A-Z]+(?:\{[A-Za-z_]+\})?)(?:==|!=|\+=|=|:=)"[^"]*"$')


def test_udev_rules_are_well_formed_and_cover_the_readers() -> None:
    text = (SYSTEMD / "udev" / "60-clubterm.rules").read_text()
    rules = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    for rule in rules:
        for pair in (p.strip() for p in rule.split(", ")):
            assert _UDEV_PAIR.match(pair), f"bad udev key/value {pair!r} in {rule!r}"
        assert 'GROUP="clubterm"' in rule
    for needle in ('ATTR{idVendor}=="072f", ATTR{idProduct}=="2200"', 'ATTRS{idVendor}=="0403"',
                   'ATTRS{idVendor}=="067b"', 'SYMLINK+="clubterm-msr"',
                   'ATTRS{idVendor}=="0801"', 'ENV{ID_INPUT_KEYBOARD}=="1"'):
        assert needle in text, needle
    for name in list_profiles():
        for rule_file in load_profile(name).udev_rules:
            assert (SYSTEMD / "udev" / rule_file).exists()


def test_the_agent_unit_waits_for_its_configuration_and_never_gives_up() -> None:
    """Skipped (not failed) before enrolment; a crash loop never ends in 'failed'."""
    text = (SYSTEMD / "clubterm.service").read_text()
    assert re.search(r"^ConditionPathExists=/etc/clubterm/agent\.toml$", text, re.M)
    assert re.search(r"^StartLimitIntervalSec=0$", text, re.M)
    assert re.search(r"^Restart=on-failure$", text, re.M)
    assert re.search(r"^ReadOnlyPaths=/etc/clubterm$", text, re.M)


def test_the_tui_draws_on_its_tty() -> None:
    """Textual writes the screen to stderr: it must go to the tty, not the journal."""
    text = (SYSTEMD / "clubterm-tui@.service").read_text()
    assert re.search(r"^StandardError=tty$", text, re.M)


def test_tmpfiles_makes_the_config_folder_before_the_secrets_folder() -> None:
    lines = [ln.split() for ln in (SYSTEMD / "tmpfiles.d" / "clubterm.conf").read_text()
             .splitlines() if ln.strip() and not ln.startswith("#")]
    assert lines[0][:5] == ["d", "/etc/clubterm", "0750", "root", "clubterm"]
    assert lines[1][:5] == ["d", "/etc/clubterm/secrets", "0700", "clubterm", "clubterm"]
