"""``clubterm card decode`` through the real entry point: what a technician sees."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from agent.carddata.tokens import pan_token
from agent.cli import main
from agent.cli.card import format_card_report
from provisioning.tomlwrite import dump_toml
from tests.agent.carddata import samples

CONFIG = dump_toml({
    "terminal": {"id": "T-0001", "merchant_id": "M-7", "club_id": "acme", "profile": "sim",
                 "default_country_code": "98"},
    "paths": {"state_dir": "state", "socket": "run/agent.sock"},
    "secrets": {"pan_key_file": "pan_key"},
})


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    # Whatever happened, no full card number reached the screen, grouped or not.
    for pan in samples.PANS:
        for sep in ("", " ", "-"):
            shown = sep.join(pan[i : i + 4] for i in range(0, len(pan), 4))
            assert shown not in out and shown not in err
    return code, out, err


@pytest.fixture(autouse=True)
def no_default_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CLUBTERM_CONFIG", str(tmp_path / "absent.toml"))


@pytest.mark.parametrize("sample", samples.TRACK_SAMPLES, ids=lambda s: s.label)
def test_track_samples(capsys: pytest.CaptureFixture[str],
                       sample: samples.TrackSample) -> None:
    code, out, _ = run(capsys, "card", "decode", "--track", sample.text)
    assert code == 0
    assert f"{sample.pan[:6]}{'*' * (len(sample.pan) - 10)}{sample.pan[-4:]}" in out
    if sample.expiry:
        assert f"{sample.expiry[2:]}/{sample.expiry[:2]}" in out
    if sample.name:
        assert sample.name in out
    assert "token kind" in out and "pan" in out
    assert "needs a provisioned pan_key" in out


@pytest.mark.parametrize("sample", samples.RECORD_SAMPLES, ids=lambda s: s[0])
def test_tlv_samples_with_status_word(capsys: pytest.CaptureFixture[str],
                                      sample: tuple[str, bytes, str, str | None, str | None,
                                                    str | None]) -> None:
    _, record, pan, expiry, _, _ = sample
    hex_text = " ".join(f"{b:02X}" for b in record + b"\x90\x00")
    code, out, _ = run(capsys, "card", "decode", "--tlv", hex_text)
    assert code == 0
    assert pan[:6] in out and pan[-4:] in out
    assert "tags:" in out
    assert "90 00" in out
    if expiry:
        assert f"{expiry[2:]}/{expiry[:2]}" in out


def test_tlv_lists_tags_with_names_and_hides_card_data(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "card", "decode", "--tlv", samples.RECORD_EMV_SFI1.hex())
    assert code == 0
    assert "57 Track 2 Equivalent Data [19 bytes]: 476173******0119" in out
    assert "5F20 Cardholder Name [26 bytes]: [hidden]" in out
    assert "9F1F Track 1 Discretionary Data [16 bytes]: [hidden]" in out
    assert "D2212" not in out.upper() and "1143804400000" not in out


def test_fci_without_card_number(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "card", "decode", "--tlv", samples.SELECT_AID.hex())
    assert code == 0
    assert "no card number" in out
    assert "9F38 PDOL [12 bytes]: 9F66049F02069F37045F2A02" in out
    assert "50 Application Label [11 bytes]: 'VISA CREDIT'" in out


def test_json_output(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "card", "decode", "--json", "--track",
                       samples.T1_MC + samples.T2_MC)
    assert code == 0
    report = json.loads(out)
    assert report["source"] == "track1+track2"
    assert report["masked"] == "555555******4444"
    assert report["expiry"] == "11/28"
    assert report["name"] == "MUSTERMANN/ERIKA MS"
    assert report["service_code"] == "201"
    assert report["token_kind"] == "pan"
    assert report["token"] is None


def test_stdin_is_detected_as_track_or_tlv(capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(samples.T1_VISA + "\r\n" + samples.T2_VISA))
    code, out, _ = run(capsys, "card", "decode", "--json")
    assert code == 0 and json.loads(out)["source"] == "track1+track2"
    monkeypatch.setattr("sys.stdin", io.StringIO(samples.RECORD_VISA.hex() + "\n"))
    code, out, _ = run(capsys, "card", "decode", "--json")
    assert code == 0 and json.loads(out)["source"] == "tlv"


@pytest.mark.parametrize(("argv", "fragment"), [
    (["--track", "garbage"], "no card data"),
    (["--track", "%E?;E?"], "swipe again"),
    (["--track", ";4111111111111112=2512101?"], "check digit"),
    (["--tlv", "zz"], "hex digits"),
    (["--tlv", "5A0"], "odd number"),
    (["--tlv", "7080"], "indefinite"),
    (["--tlv", "4111111111111111"], "bare card number"),
    (["--tlv", "00FF"], "no objects"),
    (["--track", "   "], "no input"),
])
def test_garbage_is_a_clear_error(capsys: pytest.CaptureFixture[str], argv: list[str],
                                  fragment: str) -> None:
    code, out, err = run(capsys, "card", "decode", *argv)
    assert code == 2
    assert err.startswith("clubterm: error: ")
    assert fragment in err
    code, out, err = run(capsys, "card", "decode", "--json", *argv)
    assert code == 2 and fragment in json.loads(out)["error"]


def test_token_when_the_terminal_is_provisioned(capsys: pytest.CaptureFixture[str],
                                                tmp_path: Path) -> None:
    key = os.urandom(32)
    cfg = tmp_path / "agent.toml"
    cfg.write_text(CONFIG)
    (tmp_path / "pan_key").write_bytes(key)
    (tmp_path / "pan_key").chmod(0o600)
    code, out, _ = run(capsys, "--config", str(cfg), "card", "decode", "--json", "--track",
                       samples.T2_VISA)
    assert code == 0
    assert json.loads(out)["token"] == pan_token(key, samples.VISA)
    # A pan_key readable by others is refused: no token, and the note says why.
    (tmp_path / "pan_key").chmod(0o644)
    code, out, _ = run(capsys, "--config", str(cfg), "card", "decode", "--track",
                       samples.T2_VISA)
    assert code == 0
    assert "needs a provisioned pan_key" in out and "chmod 600" in out


def test_format_card_report_shows_extra_keys() -> None:
    text = format_card_report({"source": "pcsc", "reader": "ACS ACR122U 00 00",
                               "masked": "411111******1111", "token_kind": "pan",
                               "token": "pan:" + "0" * 32, "apdus": 7}, False)
    assert "reader" in text and "ACS ACR122U" in text
    assert "apdus" in text and "7" in text
    assert format_card_report({"masked": None}, True) == '{\n  "masked": null\n}'


def test_swipe_into_a_terminal_is_not_echoed(tmp_path: Path) -> None:
    """A wedge reader types into the terminal: the track must not appear on screen."""
    import pty
    import select
    import subprocess
    import sys
    import time

    primary, secondary = pty.openpty()
    env = {**os.environ, "CLUBTERM_CONFIG": str(tmp_path / "absent.toml")}
    proc = subprocess.Popen([sys.executable, "-m", "agent", "card", "decode"],
                            stdin=secondary, stdout=secondary, stderr=secondary, env=env,
                            cwd=Path(__file__).resolve().parents[3])
    os.close(secondary)
    screen = b""
    try:
        # Wait for the prompt, so echo is already off when the "reader" types.
        deadline = time.monotonic() + 20
        while b"Ctrl-D" not in screen and time.monotonic() < deadline:
            if select.select([primary], [], [], 0.5)[0]:
                screen += os.read(primary, 4096)
        os.write(primary, (samples.T1_VISA + "\r" + samples.T2_VISA + "\r").encode() + b"\x04")
        proc.wait(timeout=20)
        while True:
            try:
                chunk = os.read(primary, 4096)
            except OSError:
                break
            if not chunk:
                break
            screen += chunk
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(primary)
    text = screen.decode(errors="replace")
    assert proc.returncode == 0, text
    assert "411111******1111" in text
    assert samples.VISA not in text


@pytest.mark.parametrize("sep", [" ", "-", " - ", "."])
def test_grouped_card_number_in_the_name_is_hidden(capsys: pytest.CaptureFixture[str],
                                                  sep: str) -> None:
    grouped = sep.join(["5555", "5555", "5555", "4444"])
    track = f"%B4111111111111111^{grouped}^25121010000000000000?"
    code, out, _ = run(capsys, "card", "decode", "--track", track)
    assert code == 0 and "[hidden: may hold a card number]" in out
    assert "5555" not in out and "4444" not in out
    code, out, _ = run(capsys, "card", "decode", "--json", "--track", track)
    assert json.loads(out)["name"] == "[hidden: may hold a card number]"


def test_grouped_card_number_in_a_tlv_text_tag_is_hidden(
        capsys: pytest.CaptureFixture[str]) -> None:
    record = samples.tlv("70", samples.tlv("5A", "4761739001010119")
                         + samples.tlv("5F24", "271231")
                         + samples.tlv("5F20", b"5555 5555 5555 4444"))
    code, out, _ = run(capsys, "card", "decode", "--tlv", record.hex())
    assert code == 0 and "476173******0119" in out
    assert "5555 5555" not in out and "4444" not in out.replace("476173******0119", "")
