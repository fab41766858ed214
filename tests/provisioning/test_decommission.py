"""Decommissioning: refuse with unsent events, export them when forced, then wipe."""

from __future__ import annotations

import json
import sqlite3
import stat

import pytest

from agent.config import load_config
from agent.errors import ProvisioningError
from provisioning.decommission import decommission

from .conftest import Box, Club, add_events
from .test_enrolment import run_enrol


def enrolled(club: Club, box: Box):
    run_enrol(club, box, club.service.create_code("T-0001", "M-7"))
    return load_config(box.config)


def test_refuses_while_events_are_pending(club: Club, box: Box) -> None:
    cfg = enrolled(club, box)
    add_events(cfg, ["acked", "sent", "pending"])
    before = box.snapshot()
    with pytest.raises(ProvisioningError, match="2 event"):
        decommission(cfg)
    assert box.snapshot() == before


def test_force_exports_then_wipes(club: Club, box: Box, tmp_path) -> None:
    cfg = enrolled(club, box)
    add_events(cfg, ["acked", "sent", "pending"])
    cfg.db_path.with_name("clubterm.db-wal").write_bytes(b"wal")
    export = tmp_path / "handover.jsonl"
    result = decommission(cfg, force=True, export=export)
    lines = [json.loads(line) for line in export.read_text().splitlines()]
    assert [e["seq"] for e in lines] == [2, 3]
    assert lines[0]["amount"] == 2000 and lines[0]["type"] == "expense"
    assert stat.S_IMODE(export.stat().st_mode) == 0o600
    assert result.pending == 2 and result.exported_to == export
    for gone in (cfg.key_file, cfg.pan_key_file, cfg.db_path,
                 cfg.db_path.with_name("clubterm.db-wal"), cfg.path, cfg.cert_file.parent):
        assert not gone.exists(), gone
    assert not (box.state_dir / "identity").exists()


def test_nothing_pending_wipes_without_force(club: Club, box: Box) -> None:
    cfg = enrolled(club, box)
    add_events(cfg, ["acked"])
    decommission(cfg)
    assert not cfg.db_path.exists() and not cfg.key_file.exists() and not box.config.exists()


def test_no_database_at_all(club: Club, box: Box) -> None:
    cfg = enrolled(club, box)
    decommission(cfg)
    assert not cfg.pan_key_file.exists()


def test_unknown_queue_schema_is_never_wiped(club: Club, box: Box) -> None:
    cfg = enrolled(club, box)
    con = sqlite3.connect(cfg.db_path)
    con.execute("CREATE TABLE outbox (x)")
    con.commit()
    con.close()
    for force in (False, True):
        with pytest.raises(ProvisioningError, match="cannot tell"):
            decommission(cfg, force=force)
    assert cfg.db_path.exists() and cfg.key_file.exists()


def test_export_inside_the_state_dir_is_refused(club: Club, box: Box) -> None:
    cfg = enrolled(club, box)
    add_events(cfg, ["pending"])
    with pytest.raises(ProvisioningError, match="inside the state folder"):
        decommission(cfg, force=True, export=cfg.state_dir / "x.jsonl")
    assert cfg.key_file.exists()
