"""A PAN or track logged by mistake, by anyone, never reaches the output."""

from __future__ import annotations

import io
import json
import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.carddata.luhn import luhn_valid
from agent.log import configure_logging, redact

PANS = ["4111111111111111", "5555555555554444", "4761739001010119", "378282246310005"]


@pytest.fixture
def captured() -> io.StringIO:
    out = io.StringIO()
    handler = configure_logging("debug", "json", stream=out)
    yield out
    logging.getLogger().removeHandler(handler)


@pytest.mark.parametrize("pan", PANS)
def test_pan_logged_by_mistake_is_masked(captured: io.StringIO, pan: str) -> None:
    log = logging.getLogger("some.library")
    log.info("card %s presented", pan)
    log.warning("grouped %s", " ".join(pan[i : i + 4] for i in range(0, len(pan), 4)))
    log.info("extra", extra={"card": pan})
    try:
        raise ValueError(f"bad card {pan}")
    except ValueError:
        log.exception("failed")
    text = captured.getvalue()
    assert pan not in text
    assert pan not in text.replace(" ", "")
    assert f"{pan[:6]}{'*' * (len(pan) - 10)}{pan[-4:]}" in text
    for line in text.splitlines():
        json.loads(line)  # every line is still one JSON object


@pytest.mark.parametrize(
    "track",
    [
        "%B4111111111111111^DOE/JOHN^2512101000000000?",
        ";4111111111111111=25121010000000000000?",
        "%b5555555555554444^SMITH/ANN^2901?;5555555555554444=2901?",
        "4761739001010119D22122011143804400000F",
    ],
)
def test_track_data_is_redacted(captured: io.StringIO, track: str) -> None:
    logging.getLogger("x").error("raw read: %s", track)
    text = captured.getvalue()
    assert "[track data redacted]" in text
    for pan in PANS:
        assert pan not in text
    assert "DOE/JOHN" not in text


def test_harmless_numbers_stay(captured: io.StringIO) -> None:
    logging.getLogger("x").info("seq 4521 amount 12000 order 1234567890123")
    assert "1234567890123" in captured.getvalue()


@given(st.text(alphabet="0123456789", min_size=12, max_size=19).filter(luhn_valid),
       st.text(alphabet="abc =:,", max_size=5), st.text(alphabet="abc =:,", max_size=5))
def test_any_luhn_valid_run_is_masked(pan: str, before: str, after: str) -> None:
    assert pan not in redact(before + pan + after)


def test_text_format_is_redacted_too() -> None:
    out = io.StringIO()
    handler = configure_logging("info", "text", stream=out)
    try:
        logging.getLogger("t").info("card 4111111111111111")
    finally:
        logging.getLogger().removeHandler(handler)
    assert "411111******1111" in out.getvalue()
    assert "4111111111111111" not in out.getvalue()


def test_store_queries_and_their_parameters_are_not_logged_at_debug(
        captured: io.StringIO, tmp_path) -> None:
    # A store that logged its queries with their parameters at DEBUG (as peewee
    # did) would leak a staff badge token looked up in it at --log-level debug.
    from agent.offline_queue import Store

    store = Store.open(tmp_path / "s.db", "T-0001", "M-7")
    try:
        store.records.staff_by_badge("nfc:04BADGE99")
    finally:
        store.close()
    assert "04BADGE99" not in captured.getvalue()
