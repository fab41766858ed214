"""ISO 7813 track parsing against what keyboard-wedge and serial readers really send."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.carddata.luhn import luhn_valid
from agent.carddata.tracks import Swipe, looks_like_track, parse_swipe
from agent.errors import CardDataError
from tests.agent.carddata import samples
from tests.agent.carddata.samples import BARCODES, TRACK_ERRORS, TRACK_SAMPLES, TrackSample


@pytest.mark.parametrize("sample", TRACK_SAMPLES, ids=lambda s: s.label)
def test_real_world_bursts(sample: TrackSample) -> None:
    swipe = parse_swipe(sample.text)
    assert swipe.pan == sample.pan
    assert swipe.expiry == sample.expiry
    assert swipe.name == sample.name
    assert swipe.service_code == sample.service_code
    assert swipe.tracks == sample.tracks
    assert looks_like_track(sample.text)


@pytest.mark.parametrize(("text", "fragment"), TRACK_ERRORS, ids=lambda v: repr(v)[:40])
def test_bad_bursts_say_why(text: str, fragment: str) -> None:
    with pytest.raises(CardDataError) as info:
        parse_swipe(text)
    assert fragment in str(info.value)
    # The message is for the counter: it never repeats the card number.
    for pan in samples.PANS:
        assert pan not in str(info.value)


def test_luhn_failure_has_the_agreed_message() -> None:
    with pytest.raises(CardDataError, match="card number fails its check digit; swipe again"):
        parse_swipe(";4111111111111112=2512101?")


def test_error_marker_alone_asks_to_swipe_again() -> None:
    with pytest.raises(CardDataError, match="swipe again"):
        parse_swipe("%E?;E?\r\n")


@pytest.mark.parametrize("text", BARCODES)
def test_barcodes_do_not_look_like_tracks(text: str) -> None:
    assert not looks_like_track(text)


def test_error_markers_look_like_a_track() -> None:
    assert looks_like_track("%E?;E?")
    assert looks_like_track(";E?")


def test_repr_and_str_never_show_pan_or_expiry() -> None:
    swipe = parse_swipe(samples.T1_VISA + samples.T2_VISA)
    for text in (repr(swipe), str(swipe), f"{swipe}", repr([swipe])):
        assert samples.VISA not in text
        assert "2512" not in text
        assert "411111******1111" in text
    assert swipe.masked == "411111******1111"
    assert swipe.bin6 == "411111"


def test_discretionary_data_is_not_kept() -> None:
    swipe = parse_swipe(samples.T2_MC)
    assert "1234567890123" not in repr(swipe)
    assert set(Swipe.__slots__) == {"pan", "expiry", "name", "service_code", "tracks"}


@st.composite
def luhn_pans(draw: st.DrawFn) -> str:
    body = draw(st.text("0123456789", min_size=11, max_size=18))
    for d in "0123456789":
        if luhn_valid(body + d):
            return body + d
    raise AssertionError("unreachable: one check digit always fits")


@given(pan=luhn_pans(),
       yy=st.integers(0, 99), mm=st.integers(1, 12),
       service=st.text("0123456789", min_size=3, max_size=3),
       name=st.from_regex(r"[A-Z]{2,10}/[A-Z]{1,10}", fullmatch=True),
       disc=st.text("0123456789", max_size=6),
       junk=st.text(st.characters(blacklist_characters="%;?", codec="ascii"), max_size=5),
       lower=st.booleans())
def test_generated_swipes_round_trip(pan: str, yy: int, mm: int, service: str, name: str,
                                     disc: str, junk: str, lower: bool) -> None:
    yymm = f"{yy:02d}{mm:02d}"
    t1 = f"%B{pan}^{name}^{yymm}{service}{disc}?"
    t2 = f";{pan}={yymm}{service}{disc}?"
    burst = junk + (t1.lower() if lower else t1) + "\r\n" + t2 + junk
    swipe = parse_swipe(burst)
    assert (swipe.pan, swipe.expiry, swipe.name, swipe.service_code, swipe.tracks) == (
        pan, yymm, name, service, (1, 2))
    assert pan not in repr(swipe)
