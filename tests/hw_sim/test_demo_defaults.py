"""`hw_sim tap/swipe/scan` find the running demo without --dir/--port (#15 item 17)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import hw_sim.__main__ as cli


@pytest.fixture
def demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    sim = tmp_path / "sim"
    sim.mkdir()
    pointer = tmp_path / "demo.current"
    pointer.write_text(f"sim_dir={sim}\nvpcd_port=35999\ndemo={tmp_path}\n")
    monkeypatch.setattr(cli, "DEMO_POINTER", pointer)
    monkeypatch.delenv("CLUBTERM_SIM_DIR", raising=False)
    return sim


def test_scan_goes_to_the_running_demo_by_default(demo: Path) -> None:
    # Seen: "No such file or directory" without --dir.
    os.mkfifo(demo / "scanner.events")
    fd = os.open(demo / "scanner.events", os.O_RDONLY | os.O_NONBLOCK)
    try:
        assert cli.main(["scan", "CLUB-1002"]) == 0
        assert len(os.read(fd, 65536)) > 0
    finally:
        os.close(fd)


def test_tap_uses_the_demos_port_and_a_stale_pointer_is_ignored(demo: Path) -> None:
    assert cli.default_port() == 35999 and cli.default_dir() == demo
    demo.rmdir()                               # the demo ended without cleaning up
    assert cli.default_port() == 35963 and cli.default_dir() == cli.DEFAULT_DIR


def test_list_cards_names_members_and_staff(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["list-cards"]) == 0
    out = capsys.readouterr().out
    assert "Sara K. (m-1001)" in out and "staff 1 Mina Rahimi" in out
    assert "CLUB-1002 Reza M." in out
