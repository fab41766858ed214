"""``clubterm card read --pcsc NAME``: a technician reads a card before enrolment
(#17 item 4), against the isolated pcscd and a virtual card."""

import argparse
import json
import subprocess
import sys

import pytest

from agent.carddata import tokens
from agent.cli import build_parser
from agent.cli.card_read import card_read_command
from agent.errors import ConfigError
from hw_sim import cards
from tests.agent.drivers.test_card_read import PAN_KEY, _config

READER = "Virtual PCD 00 00"


def _args(config, pcsc, **kw):
    return argparse.Namespace(config=str(config), log_level=None, reader=None, pcsc=pcsc,
                              timeout=kw.get("timeout", 10.0), json=kw.get("json", True))


@pytest.mark.needs_pcscd
def test_no_configuration_at_all_gives_masked_number_and_kind_no_token(pcscd, tmp_path,
                                                                       capsys):
    missing = tmp_path / "not-enrolled" / "agent.toml"
    session = pcscd.insert(cards.visa_contact())
    try:
        assert card_read_command(_args(missing, "Virtual PCD*")) == 0
    finally:
        session.remove()
        pcscd.wait_card_state(present=False)
    out = capsys.readouterr().out
    report = json.loads(out)
    assert report["masked"] == "476173******0119" and report["token_kind"] == "pan"
    assert report["token"] is None
    assert report["token_note"].startswith("no token computed: needs a provisioned pan_key")
    assert "not enrolled" in report["token_note"]
    assert "4761739001010119" not in out
    assert not missing.exists()  # nothing was created for it


@pytest.mark.needs_pcscd
def test_with_an_enrolled_pan_key_the_token_is_computed(pcscd, tmp_path, capsys):
    session = pcscd.insert(cards.visa_contact())
    try:
        assert card_read_command(_args(_config(tmp_path), READER)) == 0
    finally:
        session.remove()
        pcscd.wait_card_state(present=False)
    report = json.loads(capsys.readouterr().out)
    assert report["token"] == tokens.pan_token(PAN_KEY, "4761739001010119")


@pytest.mark.needs_pcscd
def test_command_line_before_enrolment(pcscd, tmp_path):
    session = pcscd.insert(cards.mastercard())
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "agent", "--config", str(tmp_path / "none.toml"), "card",
             "read", "--pcsc", READER, "--timeout", "15"],
            capture_output=True, text=True, env=pcscd.env, timeout=60)
    finally:
        session.remove()
        pcscd.wait_card_state(present=False)
    assert proc.returncode == 0, proc.stderr
    assert "555555******4444" in proc.stdout and "5555555555554444" not in proc.stdout
    assert "no token computed" in proc.stdout and "pan:" not in proc.stdout
    print(f"figure: card read --pcsc before enrolment: {proc.stdout.count(chr(10))} lines, "
          "masked number and kind, no token")


@pytest.mark.needs_pcscd
def test_a_reader_name_that_matches_nothing_times_out_clearly(pcscd, tmp_path, capsys):
    assert card_read_command(_args(tmp_path / "none.toml", "No Such Reader*",
                                   timeout=1.0)) == 1
    assert "no card or code within 1 s" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["", "   ", "bad\x1b[2Jname", "x" * 500])
def test_a_hostile_reader_name_is_refused(tmp_path, name):
    with pytest.raises(ConfigError, match="--pcsc needs a PC/SC reader name"):
        card_read_command(_args(tmp_path / "none.toml", name))


def test_reader_and_pcsc_cannot_both_be_given(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["card", "read", "--reader", "chip", "--pcsc", READER])
    assert "not allowed with argument" in capsys.readouterr().err


@pytest.mark.needs_pcscd
@pytest.mark.parametrize("broken", ["garbage", "directory"])
def test_a_half_installed_machine_still_reads_masked_only(pcscd, tmp_path, capsys, broken):
    """A machine mid-installation (a broken agent.toml, or a folder where it should be)
    still gives the technician the masked number and kind of a contactless card."""
    config = tmp_path / "agent.toml"
    if broken == "garbage":
        config.write_bytes(b"[terminal\n\xff\xfe pan_key = \n")
    else:
        config.mkdir()
    session = pcscd.insert(cards.visa_contactless())
    try:
        assert card_read_command(_args(config, "Virtual PCD*")) == 0
    finally:
        session.remove()
        pcscd.wait_card_state(present=False)
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert report["masked"] == "411111******1111" and report["token"] is None
    assert "not enrolled" in report["token_note"]
    assert "4111111111111111" not in captured.out + captured.err
    print(f"figure: {broken} config: {report['token_note'][:90]}")
