"""National ids typed at the till (agent/carddata/nid.py): the country's check digit,
and hostile input refused with a message that never repeats the number."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.carddata.nid import clean_national_id, iran_check_ok, israel_check_ok
from agent.errors import CardDataError


def test_iran_and_israel_check_digits() -> None:
    assert clean_national_id("001-234567-9", "98") == "0012345679"
    assert clean_national_id("۰۰۱۲۳۴۵۶۷۹", "98") == "0012345679"  # Persian digits
    assert clean_national_id("\u200f0012345679\u200e", "+98") == "0012345679"
    assert clean_national_id("12345678-2", "972") == "123456782"
    assert clean_national_id("39402516", "972") == "039402516"
    assert clean_national_id("1234", "49") == "1234"
    for text, cc in (("0012345678", "98"), ("1111111111", "98"), ("001234567", "98"),
                     ("123456783", "972"), ("1234567890", "972"), ("123", "49")):
        with pytest.raises(CardDataError):
            clean_national_id(text, cc)


@pytest.mark.parametrize("text", [
    "9" * 10_000, "", "   ", "12a4567890", "0012345679\u202e", "\u2066001234567\u2069",
    "0012345679\x00", "4111 1111 1111 1111", "0012345679; DROP TABLE",
])
def test_hostile_input_is_refused_without_repeating_it(text: str) -> None:
    for cc in ("98", "972", "49"):
        with pytest.raises(CardDataError) as info:
            clean_national_id(text, cc)
        digits = "".join(c for c in text if c.isdigit())
        assert len(digits) < 4 or digits not in str(info.value)
    print(f"figure: refused {len(text)}-character nid input in 3 countries")


@given(st.text(max_size=60))
def test_never_raises_anything_but_card_data_error(text: str) -> None:
    for cc in ("98", "972", "1"):
        try:
            out = clean_national_id(text, cc)
        except CardDataError:
            continue
        assert out.isascii() and out.isdigit()
        assert cc != "98" or iran_check_ok(out)
        assert cc != "972" or israel_check_ok(out)
