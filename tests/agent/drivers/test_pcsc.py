"""The pyscard driver against a real (isolated) pcscd with vpcd and hw_sim's cards."""

import time

import pytest

from agent.carddata import tokens
from agent.drivers.base import Backoff, Debouncer
from agent.drivers.events import CardPresented, ReadFailed
from agent.drivers.pcsc import PcscReader
from hw_sim import cards
from tests.agent.drivers.collector import EventLog

pytestmark = pytest.mark.needs_pcscd

PAN_KEY = bytes(range(32))


@pytest.fixture
def reader(pcscd):
    log = EventLog()
    r = PcscReader("chip", "Virtual PCD*", PAN_KEY, backoff=Backoff(0.1, 0.5))
    r.start(log)
    log.state("ready")
    log.wait(lambda e: getattr(e, "detail", "").startswith("Virtual PCD"))
    yield r, log
    r.stop()


def _tap(pcscd, log, card, timeout=10.0):
    since = log.mark()
    session = pcscd.insert(card)
    try:
        return log.card(since, timeout)
    finally:
        session.remove()
        pcscd.wait_card_state(present=False)


@pytest.mark.parametrize("name", list(cards.CARDS))
def test_each_virtual_card(pcscd, reader, name):
    _, log = reader
    info = cards.CARDS[name]
    event = _tap(pcscd, log, info.make())
    if not info.token_kind:
        assert isinstance(event, ReadFailed)
        assert event.message.startswith("read again")
        return
    assert isinstance(event, CardPresented), event
    assert event.token_kind == info.token_kind
    assert event.source == info.source
    assert event.apdus > 0
    if info.pan:
        assert event.token == tokens.pan_token(PAN_KEY, info.pan)
        assert event.masked == info.pan[:6] + "*" * (len(info.pan) - 10) + info.pan[-4:]
        assert event.bin6 == info.pan[:6]
        assert event.expiry is None          # only with diagnostics
        assert info.pan not in repr(event)
    else:
        assert event.token == tokens.nfc_token(bytes.fromhex(info.uid))
        # The tag's NDEF text: "Club member card", or "Staff badge" on the demo's
        # staff badges.
        assert event.info == info.make().text


def test_card_read_only_once_while_it_stays(pcscd, reader):
    _, log = reader
    since = log.mark()
    session = pcscd.insert(cards.mastercard())
    log.card(since)
    time.sleep(1.0)
    session.remove()
    pcscd.wait_card_state(present=False)
    assert len(log.cards()[since:]) <= 1 and len([e for e in log.events[since:]
                                                  if isinstance(e, CardPresented)]) == 1


def test_diagnostics_adds_expiry(pcscd):
    log = EventLog()
    r = PcscReader("chip", "Virtual PCD*", PAN_KEY, diagnostics=True)
    r.start(log)
    try:
        log.wait(lambda e: getattr(e, "detail", "").startswith("Virtual PCD"))
        event = _tap(pcscd, log, cards.visa_contact())
        assert isinstance(event, CardPresented) and event.expiry == cards.EXPIRY
        assert "2812" not in repr(event)
    finally:
        r.stop()


def test_debounce_same_card_twice_gives_one_event(pcscd):
    log = EventLog()
    r = PcscReader("chip", "Virtual PCD*", PAN_KEY, debouncer=Debouncer(60_000))
    r.start(log)
    try:
        log.wait(lambda e: getattr(e, "detail", "").startswith("Virtual PCD"))
        first = _tap(pcscd, log, cards.visa_contactless())
        assert isinstance(first, CardPresented)
        time.sleep(0.6)
        second_card = pcscd.insert(cards.visa_contactless())
        time.sleep(1.5)
        second_card.remove()
        pcscd.wait_card_state(present=False)
        other = _tap(pcscd, log, cards.mastercard())     # a different card still passes
        presented = [e for e in log.cards() if isinstance(e, CardPresented)]
        assert [e.token for e in presented] == [first.token, other.token]
    finally:
        r.stop()


def test_pcscd_restart_recovers_by_itself(pcscd, reader):
    _, log = reader
    since = log.mark()
    pcscd.restart()
    log.state("error", since, timeout=15)
    log.wait(lambda e: getattr(e, "detail", "").startswith("Virtual PCD"), since=since, timeout=15)
    event = _tap(pcscd, log, cards.visa_contactless())
    assert isinstance(event, CardPresented) and event.token_kind == "pan"


def test_reader_unplugged_and_plugged_back(pcscd, reader):
    _, log = reader
    since = log.mark()
    pcscd.unplug_reader()
    log.wait(lambda e: "no reader matching" in getattr(e, "detail", ""), since=since, timeout=15)
    since = log.mark()
    pcscd.plug_reader()
    log.wait(lambda e: getattr(e, "detail", "").startswith("Virtual PCD"), since=since, timeout=15)
    event = _tap(pcscd, log, cards.nfc_club())
    assert isinstance(event, CardPresented) and event.source == "nfc"


def test_no_pcscd_at_start_then_it_comes(pcscd):
    pcscd.stop()
    log = EventLog()
    r = PcscReader("chip", "Virtual PCD*", PAN_KEY, backoff=Backoff(0.1, 0.4))
    r.start(log)
    try:
        log.state("error", timeout=10)
        log.state("retry", timeout=10)
        pcscd.start()
        log.wait(lambda e: getattr(e, "detail", "").startswith("Virtual PCD"), timeout=15)
        event = _tap(pcscd, log, cards.mastercard())
        assert isinstance(event, CardPresented)
    finally:
        r.stop()


def test_t0_card_gets_t0_framing_through_pcscd(pcscd, reader):
    _, log = reader
    since = log.mark()
    session = pcscd.insert(cards.visa_contact())
    try:
        event = log.card(since)
    finally:
        session.remove()
        pcscd.wait_card_state(present=False)
    assert isinstance(event, CardPresented)
    # pcscd negotiated T=0 from the ATR: case-4 commands go without Le, data comes
    # by GET RESPONSE.
    assert session.commands[0].hex().upper() == "00A404000E315041592E5359532E4444463031"
    assert any(c[1] == 0xC0 for c in session.commands)
