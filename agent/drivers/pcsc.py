"""PC/SC readers (pyscard): chip and contactless bank cards, NFC club tags.

The reader thread watches pcscd with ``SCardGetStatusChange`` (including the
``\\\\?PnP?\\Notification`` pseudo-reader, so readers plugged in later are seen),
reads each card once when it arrives, and waits for it to leave. pcscd going
away (restart, crash) or a reader unplugged is a ReaderError handled by the state
machine in :mod:`agent.drivers.base`: the driver reconnects by itself.

pyscard is used through its low-level ``smartcard.scard`` module; its result
codes and exceptions are turned into :class:`~agent.errors.ReaderError` here and
nowhere else. The APDU protocol lives in :mod:`agent.drivers.bankcard` and
:mod:`agent.drivers.nfctag`, over the transport defined in :mod:`agent.drivers.apdu`.
"""

from __future__ import annotations

import fnmatch
import logging
import os
from collections.abc import Callable
from datetime import date
from typing import Any

from agent.carddata import luhn, tokens
from agent.drivers import bankcard, nfctag
from agent.drivers.apdu import ApduTransport, CardChannel, CardRemoved, Protocol_
from agent.drivers.base import Backoff, Debouncer, ThreadedReader
from agent.drivers.events import READ_AGAIN, CardPresented, ReadFailed
from agent.errors import CardDataError, ReaderError

log = logging.getLogger(__name__)

PNP = "\\\\?PnP?\\Notification"


def _scard() -> Any:
    try:
        from smartcard import scard
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ReaderError("pyscard is not installed (pip install 'clubterm[pcsc]')") from exc
    return scard


def _code(hr: int) -> int:
    return hr & 0xFFFFFFFF


def _message(scard: Any, hr: int) -> str:
    try:
        return str(scard.SCardGetErrorMessage(hr)).strip().rstrip(".")
    except Exception:
        return f"PC/SC error {_code(hr):08X}"


# PC/SC result codes (winscard), as unsigned 32-bit values.
E_CANCELLED = 0x80100002
E_UNKNOWN_READER = 0x80100009
E_TIMEOUT = 0x8010000A
E_NO_SMARTCARD = 0x8010000C
E_NO_READERS_AVAILABLE = 0x8010002E
W_REMOVED_CARD = 0x80100069
# Codes meaning "the card went away" (during connect or transmit): removed, no card,
# reset, not transacted, unresponsive, communication data lost, communication error.
_CARD_GONE = {W_REMOVED_CARD, E_NO_SMARTCARD, 0x80100068, 0x80100016, 0x80100066, 0x8010002F,
              0x80100013}
# Codes meaning "pcscd or the context is gone": no service, service stopped, invalid
# handle, reader unavailable, internal error. The state machine reconnects.
_SERVICE_GONE = {0x8010001D, 0x8010001E, 0x80100003, 0x80100017, 0x80100001}


def _call(function: Callable[..., Any], *args: Any) -> Any:
    """Call a pyscard function; its exceptions become ReaderError here."""
    try:
        return function(*args)
    except Exception as exc:  # pyscard raises its own or SWIG errors on misuse
        raise ReaderError(f"PC/SC call {getattr(function, '__name__', '?')} failed: {exc}") \
            from None


class PyscardTransport:
    """The real :class:`~agent.drivers.apdu.ApduTransport`: one connected card."""

    def __init__(self, hcard: Any, protocol: int, atr: bytes):
        self.scard = _scard()
        self.hcard = hcard
        self._protocol = protocol
        self.atr = atr
        self.protocol: Protocol_ = (
            "T0" if protocol == self.scard.SCARD_PROTOCOL_T0
            else "T1" if protocol == self.scard.SCARD_PROTOCOL_T1 else "RAW"
        )

    def transmit(self, command: bytes) -> bytes:
        """Send one APDU; a lost card raises CardRemoved, other failures ReaderError."""
        try:
            hr, response = self.scard.SCardTransmit(self.hcard, self._protocol, list(command))
        except Exception as exc:  # pyscard raises on some internal errors
            raise ReaderError(f"PC/SC transmit failed: {exc}") from None
        if hr != self.scard.SCARD_S_SUCCESS:
            if _code(hr) in _CARD_GONE:
                raise CardRemoved(_message(self.scard, hr))
            raise ReaderError(f"PC/SC transmit failed: {_message(self.scard, hr)}")
        return bytes(response)


def read_presented_card(transport: ApduTransport, *, reader: str, pan_key: bytes,
                        terminal: bankcard.TerminalData, read_ndef: bool = True,
                        diagnostics: bool = False) -> CardPresented | ReadFailed:
    """Read whatever card is on ``transport`` and turn it into an event.

    A PC/SC storage-card ATR means an NFC tag (UID token, NDEF info); otherwise
    EMV (PPSE first on a contactless ATR, PSE on a contact one). A contactless
    card with no payment application is taken as a club card by its UID.
    """
    channel = CardChannel(transport)
    try:
        if nfctag.is_storage_card_atr(transport.atr):
            return _tag_event(nfctag.read_tag(channel, ndef=read_ndef), reader)
        contactless = nfctag.is_contactless_atr(transport.atr)
        try:
            card = bankcard.read_bank_card(channel, terminal, contactless=contactless)
        except bankcard.NoBankApplication:
            if not contactless:
                return ReadFailed("pcsc", reader,
                                  f"{READ_AGAIN}: this chip card has no payment application")
            return _tag_event(nfctag.read_tag(channel, ndef=False), reader)
        pan = card.pan
        if not luhn.luhn_valid(pan):
            return ReadFailed("pcsc", reader, f"{READ_AGAIN}: the card number read is not valid")
        token = tokens.pan_token(pan_key, pan)
        return CardPresented(
            source="pcsc", reader=reader, token=token, token_kind=tokens.token_kind(token),
            masked=luhn.mask_pan(pan), bin6=pan[:6], apdus=channel.count,
            expiry=card.expiry if diagnostics else None,
        )
    except CardRemoved:
        return ReadFailed("pcsc", reader, f"{READ_AGAIN}: the card was taken away during the read")
    except CardDataError as exc:
        return ReadFailed("pcsc", reader, f"{READ_AGAIN}: {exc}")
    except ReaderError as exc:
        return ReadFailed("pcsc", reader, f"{READ_AGAIN}: {exc}")


def _tag_event(tag: nfctag.NfcTag, reader: str) -> CardPresented:
    token = tokens.nfc_token(tag.uid)
    return CardPresented(
        source="nfc", reader=reader, token=token, token_kind=tokens.token_kind(token),
        masked=tag.uid.hex().upper(), bin6=None, apdus=tag.apdus, info=tag.info,
    )


class PcscReader(ThreadedReader):
    """Every pcscd reader whose name matches ``pattern`` (fnmatch), with hot-plug."""

    kind = "pcsc"
    REPORTS_READY = True
    POLL_MS = 1000

    def __init__(self, name: str, pattern: str, pan_key: bytes, *,
                 debouncer: Debouncer | None = None, backoff: Backoff | None = None,
                 country: int = 840, currency: int = 840, read_ndef: bool = True,
                 diagnostics: bool = False,
                 today: Callable[[], date] = date.today):
        super().__init__(name, debouncer=debouncer, backoff=backoff)
        self.pattern = pattern
        self.pan_key = pan_key
        self.country = country
        self.currency = currency
        self.read_ndef = read_ndef
        self.diagnostics = diagnostics
        self.today = today
        self.scard: Any = None
        self.context: Any = None
        self.watched: dict[str, int] = {}
        self.pnp_state = 0

    # -- state machine hooks ------------------------------------------------
    def open(self) -> None:
        """Establish a PC/SC context (pcscd must be running)."""
        if self.scard is None:
            self.scard = _scard()      # no pyscard: this reader is in error, nothing else
        hr, ctx = _call(self.scard.SCardEstablishContext, self.scard.SCARD_SCOPE_USER)
        if hr != self.scard.SCARD_S_SUCCESS:
            raise ReaderError(f"pcscd is not reachable: {_message(self.scard, hr)}")
        self.context = ctx
        self.watched = {}
        self._refresh_readers()

    def close(self) -> None:
        """Release the context."""
        if self.context is not None:
            try:
                self.scard.SCardReleaseContext(self.context)
            except Exception:
                log.debug("SCardReleaseContext failed", exc_info=True)
            self.context = None

    def interrupt(self) -> None:
        """Abort a pending SCardGetStatusChange."""
        ctx = self.context
        if ctx is not None:
            try:
                self.scard.SCardCancel(ctx)
            except Exception:
                log.debug("SCardCancel failed", exc_info=True)

    def serve(self) -> None:
        """Watch readers and cards until stopped or pcscd goes away."""
        while not self.stopping.is_set():
            states = [*self.watched.items(), (PNP, self.pnp_state)]
            hr, changes = _call(self.scard.SCardGetStatusChange, self.context, self.POLL_MS,
                                states)
            code = _code(hr)
            if code in (E_TIMEOUT, E_CANCELLED):
                continue
            if code == E_UNKNOWN_READER:                 # it was unplugged meanwhile
                self._refresh_readers()
                continue
            if hr != self.scard.SCARD_S_SUCCESS:
                raise ReaderError(f"pcscd: {_message(self.scard, hr)}")
            relist = False
            for reader, event_state, _atr in changes:
                if reader == PNP:
                    if event_state & self.scard.SCARD_STATE_CHANGED:
                        relist = True
                    self.pnp_state = event_state & ~self.scard.SCARD_STATE_CHANGED
                    continue
                if event_state & (self.scard.SCARD_STATE_UNKNOWN
                                  | self.scard.SCARD_STATE_UNAVAILABLE):
                    relist = True
                    continue
                before = self.watched.get(reader, 0)
                self.watched[reader] = event_state & ~self.scard.SCARD_STATE_CHANGED
                present = self.scard.SCARD_STATE_PRESENT
                if event_state & present and not before & present \
                        and not event_state & self.scard.SCARD_STATE_MUTE:
                    self._read(reader)
            if relist:
                self._refresh_readers()

    # -- helpers ------------------------------------------------------------
    def _refresh_readers(self) -> None:
        hr, names = _call(self.scard.SCardListReaders, self.context, [])
        code = _code(hr)
        if code == E_NO_READERS_AVAILABLE:
            names = []
        elif hr != self.scard.SCARD_S_SUCCESS:
            raise ReaderError(f"pcscd: {_message(self.scard, hr)}")
        matching = [n for n in names if fnmatch.fnmatchcase(n, self.pattern)]
        old = self.watched
        # Unaware for new readers: the first status call reports a card already there.
        self.watched = {n: old.get(n, self.scard.SCARD_STATE_UNAWARE) for n in matching}
        if matching:
            self.set_state("ready", ", ".join(matching))
        else:
            self.set_state("connecting", f"no reader matching {self.pattern!r} is plugged in")

    def _read(self, reader: str) -> None:
        sc = self.scard
        hr, hcard, protocol = _call(
            sc.SCardConnect, self.context, reader, sc.SCARD_SHARE_SHARED,
            sc.SCARD_PROTOCOL_T0 | sc.SCARD_PROTOCOL_T1,
        )
        if hr != sc.SCARD_S_SUCCESS:
            if _code(hr) in _SERVICE_GONE:
                raise ReaderError(f"pcscd: {_message(sc, hr)}")
            if _code(hr) not in (E_NO_SMARTCARD, W_REMOVED_CARD):   # gone already: say nothing
                self.emit(ReadFailed("pcsc", reader, f"{READ_AGAIN}: {_message(sc, hr)}"))
            return
        try:
            hr, _, _, _, atr = _call(sc.SCardStatus, hcard)
            atr_bytes = bytes(atr) if hr == sc.SCARD_S_SUCCESS else b""
            transport = PyscardTransport(hcard, protocol, atr_bytes)
            terminal = bankcard.TerminalData(
                today=self.today(), unpredictable=os.urandom(4),
                country=self.country, currency=self.currency,
            )
            event = read_presented_card(
                transport, reader=reader, pan_key=self.pan_key, terminal=terminal,
                read_ndef=self.read_ndef, diagnostics=self.diagnostics,
            )
        finally:
            try:
                sc.SCardDisconnect(hcard, sc.SCARD_LEAVE_CARD)
            except Exception:
                log.debug("SCardDisconnect failed", exc_info=True)
        if isinstance(event, ReadFailed):
            log.info("reader %s: %s", reader, event.message)
        self.emit(event)
