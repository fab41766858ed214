"""hw_sim's vpcd client speaks vpcd's framing; its cards behave as documented."""

import socket
import struct
import subprocess
import sys

import pytest

from hw_sim import cards
from hw_sim.__main__ import main
from hw_sim.vpcd import VpcdSession


def _frame(payload: bytes) -> bytes:
    return struct.pack(">H", len(payload)) + payload


def _read_frame(conn: socket.socket) -> bytes:
    head = conn.recv(2, socket.MSG_WAITALL)
    (size,) = struct.unpack(">H", head)
    return conn.recv(size, socket.MSG_WAITALL)


@pytest.fixture
def fake_vpcd():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    yield server
    server.close()


def test_control_messages_and_apdu_exchange(fake_vpcd):
    port = fake_vpcd.getsockname()[1]
    session = VpcdSession(cards.nfc_club(), port=port).insert()
    conn, _ = fake_vpcd.accept()
    with conn:
        conn.sendall(_frame(b"\x01"))                    # power on: no answer
        conn.sendall(_frame(b"\x04"))                    # get ATR
        assert _read_frame(conn) == cards.ATR_NTAG
        conn.sendall(_frame(bytes.fromhex("FFCA000000")))
        assert _read_frame(conn) == bytes.fromhex("04A2241A3C5E809000")
        conn.sendall(_frame(b"\x02"))                    # reset: no answer
        conn.sendall(_frame(bytes.fromhex("FFB0000304")))
        assert _read_frame(conn) == bytes.fromhex("E11012009000")
    session.closed.wait(2)
    session.remove()
    assert session.apdus == 2


def test_card_vanishing_closes_the_connection(fake_vpcd):
    port = fake_vpcd.getsockname()[1]
    session = VpcdSession(cards.removed_mid_read(), port=port).insert()
    conn, _ = fake_vpcd.accept()
    with conn:
        conn.sendall(_frame(bytes.fromhex("00A404000E325041592E5359532E444446303100")))
        assert _read_frame(conn)[-2:] == b"\x90\x00"
        conn.sendall(_frame(bytes.fromhex("00A4040007A000000003101000")))
        assert _read_frame(conn)[-2:] == b"\x90\x00"
        conn.sendall(_frame(bytes.fromhex("80A8000002830000")))
        assert conn.recv(2) == b""                        # gone without an answer
    assert session.closed.wait(2)


def test_visa_refuses_gpo_without_ttq():
    card = cards.visa_contactless()
    card.answer(bytes.fromhex("00A4040007A000000003101000"))
    pdol_len = cards.dol_length(cards.VISA_PDOL)
    no_ttq = bytes([0x83, pdol_len]) + bytes(pdol_len)
    assert card.answer(bytes.fromhex("80A80000") + bytes([len(no_ttq)]) + no_ttq + b"\x00") \
        == cards.SW_CONDITIONS
    assert card.answer(bytes.fromhex("80A8000002830000")) == cards.SW_WRONG_LENGTH


def test_cards_registry_is_consistent():
    pans = {c.pan for c in cards.CARDS.values() if c.pan}
    assert pans == {"4111111111111111", "5555555555554444", "4761739001010119"}
    for info in cards.CARDS.values():
        assert info.make().atr


def test_cli_list_cards(capsys):
    assert main(["list-cards"]) == 0
    out = capsys.readouterr().out
    assert "visa-contactless" in out and "4111111111111111" in out and "nfc-club" in out


def test_cli_tap_without_vpcd_is_a_clear_error():
    port = socket.socket()
    port.bind(("127.0.0.1", 0))
    free = port.getsockname()[1]
    port.close()
    proc = subprocess.run([sys.executable, "-m", "hw_sim", "tap", "--card", "mastercard",
                           "--port", str(free), "--hold", "0"], capture_output=True, text=True)
    assert proc.returncode == 1 and "cannot reach vpcd" in proc.stderr


@pytest.mark.needs_pcscd
def test_cli_tap_reaches_a_real_reader(pcscd):
    from agent.drivers.pcsc import PcscReader
    from tests.agent.drivers.collector import EventLog

    log = EventLog()
    reader = PcscReader("chip", "Virtual PCD*", bytes(32))
    reader.start(log)
    try:
        log.wait(lambda e: getattr(e, "detail", "").startswith("Virtual PCD"))
        proc = subprocess.run([sys.executable, "-m", "hw_sim", "tap", "--card", "nfc-club",
                               "--port", str(pcscd.port), "--hold", "1.5"],
                              capture_output=True, text=True, timeout=30)
        assert proc.returncode == 0, proc.stderr
        assert log.card().token == "nfc:04A2241A3C5E80"
    finally:
        reader.stop()
        pcscd.wait_card_state(present=False)
