"""`clubterm queue status | list | export` against a real store file."""

import json
from pathlib import Path

import pytest

from agent.cli import main
from agent.offline_queue import Store
from provisioning.tomlwrite import dump_toml

from .helpers import AT, sale_body


@pytest.fixture
def filled(tmp_path: Path) -> Path:
    path = tmp_path / "state" / "clubterm.db"
    store = Store.open(path, "T-0001", "M-7")
    a = store.append("sale", sale_body(), at=AT, staff_id="s-1", offline=True)
    b = store.append("expense", {"amount": 1200, "category": "milk", "note": ""}, at=AT,
                     staff_id="s-1", offline=True)
    store.append("sale", sale_body(), at=AT, staff_id="s-1", offline=True)
    store.apply_ack([a.id], [(b.id, "unknown category")], applied_seq=2)
    store.close()
    return path


def test_status(filled: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["queue", "status", "--db", str(filled)]) == 0
    out = capsys.readouterr().out
    assert "waiting:          1" in out and "rejected:         1" in out
    assert "sale           1" in out and "2026-11-24T10:00:00.000+00:00" in out
    assert main(["queue", "status", "--db", str(filled), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["pending"] == 1 and info["rejected"] == 1 and info["by_type"] == {"sale": 1}
    assert info["last_seq"] == 3 and info["club_applied_seq"] == 2


def test_list_rejected(filled: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["queue", "list", "--state", "rejected", "--db", str(filled)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["SEQ", "ID", "TYPE", "AT", "STATE", "REASON"]
    assert len(lines) == 2 and "expense" in lines[1] and lines[1].endswith("unknown category")
    assert main(["queue", "list", "--json", "--db", str(filled)]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["state"] for r in rows] == ["accepted", "rejected", "pending"]


def test_export_json_lines(filled: Path, tmp_path: Path,
                          capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "export.jsonl"
    assert main(["queue", "export", "--db", str(filled), "--out", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["seq"] for r in rows] == [1, 2, 3]
    assert rows[0]["event"]["type"] == "sale" and rows[0]["event"]["seq"] == 1
    assert main(["queue", "export", "--state", "pending", "--db", str(filled)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(x)["seq"] for x in lines] == [3]


def test_store_from_the_configuration(filled: Path, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(dump_toml({
        "terminal": {"id": "T-0001", "merchant_id": "M-7", "club_id": "acme",
                     "profile": "sim"},
        "paths": {"state_dir": str(filled.parent)},
    }))
    assert main(["--config", str(config), "queue", "status"]) == 0
    assert "waiting:          1" in capsys.readouterr().out


def test_a_missing_store_is_a_clear_error(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["queue", "status", "--db", str(tmp_path / "nope.db")]) == 2
    assert "there is no store at" in capsys.readouterr().err
