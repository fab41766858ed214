"""Serial magstripe: the framer (pure) and the driver against a real pty."""

import os
import time

from hypothesis import given
from hypothesis import strategies as st

from agent.carddata import tokens
from agent.drivers.base import Backoff
from agent.drivers.events import CardPresented, ReadFailed
from agent.drivers.serial import SerialReader, SwipeFramer
from hw_sim.serial_msr import VirtualSerialMsr, track_data
from tests.agent.drivers.collector import EventLog

PAN_KEY = bytes(32)
VISA = track_data("4111111111111111")


def _frames(chunks, idle_after=False):
    framer = SwipeFramer()
    out = []
    for c in chunks:
        out += framer.feed(c)
    if idle_after:
        out += framer.idle()
    return out


def test_whole_swipe_with_cr():
    frames = _frames([VISA.encode() + b"\r"])
    assert [f.kind for f in frames] == ["swipe"] and frames[0].text == VISA
    assert "4111" not in repr(frames[0])


def test_swipe_without_terminator_ends_on_silence():
    assert _frames([VISA.encode()]) == []
    frames = _frames([VISA.encode()], idle_after=True)
    assert frames[0].kind == "swipe"


@given(st.lists(st.integers(min_value=1, max_value=30), min_size=1, max_size=40))
def test_any_chunking_gives_the_same_swipe(sizes):
    data = VISA.encode() + b"\r\n"
    chunks, pos = [], 0
    for size in sizes:
        chunks.append(data[pos:pos + size])
        pos += size
    chunks.append(data[pos:])
    frames = _frames(chunks)
    assert [(f.kind, f.text) for f in frames] == [("swipe", VISA)]


def test_noise_before_swipe_is_dropped():
    frames = _frames([b"\x00\xff\x1bgarbage\x7f", VISA.encode() + b"\r"])
    assert [(f.kind, f.text) for f in frames] == [("swipe", VISA)]


def test_noise_inside_swipe_resyncs_on_next():
    broken = VISA[:20].encode() + b"\xff\x00" + VISA[20:].encode()
    frames = _frames([broken + b"\r", VISA.encode() + b"\r"])
    kinds = [f.kind for f in frames]
    assert kinds[0] == "partial" and kinds[-1] == "swipe" and frames[-1].text == VISA


def test_half_swipe_then_new_swipe():
    frames = _frames([VISA[:25].encode(), VISA.encode() + b"\r"])
    assert [f.kind for f in frames] == ["partial", "swipe"]


def test_half_swipe_then_silence():
    frames = _frames([VISA[:25].encode()], idle_after=True)
    assert [f.kind for f in frames] == ["partial"]


def test_barcode_lines():
    framer = SwipeFramer(lines=True)
    frames = framer.feed(b"ABC-123\r\nXY") + framer.idle()
    assert [f.text for f in frames] == ["ABC-123", "XY"]


def _start(link, **kw):
    log = EventLog()
    reader = SerialReader("msr", str(link), PAN_KEY, backoff=Backoff(0.05, 0.3), gap_ms=60, **kw)
    reader.start(log)
    log.state("ready")
    return reader, log


def test_driver_reads_chunked_noisy_swipe_from_pty(tmp_path):
    msr = VirtualSerialMsr(tmp_path / "msr", seed=1)
    reader, log = _start(msr.link)
    try:
        since = log.mark()
        msr.swipe(VISA, noise=True)
        event = log.card(since)
        assert isinstance(event, CardPresented)
        assert event.token == tokens.pan_token(PAN_KEY, "4111111111111111")
        assert event.masked == "411111******1111" and event.bin6 == "411111"
        assert event.source == "msr"
    finally:
        reader.stop()
        msr.close()


def test_driver_half_swipe_says_read_again_then_recovers(tmp_path):
    msr = VirtualSerialMsr(tmp_path / "msr", seed=2)
    reader, log = _start(msr.link)
    try:
        since = log.mark()
        msr.half_swipe(VISA)
        failed = log.card(since)
        assert isinstance(failed, ReadFailed) and failed.message.startswith("read again")
        since = log.mark()
        msr.swipe(track_data("5555555555554444"))
        ok = log.card(since)
        assert isinstance(ok, CardPresented) and ok.bin6 == "555555"
    finally:
        reader.stop()
        msr.close()


def test_driver_bad_track_data_is_read_again(tmp_path):
    msr = VirtualSerialMsr(tmp_path / "msr")
    reader, log = _start(msr.link)
    try:
        since = log.mark()
        msr.swipe(track_data("4111111111111112"))        # fails Luhn
        failed = log.card(since)
        assert isinstance(failed, ReadFailed) and "4111111111111112" not in failed.message
    finally:
        reader.stop()
        msr.close()


def test_driver_survives_unplug_and_replug(tmp_path):
    msr = VirtualSerialMsr(tmp_path / "msr")
    reader, log = _start(msr.link)
    try:
        since = log.mark()
        msr.unplug()
        log.state("error", since)
        time.sleep(0.3)                                   # a few failed reopen attempts
        msr.plug()
        since = log.mark()
        log.state("ready", since)
        msr.swipe(VISA)
        assert isinstance(log.card(since), CardPresented)
    finally:
        reader.stop()
        msr.close()


def test_missing_device_is_error_not_crash(tmp_path):
    log = EventLog()
    reader = SerialReader("msr", str(tmp_path / "nothing"), PAN_KEY, backoff=Backoff(0.05, 0.1))
    reader.start(log)
    try:
        state = log.state("error")
        assert "nothing" in state.detail
        log.state("retry")
    finally:
        reader.stop()
    assert reader._thread is None and not os.path.exists(tmp_path / "nothing")


def test_driver_barcode_role_swipe_is_a_card_read_not_a_code(tmp_path):
    # A magstripe reader on the port the profile calls the barcode scanner.
    msr = VirtualSerialMsr(tmp_path / "msr", seed=3)
    reader, log = _start(msr.link, role="barcode")
    try:
        since = log.mark()
        msr.swipe(VISA)
        event = log.card(since)
        assert isinstance(event, CardPresented) and event.token_kind == "pan"
        assert event.token == tokens.pan_token(PAN_KEY, "4111111111111111")
        assert not any(getattr(e, "token", "").startswith("code:") for e in log.events)
    finally:
        reader.stop()
        msr.close()
