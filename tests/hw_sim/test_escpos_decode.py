"""The ESC/POS decoder on exact bytes, and on a stream cut anywhere (the simulated
printer parses as bytes arrive)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hw_sim.escpos_decode import Cut, DrawerPulse, QrCode, StatusQuery, TextLine, commands, decode

STREAM = (b"\x1b@\x1bt\x10\x1bE\x01Caf\xe9\n\x1bE\x00"   # cp1252, bold
          b"\x1bp\x00\x19\xfa"                              # drawer pin 2
          b"\x1d(k\x04\x001A2\x00"                          # QR model
          b"\x1d(k\x07\x001P0abcd"                          # QR store "abcd"
          b"\x1d(k\x03\x001Q0"                              # QR print
          b"\x1dv0\x00\x01\x00\x02\x00\xff\x00"             # raster 8 x 2
          b"\x10\x04\x01"                                   # DLE EOT 1
          b"\x1bd\x06\x1dV\x00")                            # feed, cut


def test_decodes_exact_bytes() -> None:
    d = decode(STREAM)
    assert d.unknown == []
    assert d.elements[0] == TextLine("Café", bold=True)
    assert [e for e in d.elements if not isinstance(e, TextLine)][:3] == [
        DrawerPulse(2, 50, 500), QrCode("abcd"), d.images[0]]
    assert d.images[0].size == (8, 2)
    assert d.images[0].image.getpixel((0, 0)) == 0 and d.images[0].image.getpixel((0, 1)) == 255
    assert StatusQuery(1) in d.elements and d.elements[-1] == Cut()


def test_unknown_commands_and_raw_controls_are_reported() -> None:
    d = decode(b"ok\x07\x1b\x99x\n")
    assert d.unknown == [b"\x07", b"\x1b\x99"]


@given(st.integers(min_value=0, max_value=len(STREAM)))
def test_a_cut_stream_parses_up_to_the_last_whole_command(cut: int) -> None:
    """Commands are only yielded whole (a text run may end at the cut: text splits)."""
    whole = {end for kind, _cmd, end in commands(STREAM) if kind != "text"}
    for kind, _cmd, end in commands(STREAM[:cut]):
        assert end <= cut
        assert kind == "text" or end in whole


def test_receipt_png_defaults_to_the_running_demos_last_receipt(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from hw_sim import __main__ as cli

    monkeypatch.setenv("CLUBTERM_SIM_DIR", str(tmp_path))
    monkeypatch.setattr(cli, "DEFAULT_DIR", tmp_path)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["receipt-png"]) == 1  # nothing printed yet: says so
    assert "no receipt" in capsys.readouterr().err
    (tmp_path / "printer").mkdir()
    (tmp_path / "printer" / "receipt-0001.bin").write_bytes(b"\x1b@first\n")
    (tmp_path / "printer" / "receipt-0002.bin").write_bytes(b"\x1b@second\n\x1dV\x00")
    assert cli.main(["receipt-png", "last.png"]) == 0
    out = capsys.readouterr().out
    assert "second" in out and "first" not in out and (tmp_path / "last.png").exists()
    assert cli.main(["receipt-png"]) == 0 and (tmp_path / "receipt.png").exists()
