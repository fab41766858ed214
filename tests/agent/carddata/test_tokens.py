"""Identifier tokens exactly as protocol.md says, and phone numbers to E.164."""

from __future__ import annotations

import hashlib
import hmac
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.carddata.luhn import mask_pan
from agent.carddata.tokens import (
    code_token,
    nfc_token,
    nid_token,
    normalise_phone,
    pan_token,
    tel_token,
    token_kind,
)
from agent.errors import CardDataError

KEY = bytes(range(32))


def test_pan_token_is_truncated_hmac_sha256() -> None:
    expected = hmac.new(KEY, b"4111111111111111", hashlib.sha256).hexdigest()[:32]
    assert pan_token(KEY, "4111111111111111") == "pan:" + expected
    # A fixed vector, so a change of algorithm cannot go unnoticed.
    assert pan_token(KEY, "4111111111111111") == "pan:" + expected.lower()
    assert re.fullmatch(r"pan:[0-9a-f]{32}", pan_token(KEY, "5555555555554444"))


def test_nid_token_hmacs_the_prefixed_digits() -> None:
    expected = hmac.new(KEY, b"nid:0012345678", hashlib.sha256).hexdigest()[:32]
    assert nid_token(KEY, "0012345678") == "nid:" + expected
    assert nid_token(KEY, "۰۰۱-۲۳۴۵۶۷-۸") == "nid:" + expected
    assert nid_token(KEY, "001 234 5678") == "nid:" + expected
    # The "nid:" prefix separates the two kinds: the same digits give different tokens.
    assert nid_token(KEY, "4111111111111111")[4:] != pan_token(KEY, "4111111111111111")[4:]


@pytest.mark.parametrize("bad", ["", "12a4", "123", "1" * 21, "12+34"])
def test_nid_refuses_non_digits(bad: str) -> None:
    with pytest.raises(CardDataError):
        nid_token(KEY, bad)


@pytest.mark.parametrize("key", [b"", b"short", bytes(31), bytes(33)])
def test_pan_key_must_be_32_bytes(key: bytes) -> None:
    with pytest.raises(CardDataError, match="32 bytes"):
        pan_token(key, "4111111111111111")


@pytest.mark.parametrize("pan", ["", "411111111111", "41111111111", "4" * 20, "4111-1111-1111-1111",
                                 "٤١١١١١١١١١١١١١١١"])
def test_pan_token_refuses_what_is_not_a_pan(pan: str) -> None:
    if pan == "411111111111":
        assert pan_token(KEY, pan).startswith("pan:")  # 12 digits is a PAN length
        return
    with pytest.raises(CardDataError) as info:
        pan_token(KEY, pan)
    assert pan not in str(info.value) or not pan


def test_nfc_and_code_tokens() -> None:
    assert nfc_token(bytes.fromhex("04a2249a5b6680")) == "nfc:04A2249A5B6680"
    assert nfc_token(b"\xde\xad\xbe\xef") == "nfc:DEADBEEF"
    assert code_token("  CLUB-000123\r\n") == "code:CLUB-000123"
    assert code_token("]d2\x1d0109501101530003") == "code:]d2\x1d0109501101530003"
    for bad in ("", "   ", "a\x00b", "x" * 513):
        with pytest.raises(CardDataError):
            code_token(bad)
    with pytest.raises(CardDataError):
        nfc_token(b"")


PHONES = [
    ("+98 912 123 4567", "+989121234567"),
    ("+98-912-123-4567", "+989121234567"),
    ("0912 123 4567", "+989121234567"),
    ("09121234567", "+989121234567"),
    ("(0912) 123.4567", "+989121234567"),
    ("9121234567", "+989121234567"),
    ("00989121234567", "+989121234567"),
    ("00 98 912 123 45 67", "+989121234567"),
    ("۰۹۱۲ ۱۲۳ ۴۵۶۷", "+989121234567"),
    ("٠٩١٢١٢٣٤٥٦٧", "+989121234567"),
    ("\u200f+۹۸ ۹۱۲ ۱۲۳ ۴۵۶۷\u200e", "+989121234567"),
    ("021 8888 7777", "+982188887777"),
    ("+44 (0)20 7946 0958", "+442079460958"),
    ("+1 (415) 555-2671", "+14155552671"),
    ("+971 50 123 4567", "+971501234567"),
    ("\t+98 912 123 4567 \n", "+989121234567"),
]


@pytest.mark.parametrize(("text", "e164"), PHONES)
def test_phone_formats_people_write(text: str, e164: str) -> None:
    assert normalise_phone(text, "98") == e164
    assert tel_token(text, "98") == "tel:" + e164


@pytest.mark.parametrize(("text", "fragment"), [
    ("", "empty"),
    ("   ", "empty"),
    ("0912 123 4567 ext 12", "letters"),
    ("0912x1234567", "letters"),
    ("tel:09121234567", "letters"),
    ("1234", "8 to 15"),
    ("+98 912 123 4567 8901 23", "8 to 15"),
    ("+0912345678", "cannot start with 0"),
    ("0912#1234567", "only digits"),
    ("0912+1234567", "only digits"),
    ("++989121234567", "only digits"),
    ("---", "no digits"),
])
def test_phone_refusals(text: str, fragment: str) -> None:
    with pytest.raises(CardDataError, match=re.escape(fragment)):
        normalise_phone(text, "98")


@pytest.mark.parametrize("cc", ["", "0", "098", "1234", "9a", "+"])
def test_bad_default_country_code(cc: str) -> None:
    with pytest.raises(CardDataError, match="country calling code"):
        normalise_phone("09121234567", cc)


def test_country_code_with_plus_is_accepted() -> None:
    assert normalise_phone("050 123 4567", "+971") == "+971501234567"


def test_token_kind() -> None:
    assert token_kind(pan_token(KEY, "4111111111111111")) == "pan"
    assert token_kind(nid_token(KEY, "0012345678")) == "nid"
    assert token_kind(nfc_token(b"\x04\xa2\x24\x9a")) == "nfc"
    assert token_kind(code_token("CLUB-1")) == "code"
    assert token_kind(tel_token("09121234567", "98")) == "tel"
    for bad in ("", "pan", "pan:", "pan:XYZ", "pan:" + "A" * 32, "nfc:abc", "nfc:ABC",
                "tel:09121234567", "tel:+0123456789", "code:", "code: x", "card:123",
                mask_pan("4111111111111111")):
        with pytest.raises(CardDataError):
            token_kind(bad)


@given(st.binary(min_size=32, max_size=32), st.from_regex(r"[0-9]{12,19}", fullmatch=True))
def test_pan_token_deterministic_and_well_formed(key: bytes, pan: str) -> None:
    token = pan_token(key, pan)
    assert token == pan_token(key, pan)
    assert re.fullmatch(r"pan:[0-9a-f]{32}", token)
    assert token_kind(token) == "pan"
    assert pan not in token


@given(st.from_regex(r"9[0-9]{9}", fullmatch=True),
       st.sampled_from(["{}", "0{}", "+98{}", "0098{}", "+98 {}", "0{} "]),
       st.sampled_from([" ", "-", ".", ""]))
def test_phone_variants_agree_and_are_idempotent(national: str, layout: str, sep: str) -> None:
    grouped = sep.join([national[:3], national[3:6], national[6:]])
    e164 = normalise_phone(layout.format(grouped), "98")
    assert e164 == "+98" + national
    assert normalise_phone(e164, "98") == e164
    assert token_kind("tel:" + e164) == "tel"


@given(st.text(max_size=40))
def test_phone_normalisation_only_raises_card_data_error(text: str) -> None:
    try:
        result = normalise_phone(text, "98")
    except CardDataError:
        return
    assert re.fullmatch(r"\+[1-9][0-9]{7,14}", result)
