"""Keyboard wedge: recorded key events through the driver's own decoding path."""

import threading
from typing import ClassVar

import pytest

from agent.carddata import tokens
from agent.drivers import keymaps
from agent.drivers.base import Backoff, Debouncer
from agent.drivers.evdev import (
    EvdevReader,
    KeyEvent,
    ReplaySource,
    ScanDecoder,
    format_event_line,
    parse_event_line,
)
from agent.drivers.events import CardPresented, ReadFailed
from agent.errors import ReaderError
from hw_sim import keys
from hw_sim.serial_msr import track_data
from tests.agent.drivers.collector import EventLog

PAN_KEY = bytes(32)
TRACKS = track_data("4111111111111111")


def decode(events, keymap="us", **kw):
    decoder = ScanDecoder(keymaps.get_keymap(keymap), **kw)
    out = [r for e in events for r in decoder.feed(e)]
    return out + decoder.idle()


def test_us_barcode_with_shift():
    out = decode(keys.type_text("ABC-123_x", keymap="us"))
    assert [(r.kind, r.text) for r in out] == [("scan", "ABC-123_x")]


def test_us_track_data():
    out = decode(keys.type_text(TRACKS, keymap="us"))
    assert out[0].kind == "scan" and out[0].text == TRACKS


def test_azerty_scanner_with_azerty_keymap():
    # On AZERTY, digits need Shift and '@' needs AltGr: the decoder must undo that.
    events = keys.type_text("4006381333931@club", keymap="fr")
    shifted = [e for e in events if e.code == keymaps.KEY_LEFTSHIFT and e.value == 1]
    assert shifted                                   # the scanner really typed Shift+digit
    out = decode(events, keymap="fr")
    assert [(r.kind, r.text) for r in out] == [("scan", "4006381333931@club")]


def test_azerty_track_data():
    out = decode(keys.type_text(TRACKS, keymap="fr"), keymap="fr")
    assert out[0].text == TRACKS


def test_caps_lock_on_letters_only():
    events = keys.type_text("Code42abc", keymap="us", caps_lock_on=True)
    out = decode(events)
    assert out[0].text == "Code42abc"


def test_caps_lock_state_from_device_at_start():
    # Caps Lock already on (LED) and the scanner types plain keys: letters come out upper.
    events = keys.type_text("abc123", keymap="us")
    out = decode(events, caps_lock=True)
    assert out[0].text == "ABC123"


def test_slow_human_typing_is_not_a_scan():
    events = keys.type_text("12345678", keymap="us", key_gap=0.25)
    assert [r for r in decode(events) if r.kind == "scan"] == []


def test_fast_burst_after_human_pause_drops_the_typed_part():
    human = keys.type_text("99", keymap="us", key_gap=0.3, suffix="none")
    scan = keys.type_text("ABCD1234", start=human[-1].time + 1.0)
    out = decode(human + scan)
    assert [(r.kind, r.text) for r in out if r.kind == "scan"] == [("scan", "ABCD1234")]


def test_too_short_is_not_a_scan():
    assert [r for r in decode(keys.type_text("ok")) if r.kind == "scan"] == []


def test_held_key_autorepeat_is_not_a_scan():
    events = keys.type_text("123456", repeat_at=2)
    assert [r for r in decode(events) if r.kind == "scan"] == []


def test_layout_mismatch_azerty_scanner_us_keymap_is_reported():
    out = decode(keys.type_text("4006381333931", keymap="fr"), keymap="us")
    assert [r.kind for r in out] == ["rejected"]
    assert out[0].report and "layout" in out[0].reason


def test_layout_mismatch_us_scanner_fr_keymap_is_reported():
    out = decode(keys.type_text("4006381333931", keymap="us"), keymap="fr")
    assert out[0].kind == "rejected" and out[0].report


def test_layout_mismatch_on_mixed_code_is_reported():
    # "ABC-123" from an AZERTY scanner decodes as "QBC6!@#" under us.
    out = decode(keys.type_text("ABC-123", keymap="fr"), keymap="us")
    assert out[0].kind == "rejected" and out[0].report


def test_code_with_a_few_symbols_is_still_a_scan():
    out = decode(keys.type_text("https://club.example/#v=1&x"))
    assert out[0].kind == "scan"


def test_driver_code_pattern_refuses_other_forms(tmp_path):
    fifo = keys.make_fifo(tmp_path / "scanner.events")
    r, log = _reader(fifo, role="barcode", code_pattern=r"CLUB-[0-9]+")
    try:
        since = log.mark()
        keys.write_events(fifo, keys.type_text("QLUB6123"))
        assert isinstance(log.card(since), ReadFailed)
        since = log.mark()
        keys.write_events(fifo, keys.type_text("CLUB-123"))
        assert log.card(since).token == "code:CLUB-123"
    finally:
        r.stop()


def test_unknown_key_code_is_reported_not_a_bogus_token():
    events = keys.type_text("<ab>", keymap="fr")      # KEY_102ND: not on a US keyboard
    out = decode(events, keymap="us")
    assert out[0].kind == "rejected" and "not in keymap" in out[0].reason


def test_suffix_none_ends_on_silence_and_tab_suffix():
    out = decode(keys.type_text("XY1234", suffix="none"), suffix="none")
    assert out[0].text == "XY1234"
    events = keys.type_text("XY1234", suffix="none")
    t = events[-1].time + 0.005
    tab = [KeyEvent(t, 1, keymaps.KEY_TAB, 1), KeyEvent(t, 1, keymaps.KEY_TAB, 0)]
    out = decode(events + tab, suffix="tab")
    assert out[0].text == "XY1234"


def test_event_line_format_round_trip():
    e = KeyEvent(1700000000.123456, 1, 30, 1)
    assert parse_event_line(format_event_line(e)) == e
    assert parse_event_line("# comment") is None
    with pytest.raises(ReaderError):
        parse_event_line("1 2 3")


def _reader(path, **kw):
    log = EventLog()
    r = EvdevReader("scanner", str(path), PAN_KEY, backoff=Backoff(0.05, 0.2), **kw)
    r.start(log)
    log.state("ready")
    return r, log


def test_driver_reads_replayed_barcode_from_fifo(tmp_path):
    fifo = keys.make_fifo(tmp_path / "scanner.events")
    r, log = _reader(fifo, role="barcode")
    try:
        since = log.mark()
        keys.write_events(fifo, keys.type_text("ABC-123"))
        event = log.card(since)
        assert isinstance(event, CardPresented)
        assert event.token == tokens.code_token("ABC-123") and event.source == "hid"
        since = log.mark()
        keys.write_events(fifo, keys.type_text("ABC-124"))   # writer comes and goes
        assert log.card(since).token == tokens.code_token("ABC-124")
    finally:
        r.stop()


def test_same_product_scanned_twice_quickly_counts_twice_a_swipe_once(tmp_path):
    # Seen: a barcode scanned again 0.7 s later counted once (the card debounce,
    # 1.5 s, applied to product scans).
    debouncer = Debouncer(1500)
    scanner_fifo = keys.make_fifo(tmp_path / "scanner.events")
    msr_fifo = keys.make_fifo(tmp_path / "msr.events")
    scanner, scans = _reader(scanner_fifo, role="barcode", debouncer=debouncer)
    msr, swipes = _reader(msr_fifo, role="card", debouncer=debouncer)
    try:
        for _ in range(2):
            since = scans.mark()
            keys.write_events(scanner_fifo, keys.type_text("4006381333931"))
            assert scans.card(since).token == tokens.code_token("4006381333931")
        since = swipes.mark()
        keys.write_events(msr_fifo, keys.type_text(TRACKS))
        swipe = swipes.card(since)
        assert isinstance(swipe, CardPresented) and swipe.token_kind == "pan"
        since = swipes.mark()
        keys.write_events(msr_fifo, keys.type_text(TRACKS))
        with pytest.raises(AssertionError):
            swipes.card(since, timeout=1.0)   # the same card within 1.5 s: once
    finally:
        scanner.stop()
        msr.stop()


def test_driver_card_role_swipe_to_pan_token(tmp_path):
    fifo = keys.make_fifo(tmp_path / "msr.events")
    r, log = _reader(fifo, role="card", keymap="fr")
    try:
        since = log.mark()
        keys.write_events(fifo, keys.type_text(TRACKS, keymap="fr"))
        event = log.card(since)
        assert isinstance(event, CardPresented) and event.source == "msr"
        assert event.token == tokens.pan_token(PAN_KEY, "4111111111111111")
    finally:
        r.stop()


def test_driver_layout_mismatch_gives_read_again(tmp_path):
    fifo = keys.make_fifo(tmp_path / "msr.events")
    r, log = _reader(fifo, role="card", keymap="us")
    try:
        since = log.mark()
        keys.write_events(fifo, keys.type_text(TRACKS, keymap="fr"))
        event = log.card(since)
        assert isinstance(event, ReadFailed) and "layout" in event.message
        assert "4111" not in event.message
    finally:
        r.stop()


def test_driver_slow_typing_in_real_time_gives_no_event(tmp_path):
    fifo = keys.make_fifo(tmp_path / "scanner.events")
    r, log = _reader(fifo, role="barcode")
    try:
        keys.write_events(fifo, keys.now_events(keys.type_text("1234", key_gap=0.15)),
                          realtime=True)
        since = log.mark()
        keys.write_events(fifo, keys.type_text("5678"))
        assert log.card(since).token == "code:5678"
        assert len(log.cards()) == 1
    finally:
        r.stop()


def test_driver_opens_by_glob(tmp_path):
    fifo = keys.make_fifo(tmp_path / "usb-Scanner_1234-event-kbd")
    r, log = _reader(tmp_path / "usb-*-event-kbd", role="barcode")
    try:
        keys.write_events(fifo, keys.type_text("GLOB1"))
        assert log.card().token == "code:GLOB1"
    finally:
        r.stop()


class FlakySource:
    """An event source that is unplugged after its events (then plugged back)."""

    opened = 0

    def __init__(self, path):
        FlakySource.opened += 1
        self.first = FlakySource.opened == 1
        self.events = keys.type_text("FIRST1" if self.first else "SECOND2")
        self.done = threading.Event()

    caps_lock = False

    def read(self, timeout):
        if self.events:
            events, self.events = self.events, []
            return events
        if self.first:
            raise ReaderError("the device is gone: No such device")
        self.done.wait(timeout)
        return []

    def close(self):
        pass


def test_driver_survives_unplug_replug():
    FlakySource.opened = 0
    log = EventLog()
    r = EvdevReader("scanner", "/dev/input/by-id/usb-x-event-kbd", PAN_KEY, role="barcode",
                    backoff=Backoff(0.05, 0.2), source_factory=FlakySource)
    r.start(log)
    try:
        log.state("error")
        second = log.wait(lambda e: getattr(e, "token", "") == "code:SECOND2")
        assert second is not None and FlakySource.opened == 2
        assert [e.token for e in log.cards()] == ["code:FIRST1", "code:SECOND2"]
    finally:
        r.stop()


def test_replay_file_reads_to_the_end(tmp_path):
    path = tmp_path / "rec.events"
    keys.write_events(path, keys.type_text("FILE01"))
    src = ReplaySource(str(path))
    got = []
    for _ in range(5):
        got += src.read(0.01)
    src.close()
    assert len(got) == len(keys.type_text("FILE01"))


_US_CHARS = "".join(sorted({c for lv in keymaps.KEYMAPS["us"].keys.values() for c in lv[:2]
                            if c and c != " "}))
_FR_CHARS = "".join(sorted({c for lv in keymaps.KEYMAPS["fr"].keys.values() for c in lv
                            if c and c != " "}))


@pytest.mark.parametrize("keymap,alphabet", [("us", _US_CHARS), ("fr", _FR_CHARS)])
def test_any_text_typed_at_scanner_speed_decodes_back(keymap, alphabet):
    from hypothesis import given, settings
    from hypothesis import strategies as st

    @settings(max_examples=150)
    @given(text=st.text(alphabet=alphabet, min_size=4, max_size=60),
           caps=st.booleans(), gap=st.floats(min_value=0.001, max_value=0.07))
    def check(text, caps, gap):
        km = keymaps.get_keymap(keymap)
        if keymaps.looks_like_layout_mismatch(text, km):
            return
        out = decode(keys.type_text(text, keymap=keymap, caps_lock_on=caps, key_gap=gap),
                     keymap=keymap)
        assert [(r.kind, r.text) for r in out] == [("scan", text)]

    check()


class _FakeInputDevice:
    """Stands in for evdev.InputDevice: there is no /dev/input on the test machine."""

    instances: ClassVar[list["_FakeInputDevice"]] = []

    def __init__(self, path):
        import os as _os

        self.path = path
        self.r, self.w = _os.pipe()
        self.fd = self.r
        self.grabbed = False
        self.gone = False
        _FakeInputDevice.instances.append(self)

    def grab(self):
        self.grabbed = True

    def ungrab(self):
        self.grabbed = False

    def leds(self):
        return [1]                                       # LED_CAPSL on

    def read(self):
        import os as _os

        _os.read(self.r, 1)
        if self.gone:
            raise OSError(19, "No such device")
        return []

    def close(self):
        import os as _os

        for fd in (self.r, self.w):
            try:
                _os.close(fd)
            except OSError:
                pass


def test_evdev_source_grabs_reads_caps_led_and_reports_unplug(monkeypatch):
    import types

    from agent.drivers.evdev import EvdevSource

    fake = types.SimpleNamespace(InputDevice=_FakeInputDevice,
                                 ecodes=types.SimpleNamespace(LED_CAPSL=1))
    monkeypatch.setitem(__import__("sys").modules, "evdev", fake)
    source = EvdevSource("/dev/input/by-id/usb-x-event-kbd")
    device = _FakeInputDevice.instances[-1]
    assert device.grabbed and source.caps_lock
    assert source.read(0.01) == []
    device.gone = True
    __import__("os").write(device.w, b"x")
    with pytest.raises(ReaderError, match="gone"):
        source.read(1.0)
    source.close()
    assert not device.grabbed


# --- card data on the scanner (issue #13, item 4) -------------------------------------

SWIPE = "%B4111111111111111^DOE/J^25121010000000000000?"


@pytest.mark.parametrize("typed, source", [
    (SWIPE, "msr"),                                  # a wedge card reader taken for the scanner
    (TRACKS, "msr"),                                 # both tracks in one burst
    ("4111 1111 1111 1111", "hid"),                  # a card number scanned or typed
    ("4111-1111-1111-1111", "hid"),
])
def test_scanner_role_turns_card_data_into_a_card_read(tmp_path, typed, source):
    fifo = keys.make_fifo(tmp_path / "scanner.events")
    r, log = _reader(fifo, role="barcode", code_pattern="CLUB-[0-9]+")
    try:
        since = log.mark()
        keys.write_events(fifo, keys.type_text(typed))
        event = log.card(since)
        assert isinstance(event, CardPresented), event
        assert event.token == tokens.pan_token(PAN_KEY, "4111111111111111")
        assert event.token_kind == "pan" and event.source == source
        assert event.masked == "411111******1111"
        assert all(not getattr(e, "token", "").startswith("code:") for e in log.events)
        assert "4111111111111111" not in repr(log.events)
    finally:
        r.stop()


def test_scanner_role_without_pan_key_drops_card_data():
    from agent.drivers.serial import code_event

    for text in (SWIPE, "4111 1111 1111 1111", ";4111111111111111=2512101?"):
        event = code_event(text, reader="scanner")
        assert isinstance(event, ReadFailed) and "card" in event.message
        assert "4111" not in event.message


def test_scanner_role_broken_swipe_is_read_again_not_a_code():
    from agent.drivers.serial import code_event

    # Track 1 start, a PAN that fails its check digit: track data all the same.
    event = code_event("%B4111111111111112^DOE/J^2512101?", reader="scanner", pan_key=PAN_KEY)
    assert isinstance(event, ReadFailed) and "4111" not in event.message


def test_ean13_and_club_codes_stay_codes():
    from agent.drivers.serial import code_event

    # EAN-13 barcodes, the second and third also Luhn-valid in card ranges.
    for text in ("4006381333931", "4006380000094", "6260100000094", "CLUB-000123"):
        event = code_event(text, reader="scanner", pan_key=PAN_KEY)
        assert isinstance(event, CardPresented) and event.token == "code:" + text


def test_glob_matching_two_devices_is_refused_naming_them(tmp_path):
    keys.make_fifo(tmp_path / "usb-Mag-Tek_Swipe-event-kbd")
    keys.make_fifo(tmp_path / "usb-Scanner_1234-event-kbd")
    log = EventLog()
    r = EvdevReader("scanner", str(tmp_path / "usb-*-event-kbd"), PAN_KEY, role="barcode",
                    backoff=Backoff(0.05, 0.2))
    r.start(log)
    try:
        state = log.state("error")
        assert "2 devices match" in state.detail
        assert "usb-Mag-Tek_Swipe-event-kbd" in state.detail
        assert "usb-Scanner_1234-event-kbd" in state.detail and "by-id" in state.detail
        assert not log.cards()
    finally:
        r.stop()
