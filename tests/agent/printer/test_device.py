"""The printer's real-time status (DLE EOT) by table, the transport's error mapping,
and the profile's ``[printer]`` table."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from agent.errors import ConfigError
from agent.printer.device import PrinterError, network_transport, parse_status, query_status
from agent.terminal_profile import load_profile
from hw_sim.printer import SimPrinter


@pytest.mark.parametrize(("printer", "cause", "paper", "state"), [
    (0x12, 0x12, 0x12, "ready"),
    (0x12, 0x12, 0x1E, "paper_low"),       # near-end sensor bits 2-3
    (0x1A, 0x32, 0x72, "paper_out"),       # offline, stopped for paper end, paper end
    (0x1A, 0x16, 0x12, "cover_open"),      # offline, cover open
    (0x1A, 0x12, 0x12, "offline"),
])
def test_status_bytes(printer: int, cause: int, paper: int, state: str) -> None:
    assert parse_status(printer, cause, paper).state == state


@pytest.mark.parametrize("state", ["ok", "paper_out", "paper_low", "cover_open"])
def test_sim_printer_answers_what_the_parser_reads(state: str) -> None:
    with SimPrinter(state=state) as sim:
        transport = network_transport(sim.address, 1.0)
        transport.open()
        try:
            got = query_status(transport).state
        finally:
            transport.close()
    assert got == {"ok": "ready"}.get(state, state)


def test_refused_and_hanging_printers_are_printer_errors() -> None:
    spare = socket.socket()
    spare.bind(("127.0.0.1", 0))
    port = spare.getsockname()[1]
    spare.close()
    transport = network_transport(f"127.0.0.1:{port}", 0.5)
    with pytest.raises(PrinterError) as refused:
        transport.open()
    assert refused.value.reason == "refused"
    with SimPrinter(state="hang") as sim:
        transport = network_transport(sim.address, 0.3)
        transport.open()
        with pytest.raises(PrinterError) as hung:
            query_status(transport)
        transport.close()
    assert hung.value.reason == "timeout"


def _profile(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "p.toml"
    path.write_text('description = "x"\n[printer]\n' + body)
    return path


def test_printer_table_parsed_and_extended(tmp_path: Path) -> None:
    base = _profile(tmp_path, 'kind = "usb"\naddress = "04b8:0202"\ncolumns = 48\n')
    child = tmp_path / "site.toml"
    child.write_text(f'extends = "{base}"\n[printer]\nshop_name = "Café Rose"\n'
                     'drawer_pin = 0\n')
    spec = load_profile(str(child)).printer
    assert (spec.kind, spec.address, spec.columns, spec.shop_name, spec.drawer_pin) == \
        ("usb", "04b8:0202", 48, "Café Rose", None)
    assert load_profile("sim").printer.kind == "none"


@pytest.mark.parametrize(("body", "key"), [
    ('kind = "network"\n', "printer.address"),
    ('kind = "usb"\naddress = "epson"\n', "printer.address"),
    ('kind = "network"\naddress = "h:99999"\n', "printer.address"),
    ('columns = 40\n', "printer.columns"),
    ('drawer_pin = 3\n', "printer.drawer_pin"),
    ('code_page = "utf8"\n', "printer.code_page"),
    ('timeout_s = 0\n', "printer.timeout_s"),
    ('timeout_s = true\n', "printer.timeout_s"),
    ('paper = "a4"\n', "printer.paper"),
    ('shop_lines = ["a", "b", "c", "d", "e", "f", "g"]\n', "printer.shop_lines"),
])
def test_bad_printer_settings_name_the_key(tmp_path: Path, body: str, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_profile(str(_profile(tmp_path, body)))
    assert key in str(err.value)


def test_a_missing_serial_printer_is_not_found(tmp_path: Path) -> None:
    from agent.printer.device import serial_transport

    transport = serial_transport(str(tmp_path / "ttyUSB9"), 9600, 0.5)
    with pytest.raises(PrinterError) as err:
        transport.open()
    assert err.value.reason == "not_found" and "not connected" in str(err.value)


def test_a_serial_printer_on_a_pty_prints_answers_and_hangs(tmp_path: Path) -> None:
    """kind = "serial": python-escpos's Serial on the simulated printer's pty."""
    from dataclasses import replace

    from agent.printer.service import ReceiptPrinter
    from hw_sim.printer import PtySimPrinter
    from tests.agent.printer.support import SPEC

    link = tmp_path / "printer.tty"
    with PtySimPrinter(link, gap_s=0.3) as sim:
        printer = ReceiptPrinter(replace(SPEC, kind="serial", address=str(link), timeout_s=0.5),
                                 lambda: None)
        printer.start()
        try:
            sale = {"sale_id": "s-1", "lines": [{"sku": "tea", "qty": 1, "unit_price": 300}],
                    "gross": 300, "payable": 300, "payment": "cash", "currency": "EUR"}
            assert printer.print_sale(sale)
            got = sim.wait_receipts(1)
            assert got and got[0].qr == ["s-1"] and got[0].cuts == 1 and len(got[0].drawer) == 1
            assert "tea" in got[0].text and got[0].unknown == []
            sim.state = "paper_out"
            printer.print_sale(sale)
            deadline = time.monotonic() + 10
            while printer.status()["failed"] < 1 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert printer.status()["state"] == "paper_out"
            sim.state, sim.hang_after = "hang", 0
            started = time.monotonic()
            printer.print_sale(sale)
            while printer.status()["failed"] < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            status = printer.status()
            assert status["state"] == "offline", status
            print(f"figure: serial printer hanging detected in {time.monotonic() - started:.2f} s")
        finally:
            printer.stop()
