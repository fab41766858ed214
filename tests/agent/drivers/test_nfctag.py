"""NFC Type 2 tags: UID, capability container, NDEF TLV walk, text and URI records."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.drivers import nfctag
from agent.drivers.apdu import CardChannel, ReplayTransport
from agent.errors import CardDataError
from hw_sim import cards


def test_atr_kinds():
    assert nfctag.is_storage_card_atr(cards.ATR_NTAG)
    assert not nfctag.is_storage_card_atr(cards.ATR_CONTACTLESS_EMV)
    assert nfctag.is_contactless_atr(cards.ATR_CONTACTLESS_EMV)
    assert not nfctag.is_contactless_atr(cards.ATR_CONTACT_T0)


def test_recorded_tag_with_lock_tlv_before_ndef_uri():
    # Pages 4..: lock control TLV (01 03 A0 0C 34), NDEF TLV with one URI record, terminator.
    uri = bytes([0xD1, 0x01, 0x0D, ord("U"), 0x04]) + b"club.example"
    area = bytes.fromhex("0103A00C34") + bytes([0x03, len(uri)]) + uri + b"\xFE"
    area = area.ljust(32, b"\x00")
    t = ReplayTransport([
        ("FFCA000000", "04112233445566" "9000"),
        ("FFB0000304", "E1101200" "9000"),
        ("FFB0000410", area[:16].hex() + "9000"),
        ("FFB0000810", area[16:].hex() + "9000"),
    ])
    tag = nfctag.read_tag(CardChannel(t))
    assert tag.uid.hex().upper() == "04112233445566"
    assert tag.records == (nfctag.NdefRecord("uri", "https://club.example"),)
    assert tag.apdus == 4 and t.finished


def test_tag_without_ndef_gives_uid_only():
    t = ReplayTransport([("FFCA000000", "A1B2C3D4" "9000"), ("FFB0000304", "00000000" "9000")])
    tag = nfctag.read_tag(CardChannel(t))
    assert tag.uid == bytes.fromhex("A1B2C3D4") and tag.records == () and tag.info is None


def test_virtual_club_tag_in_process():
    tag = nfctag.read_tag(CardChannel(cards.DirectTransport(cards.nfc_club())))
    assert tag.uid.hex().upper() == "04A2241A3C5E80"
    assert tag.info == "Club member card"


def test_utf16_text_record():
    text = "Ça va".encode("utf-16-be")
    payload = bytes([0x80 | 2]) + b"fr" + text
    record = bytes([0xD1, 0x01, len(payload), ord("T")]) + payload
    # NFC Forum RTD Text: UTF-16 without a byte order mark is big endian.
    assert nfctag.parse_ndef(record) == (nfctag.NdefRecord("text", "Ça va"),)


def test_truncated_ndef_is_card_data_error():
    with pytest.raises(CardDataError):
        nfctag.parse_ndef(bytes([0xD1, 0x01, 0x10, ord("T"), 0x02]))


@given(st.binary(max_size=64))
def test_parse_ndef_never_raises_anything_but_card_data_error(data):
    try:
        nfctag.parse_ndef(data)
    except CardDataError:
        pass
