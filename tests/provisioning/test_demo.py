"""``clubterm provision demo``: the simulated setup a technician tries before enrolment."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from agent.cli import main
from agent.config import load_config
from agent.errors import ProvisioningError
from agent.offline_queue import Store
from provisioning.demo import write_demo
from provisioning.state import Owner


def _demo(tmp_path: Path, **kw: object) -> Path:
    return write_demo(config=tmp_path / "etc" / "agent.toml", state_dir=tmp_path / "state",
                      secrets_dir=tmp_path / "etc" / "secrets", socket=tmp_path / "agent.sock",
                      owner=Owner(), **kw)  # type: ignore[arg-type]


def test_the_demo_loads_with_its_secrets_checked_and_a_seeded_store(tmp_path: Path) -> None:
    cfg = load_config(_demo(tmp_path))  # check_secrets: pan_key 0600
    assert cfg.broker_url is None and cfg.state_dir == tmp_path / "state"
    assert cfg.pan_key_file is not None
    assert stat.S_IMODE(cfg.pan_key_file.stat().st_mode) == 0o600
    store = Store.open(cfg.db_path, cfg.terminal_id, cfg.merchant_id, readonly=True)
    try:
        assert store.members.members_version() >= 1
    finally:
        store.close()
    # The club's private signing key was only used to sign the bundle: it is gone.
    assert not list(tmp_path.rglob("*.pem"))


def test_the_demo_never_replaces_an_existing_configuration(tmp_path: Path) -> None:
    config = tmp_path / "etc" / "agent.toml"
    config.parent.mkdir()
    config.write_text("# an enrolled box\n")
    with pytest.raises(ProvisioningError, match="already exists"):
        _demo(tmp_path)
    assert config.read_text() == "# an enrolled box\n"
    assert not (tmp_path / "state").exists()


def test_a_broker_that_is_not_mqtt_is_refused_before_anything_is_written(
        tmp_path: Path) -> None:
    with pytest.raises(ProvisioningError, match="mqtt://"):
        _demo(tmp_path, broker_url="http://127.0.0.1:1883")
    assert not (tmp_path / "etc").exists()


def test_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--config", str(tmp_path / "agent.toml"), "provision", "demo",
            "--state-dir", str(tmp_path / "s"), "--secrets-dir", str(tmp_path / "k"),
            "--socket", str(tmp_path / "a.sock"), "--broker", "mqtt://127.0.0.1:1883"]
    assert main(args) == 0
    assert "systemctl start clubterm" in capsys.readouterr().out
    assert load_config(tmp_path / "agent.toml").broker_url == "mqtt://127.0.0.1:1883"
    assert main(args) == 2
    assert "already exists" in capsys.readouterr().err
