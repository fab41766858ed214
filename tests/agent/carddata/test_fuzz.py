"""Fuzz every parser: random and mutated inputs raise only CardDataError.

Short in CI (the hypothesis profile in tests/conftest.py); ``python -m
bench.parsers`` runs the long variant.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from agent.carddata import emv, tlv, tokens, tracks
from agent.cli import card as card_cli
from agent.errors import CardDataError
from tests.agent.carddata.samples import TLV_CORPUS, TRACK_CORPUS

BYTE_PARSERS: dict[str, Callable[[bytes], Any]] = {
    "parse_tlv": tlv.parse_tlv,
    "parse_dol": tlv.parse_dol,
    "pan_from_5a": emv.pan_from_5a,
    "track2_fields": emv.track2_fields,
    "expiry_from_5f24": emv.expiry_from_5f24,
    "card_from_records": lambda data: emv.card_from_records(tlv.parse_tlv(data)),
    "nfc_token": tokens.nfc_token,
    "decode_tlv": card_cli.decode_tlv,
}

TEXT_PARSERS: dict[str, Callable[[str], Any]] = {
    "parse_swipe": tracks.parse_swipe,
    "normalise_phone": lambda text: tokens.normalise_phone(text, "98"),
    "token_kind": tokens.token_kind,
    "code_token": tokens.code_token,
    "decode_text": card_cli.decode_text,
}

INTERESTING_CHARS = "%;?^=E\r\n 0123456789BbD+۰۹"


def only_card_data_error(fn: Callable[[Any], Any], arg: Any) -> None:
    """Call ``fn(arg)``; CardDataError is fine, any other exception fails the test."""
    try:
        fn(arg)
    except CardDataError:
        pass


@st.composite
def mutated_bytes(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(TLV_CORPUS)))
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "dup"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[pos] = draw(st.sampled_from([0x00, 0x7F, 0x80, 0x81, 0x82, 0x83, 0x84, 0xFF,
                                              0x1F, 0x9F, 0x20]))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=4))
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 4))]
        elif op == "truncate":
            del data[pos:]
        elif op == "dup":
            data[pos:pos] = data[pos : pos + draw(st.integers(1, 8))]
    return bytes(data)


@st.composite
def mutated_text(draw: st.DrawFn) -> str:
    chars = list(draw(st.sampled_from(TRACK_CORPUS)))
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["set", "insert", "delete", "truncate", "case"]))
        pos = draw(st.integers(0, max(0, len(chars) - 1)))
        if op == "set" and chars:
            chars[pos] = draw(st.sampled_from(INTERESTING_CHARS))
        elif op == "insert":
            chars[pos:pos] = draw(st.text(INTERESTING_CHARS, min_size=1, max_size=4))
        elif op == "delete":
            del chars[pos : pos + draw(st.integers(1, 4))]
        elif op == "truncate":
            del chars[pos:]
        elif op == "case":
            chars = list("".join(chars).swapcase())
    return "".join(chars)


@given(st.binary(max_size=400))
def test_random_bytes(data: bytes) -> None:
    for fn in BYTE_PARSERS.values():
        only_card_data_error(fn, data)


@given(mutated_bytes())
def test_mutated_emv_answers(data: bytes) -> None:
    for fn in BYTE_PARSERS.values():
        only_card_data_error(fn, data)


@given(st.text(max_size=200))
def test_random_text(text: str) -> None:
    for fn in TEXT_PARSERS.values():
        only_card_data_error(fn, text)
    assert isinstance(tracks.looks_like_track(text), bool)


@given(mutated_text())
def test_mutated_swipes(text: str) -> None:
    for fn in TEXT_PARSERS.values():
        only_card_data_error(fn, text)
    assert isinstance(tracks.looks_like_track(text), bool)


@given(st.one_of(mutated_text(), mutated_bytes().map(bytes.hex)))
def test_decode_report_never_holds_a_card_number(text: str) -> None:
    """Whatever a reader sends, the printed report has no Luhn-valid 12-19 digit run."""
    try:
        report, pan = card_cli.decode_text(text)
    except CardDataError:
        return
    for as_json in (False, True):
        out = card_cli.format_card_report(report, as_json)
        assert pan is None or pan not in out
        assert not card_cli._may_hold_pan(out)


def test_deep_nesting_and_huge_lengths_do_not_hang() -> None:
    bomb = b"\x70\x83\xff\xff\xff" * 1000
    only_card_data_error(tlv.parse_tlv, bomb)
    nested = b""
    for _ in range(2000):
        nested = b"\x70" + (b"\x82" + len(nested).to_bytes(2, "big") if len(nested) > 0x7F
                            else bytes([len(nested)])) + nested
        if len(nested) > 0xFFF0:
            break
    only_card_data_error(tlv.parse_tlv, nested)
    only_card_data_error(tracks.parse_swipe, "%" * 5000)
    only_card_data_error(tracks.parse_swipe, ";" + "4" * 3000 + "?")
