"""``clubterm card read`` against the isolated pcscd and a virtual card."""

import argparse
import json
import os

import pytest

from agent.carddata import tokens
from agent.cli.card_read import card_read_command
from hw_sim import cards
from provisioning.tomlwrite import dump_toml

PAN_KEY = bytes(range(32))


def _config(tmp_path, with_key=True):
    profile = tmp_path / "bench.toml"
    profile.write_text('description = "test"\n[readers.chip]\nkind = "pcsc"\n'
                       'reader = "Virtual PCD 00 00"\n[readers.msr]\nkind = "serial"\n'
                       f'device = "{tmp_path}/no-such-port"\n')
    data = {"terminal": {"id": "t1", "merchant_id": "m1", "club_id": "club",
                         "profile": str(profile)},
            "paths": {"state_dir": str(tmp_path)}}
    if with_key:
        key = tmp_path / "pan_key"
        key.write_bytes(PAN_KEY.hex().encode())
        os.chmod(key, 0o600)
        data["secrets"] = {"pan_key_file": str(key)}
    cfg = tmp_path / "agent.toml"
    cfg.write_text(dump_toml(data))
    return cfg


def _args(cfg, **kw):
    return argparse.Namespace(config=str(cfg), log_level=None, reader=kw.get("reader"),
                              timeout=kw.get("timeout", 10.0), json=kw.get("json", True))


@pytest.mark.needs_pcscd
def test_card_read_prints_masked_report(pcscd, tmp_path, capsys):
    session = pcscd.insert(cards.visa_contact())
    try:
        assert card_read_command(_args(_config(tmp_path), reader="chip")) == 0
    finally:
        session.remove()
        pcscd.wait_card_state(present=False)
    out = capsys.readouterr().out
    report = json.loads(out)
    assert report["masked"] == "476173******0119" and report["expiry"] == "12/28"
    assert report["token"] == tokens.pan_token(PAN_KEY, "4761739001010119")
    assert report["token_kind"] == "pan" and report["apdus"] > 3
    assert "4761739001010119" not in out


@pytest.mark.needs_pcscd
def test_card_read_without_pan_key_reads_but_gives_no_token(pcscd, tmp_path, capsys):
    session = pcscd.insert(cards.mastercard())
    try:
        assert card_read_command(_args(_config(tmp_path, with_key=False), json=False)) == 0
    finally:
        session.remove()
        pcscd.wait_card_state(present=False)
    out = capsys.readouterr().out
    assert "555555******4444" in out and "pan:" not in out


@pytest.mark.needs_pcscd
def test_card_read_failed_read_is_exit_1(pcscd, tmp_path, capsys):
    session = pcscd.insert(cards.removed_mid_read())
    try:
        assert card_read_command(_args(_config(tmp_path), reader="chip")) == 1
    finally:
        session.remove()
        pcscd.wait_card_state(present=False)
    assert "read again" in capsys.readouterr().err


def test_card_read_timeout_names_reader_states(tmp_path, capsys):
    assert card_read_command(_args(_config(tmp_path), reader="msr", timeout=0.5)) == 1
    err = capsys.readouterr().err
    assert "no card or code within 0.5 s" in err and "msr: " in err


@pytest.mark.needs_pcscd
def test_clubterm_card_read_command_line(pcscd, tmp_path):
    import subprocess
    import sys

    session = pcscd.insert(cards.nfc_club())
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "agent", "--config", str(_config(tmp_path)), "card", "read",
             "--reader", "chip", "--timeout", "15"],
            capture_output=True, text=True, env=pcscd.env, timeout=60)
    finally:
        session.remove()
        pcscd.wait_card_state(present=False)
    assert proc.returncode == 0, proc.stderr
    assert "04A2241A3C5E80" in proc.stdout and "nfc" in proc.stdout
    assert "Club member card" in proc.stdout
