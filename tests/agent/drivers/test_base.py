"""The reader state machine, backoff, debounce, and build_readers."""

import threading
import time

import pytest

from agent.config import Profile, ReaderSpec, load_profile
from agent.drivers import build_readers
from agent.drivers.base import Backoff, Debouncer, ThreadedReader
from agent.drivers.evdev import EvdevReader
from agent.drivers.events import CardPresented, ReaderState
from agent.drivers.pcsc import PcscReader
from agent.drivers.serial import SerialReader
from agent.errors import ConfigError, ReaderError
from tests.agent.drivers.collector import EventLog


def card(token="code:X"):
    return CardPresented("hid", "r", token, token.split(":", 1)[0], "X", None)


def test_backoff_doubles_and_caps():
    b = Backoff(0.5, 3.0)
    assert [b.next_delay() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    b.reset()
    assert b.next_delay() == 0.5


def test_debouncer_window():
    now = [100.0]
    d = Debouncer(1500, clock=lambda: now[0])
    assert d.accept("a") and not d.accept("a") and d.accept("b")
    now[0] += 1.6
    assert d.accept("a")
    assert Debouncer(0).accept("a") and Debouncer(0).accept("a")


class Failing(ThreadedReader):
    kind = "test"

    def __init__(self, name, exc):
        super().__init__(name, backoff=Backoff(0.02, 0.05))
        self.exc = exc
        self.opens = 0

    def open(self):
        self.opens += 1
        raise self.exc


class Working(ThreadedReader):
    kind = "test"

    def serve(self):
        self.emit(card())
        self.stopping.wait()


def test_failing_readers_never_stop_another():
    log = EventLog()
    bad = Failing("bad", ReaderError("unplugged"))
    buggy = Failing("buggy", ZeroDivisionError())
    good = Working("good")
    for r in (bad, buggy, good):
        r.start(log)
    try:
        log.wait(lambda e: isinstance(e, CardPresented))
        log.wait(lambda e: isinstance(e, ReaderState) and e.name == "buggy"
                 and "ZeroDivisionError" in e.detail)
        deadline = time.monotonic() + 5
        while (bad.opens < 2 or buggy.opens < 2) and time.monotonic() < deadline:
            time.sleep(0.01)          # each one failed, waited, and tried again
        assert good.state.state == "ready"
    finally:
        for r in (bad, buggy, good):
            r.stop()
    assert bad.opens >= 2 and buggy.opens >= 2
    states = [e.state for e in log.events if isinstance(e, ReaderState) and e.name == "bad"][:4]
    assert states == ["connecting", "error", "retry", "connecting"]


def test_consumer_failure_does_not_kill_the_reader():
    calls = []
    done = threading.Event()

    def emit(event):
        calls.append(event)
        if isinstance(event, CardPresented):
            done.set()
            raise RuntimeError("consumer bug")

    r = Working("good")
    r.start(emit)
    assert done.wait(5)
    r.stop()
    assert r.state.state == "ready"


def test_debounced_emit():
    log = EventLog()
    r = ThreadedReader("r", debouncer=Debouncer(10_000))
    r._emit = log
    r.emit(card("nfc:A"))
    r.emit(card("nfc:A"))
    r.emit(card("nfc:B"))
    assert [e.token for e in log.cards()] == ["nfc:A", "nfc:B"]


def test_scanned_codes_are_never_debounced():
    # Two scans of one product are two of it (issue: a barcode scanned 0.7 s
    # apart counted once).
    log = EventLog()
    r = ThreadedReader("r", debouncer=Debouncer(10_000))
    r._emit = log
    r.emit(card("code:4006381333931"))
    r.emit(card("code:4006381333931"))
    assert [e.token for e in log.cards()] == ["code:4006381333931"] * 2


def test_build_readers_from_sim_profile():
    profile = load_profile("sim")

    class Cfg:
        debounce_ms = 1500

    Cfg.profile = profile
    readers = build_readers(Cfg, bytes(32))
    kinds = {r.name: type(r) for r in readers}
    assert kinds == {"chip": PcscReader, "msr": SerialReader, "scanner": EvdevReader}
    assert readers[0].debouncer is readers[1].debouncer
    only = build_readers(Cfg, bytes(32), only="scanner")
    assert [r.name for r in only] == ["scanner"]
    with pytest.raises(ConfigError, match="no reader named"):
        build_readers(Cfg, bytes(32), only="nope")


def test_build_readers_checks_options():
    spec = ReaderSpec(name="w", kind="evdev", role="barcode", device="/x", keymap="klingon")

    class Cfg:
        debounce_ms = 0
        profile = Profile("p", "", (spec,), "p.toml")

    with pytest.raises(ConfigError, match="unknown keymap"):
        build_readers(Cfg, bytes(32))
    spec2 = ReaderSpec(name="s", kind="serial", role="card", device="/x", options={"gap_ms": "x"})
    Cfg.profile = Profile("p", "", (spec2,), "p.toml")
    with pytest.raises(ConfigError, match="gap_ms"):
        build_readers(Cfg, bytes(32))
