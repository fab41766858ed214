"""The ISO 7816-4 channel: exact bytes written, 61xx / 6Cxx, T=0 Le handling."""

import pytest

from agent.drivers.apdu import CardChannel, CardRemoved, ReplayTransport, build_apdu


def test_build_apdu_cases():
    assert build_apdu(0, 0xB2, 1, 0x0C) == bytes.fromhex("00B2010C")
    assert build_apdu(0, 0xB2, 1, 0x0C, le=0) == bytes.fromhex("00B2010C00")
    assert build_apdu(0, 0xA4, 4, 0, b"\xA0\x00", 0) == bytes.fromhex("00A4040002A00000")


def test_plain_exchange_counts_apdus():
    t = ReplayTransport([("00A404000E325041592E5359532E444446303100", "6F009000")])
    ch = CardChannel(t)
    resp = ch.send(0, 0xA4, 4, 0, b"2PAY.SYS.DDF01", 0)
    assert resp.ok and resp.data == bytes.fromhex("6F00") and ch.count == 1
    assert t.finished


def test_get_response_on_61xx_and_data_joined():
    t = ReplayTransport([
        ("00A4040007A000000003101000", "6104"),
        ("00C0000004", "6F0284006103"),
        ("00C0000003", "A5009000"),
    ])
    resp = CardChannel(t).send(0, 0xA4, 4, 0, bytes.fromhex("A0000000031010"), 0)
    assert resp.ok and resp.data == bytes.fromhex("6F028400A500")
    assert t.finished


def test_wrong_le_6cxx_resends_with_le():
    t = ReplayTransport([("00B2011400", "6C05"), ("00B2011405", "70035A01419000")])
    resp = CardChannel(t).send(0, 0xB2, 1, 0x14, b"", 0)
    assert resp.ok and resp.data == bytes.fromhex("70035A0141")
    assert t.written[1] == bytes.fromhex("00B2011405")


def test_t0_case4_is_sent_without_le():
    t = ReplayTransport([("80A80000028300", "6108"), ("00C0000008", "8006198008010100" + "9000")],
                        protocol="T0")
    resp = CardChannel(t).send(0x80, 0xA8, 0, 0, b"\x83\x00", 0)
    assert resp.ok and resp.data == bytes.fromhex("8006198008010100")


def test_replay_refuses_different_bytes():
    t = ReplayTransport([("00A4040000", "9000")])
    with pytest.raises(AssertionError, match="differs"):
        CardChannel(t).send(0, 0xA4, 4, 1, b"", 0)


def test_card_removed_mid_exchange():
    t = ReplayTransport([("00B2010C00", "9000")], remove_after=0)
    with pytest.raises(CardRemoved):
        CardChannel(t).send(0, 0xB2, 1, 0x0C, b"", 0)


def test_empty_answer_means_card_removed():
    t = ReplayTransport([("00B2010C00", "")])
    with pytest.raises(CardRemoved):
        CardChannel(t).send(0, 0xB2, 1, 0x0C, b"", 0)
