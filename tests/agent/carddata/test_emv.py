"""EMV card data fields: 5A, 57/9F6B, 5F24, and finding the card in records."""

from __future__ import annotations

import pytest

from agent.carddata.emv import (
    card_from_records,
    expiry_from_5f24,
    pan_from_5a,
    tag_name,
    track2_equivalent,
    track2_fields,
)
from agent.carddata.tlv import parse_tlv
from agent.errors import CardDataError
from tests.agent.carddata import samples
from tests.agent.carddata.samples import RECORD_SAMPLES, tlv


@pytest.mark.parametrize(("hexval", "pan"), [
    ("4111111111111111", "4111111111111111"),
    ("5555555555554444", "5555555555554444"),
    ("4761739001010119", "4761739001010119"),
    ("378282246310005F", "378282246310005"),
    ("6037991234567893", "6037991234567893"),
    ("6011000990139424FFFF", "6011000990139424"),
])
def test_pan_from_5a(hexval: str, pan: str) -> None:
    assert pan_from_5a(bytes.fromhex(hexval)) == pan


@pytest.mark.parametrize(("hexval", "fragment"), [
    ("", "empty"),
    ("4111111111111112", "check digit"),
    ("41111111F1111111", "not a decimal"),
    ("4A11111111111111", "not a decimal"),
    ("41111111", "not 12 to 19"),
    ("FFFF", "no card number digits"),
    ("4111111111111111D2", "not a decimal"),
])
def test_pan_from_5a_refuses(hexval: str, fragment: str) -> None:
    with pytest.raises(CardDataError, match=fragment):
        pan_from_5a(bytes.fromhex(hexval))


@pytest.mark.parametrize(("hexval", "pan", "yymm", "service"), [
    (samples.T57_EMV, "4761739001010119", "2212", "201"),
    (samples.T57_VISA, "4111111111111111", "2512", "201"),
    (samples.T57_MC, "5555555555554444", "2811", "201"),
    ("378282246310005D2703201150419F", "378282246310005", "2703", "201"),
    ("4111111111111111D2512F", "4111111111111111", "2512", None),
])
def test_track2_equivalent(hexval: str, pan: str, yymm: str, service: str | None) -> None:
    value = bytes.fromhex(hexval)
    assert track2_equivalent(value) == (pan, yymm)
    assert track2_fields(value) == (pan, yymm, service)


@pytest.mark.parametrize(("hexval", "fragment"), [
    ("", "empty"),
    ("41111111111111112512201F", "no 'D'"),
    ("4111111111111112D2512201", "check digit"),
    ("4111111111111111D2513201", "YYMM"),
    ("4111111111111111D25F", "expiry"),
    ("4111111111111111D25122F1", "service code"),
    ("4111111111111111D2512201AB", "discretionary"),
    ("4111111111111111D2512201" + "0" * 30, "longer than 19"),
])
def test_track2_equivalent_refuses(hexval: str, fragment: str) -> None:
    with pytest.raises(CardDataError, match=fragment):
        track2_equivalent(bytes.fromhex(hexval))


def test_expiry_from_5f24() -> None:
    assert expiry_from_5f24(bytes.fromhex("221231")) == "2212"
    assert expiry_from_5f24(bytes.fromhex("250228")) == "2502"
    for bad in ("2212", "22123101", "221331", "220031", "2212AA", "221200", "221232"):
        with pytest.raises(CardDataError):
            expiry_from_5f24(bytes.fromhex(bad))


@pytest.mark.parametrize("sample", RECORD_SAMPLES, ids=lambda s: s[0])
def test_card_from_real_records(sample: tuple[str, bytes, str, str | None, str | None,
                                              str | None]) -> None:
    _, record, pan, expiry, name, service = sample
    card = card_from_records(parse_tlv(record))
    assert card is not None
    assert (card.pan, card.expiry, card.name, card.service_code) == (pan, expiry, name, service)
    assert pan not in repr(card) and (expiry is None or expiry not in repr(card))


def test_no_card_in_fci() -> None:
    assert card_from_records(parse_tlv(samples.SELECT_AID)) is None
    assert card_from_records(parse_tlv(samples.GPO_FORMAT1)) is None


def test_57_and_5a_must_agree() -> None:
    data = tlv("70", tlv("57", samples.T57_VISA) + tlv("5A", samples.MC))
    with pytest.raises(CardDataError, match="different cards"):
        card_from_records(parse_tlv(data))


def test_tag_names() -> None:
    assert tag_name(0x57) == "Track 2 Equivalent Data"
    assert tag_name(0x9F6B) == "Track 2 Data"
    assert tag_name(0xDF8101) is None
