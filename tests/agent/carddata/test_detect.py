"""find_card_data: card numbers and track data in text, by table and by property."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from agent.carddata import detect, tokens
from agent.carddata.detect import card_network, find_card_data, gs1_check_valid, is_card_number
from agent.carddata.luhn import luhn_valid
from agent.errors import CardDataError
from tests.agent.carddata import samples

# (text, kind found or None, network)
TABLE = [
    ("4111111111111111", "pan", "visa"),
    ("4111 1111 1111 1111", "pan", "visa"),
    ("4111-1111-1111-1111", "pan", "visa"),
    ("4111.1111.1111.1111", "pan", "visa"),
    ("4111  1111 - 1111 1111", "pan", "visa"),       # up to 3 separator characters
    ("paid with 4111 1111 1111 1111 cvv 123", "pan", "visa"),
    ("x4111111111111111y", "pan", "visa"),
    ("۴۱۱۱ ۱۱۱۱ ۱۱۱۱ ۱۱۱۱", "pan", "visa"),          # Persian digits
    ("٤١١١١١١١١١١١١١١١", "pan", "visa"),             # Arabic-Indic digits
    ("4111\u200b1111\u200e1111\u20601111", "pan", "visa"),  # zero-width and direction marks
    ("5555 5555 5555 4444", "pan", "mastercard"),
    ("2223000048400011", "pan", "mastercard"),
    ("3782 822463 10005", "pan", "amex"),
    ("6011111111111117", "pan", "discover"),
    ("3530111333300000", "pan", "jcb"),
    ("36227206271667", "pan", "diners"),
    ("6037991234567893", "pan", "maestro"),           # Shetab (Iran)
    ("6220264390045758", "pan", "unionpay"),
    ("%B4111111111111111^DOE/J^25121010000000000000?", "track", None),
    ("%b4111111111111111^doe/j^2512101?", "track", None),
    ("B4111111111111112^DOE/J^2512101", "track", None),   # no sentinel, bad check digit
    (";4111111111111111=25121010000000000000?", "track", None),
    ("4111111111111111=2512101", "track", None),
    # Not card data.
    ("4006381333931", None, None),                    # EAN-13 (Germany)
    ("4006380000094", None, None),                    # EAN-13 that also passes Luhn
    ("6260100000094", None, None),                    # EAN-13 (Iran) that passes Luhn
    ("5901230000097", None, None),
    ("036000291452", None, None),                     # UPC-A
    ("4111111111111112", None, None),                 # fails Luhn
    ("1234567812345670", None, None),                 # Luhn-valid, no network starts with 1
    ("9111111111111111", None, None),
    ("4111    1111 1111 1111", None, None),           # 4 spaces: two numbers
    ("41111111111111111111111", None, None),          # inside a longer run of digits
    ("CLUB-000123", None, None),
    ("+98 912 123 4567", None, None),
    ("2025-11-25 10:30", None, None),
    ("", None, None),
]


@pytest.mark.parametrize("text, kind, network", TABLE)
def test_table(text: str, kind: str | None, network: str | None) -> None:
    found = find_card_data(text)
    if kind is None:
        assert found is None
        return
    assert found is not None and found.kind == kind and found.network == network
    assert 0 <= found.start < found.end <= len(text)
    # The repr never shows the number.
    assert "1111" not in repr(found) and "4444" not in repr(found)


def test_pan_is_given_for_the_reader_path() -> None:
    found = find_card_data("no 4111-1111-1111-1111.")
    assert found is not None and found.pan == "4111111111111111"
    assert found.start == 3 and found.end == 22


def test_sample_cards_are_all_found() -> None:
    for pan in samples.PANS:
        assert is_card_number(pan), pan
    for sample in samples.TRACK_SAMPLES:
        assert find_card_data(sample.text) is not None, sample.label


def test_13_digit_visa_is_a_card_unless_it_is_also_an_ean() -> None:
    assert is_card_number("4222222222222")
    assert not gs1_check_valid("4222222222222")
    assert gs1_check_valid("4006380000094") and luhn_valid("4006380000094")
    assert card_network("4006380000094") == "visa"
    assert not is_card_number("4006380000094")


def test_min_digits_skips_short_numbers_but_finds_longer_ones() -> None:
    assert find_card_data("4222222222222", min_digits=14) is None
    found = find_card_data("4222222222222 and 378282246310005", min_digits=14)
    assert found is not None and found.network == "amex"


def test_code_and_tel_tokens_refuse_card_numbers() -> None:
    for text in ("4111 1111 1111 1111", "%B4111111111111111^DOE/J^2512101?", "۴۱۱۱۱۱۱۱۱۱۱۱۱۱۱۱"):
        with pytest.raises(CardDataError) as info:
            tokens.code_token(text)
        assert "bank card" in str(info.value) and "4111" not in str(info.value)
    for phone in ("+378282246310005", "00378282246310005", "4111 1111 1111 1111"):
        with pytest.raises(CardDataError, match="bank card"):
            tokens.tel_token(phone, "98")
    # Real phone numbers stay phone numbers, a 13-digit German one included.
    assert tokens.tel_token("+49 1512 3456789", "98") == "tel:+4915123456789"
    assert tokens.tel_token("0912 123 4567", "98") == "tel:+989121234567"


def test_code_token_refuses_c1_and_direction_overrides() -> None:
    for text in ("CLUB\x9b1", "CLUB\u202e1", "CLUB\u20661"):
        with pytest.raises(CardDataError, match="control"):
            tokens.code_token(text)


# --- properties ------------------------------------------------------------------------

def _luhn_complete(body: str) -> str:
    for check in "0123456789":
        if luhn_valid(body + check):
            return body + check
    raise AssertionError("unreachable")


@st.composite
def card_numbers(draw: st.DrawFn) -> str:
    """A Luhn-valid number in a network's range and length."""
    _network, low, high, lengths = draw(st.sampled_from(detect.CARD_RANGES))
    length = draw(st.sampled_from(lengths))
    prefix = str(draw(st.integers(int(low), int(high)))).zfill(len(low))
    rest = draw(st.text("0123456789", min_size=length - len(prefix) - 1,
                        max_size=length - len(prefix) - 1))
    pan = _luhn_complete(prefix + rest)
    assume(not (len(pan) in (12, 13) and gs1_check_valid(pan)))
    return pan


@st.composite
def grouped(draw: st.DrawFn, pan: str) -> str:
    """``pan`` cut into groups with 1 to 3 separator characters between them."""
    out, i = [], 0
    while i < len(pan):
        size = draw(st.integers(1, 8))
        out.append(pan[i : i + size])
        i += size
    seps = [draw(st.text(" -.\u00a0", min_size=1, max_size=3)) for _ in out[1:]]
    return out[0] + "".join(s + g for s, g in zip(seps, out[1:], strict=True))


_FILLER = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)


@given(data=st.data(), pan=card_numbers(), before=_FILLER, after=_FILLER)
def test_any_card_number_embedded_in_text_is_found(data: st.DataObject, pan: str,
                                                   before: str, after: str) -> None:
    text = before + "|" + data.draw(grouped(pan)) + "|" + after
    found = find_card_data(text)
    assert found is not None


@given(pan=card_numbers())
def test_every_generated_card_number_is_a_card(pan: str) -> None:
    assert is_card_number(pan) and card_network(pan) is not None
    assert find_card_data(pan) is not None and find_card_data(pan).pan == pan  # type: ignore[union-attr]


@given(body=st.text("0123456789", min_size=12, max_size=12))
def test_ean13_with_a_valid_check_digit_is_never_a_card(body: str) -> None:
    for check in "0123456789":
        code = body + check
        if gs1_check_valid(code):
            assert find_card_data(code) is None
            break


@given(text=st.text(max_size=200))
def test_never_raises_and_span_is_inside(text: str) -> None:
    found = find_card_data(text)
    if found is not None:
        assert 0 <= found.start < found.end <= len(text)


@given(text=st.text(st.characters(exclude_categories=("Nd",)), max_size=200))
def test_text_without_digits_has_no_card_number(text: str) -> None:
    found = find_card_data(text)
    assert found is None


def test_track_start_needs_digits() -> None:
    assert find_card_data("B" + " " * 10 + "^") is None
