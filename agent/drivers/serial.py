"""Serial magnetic stripe readers (and serial barcode scanners), via pyserial.

Transport and protocol are apart: :class:`SwipeFramer` is the pure protocol (bytes
in, complete swipes out) and :class:`SerialReader` only moves bytes from the port
into it. What the framer copes with, because serial readers do it:

* a swipe arrives in pieces (the UART delivers whatever is buffered);
* noise before or between swipes (line glitches at power-up, a reader's banner):
  bytes outside a swipe are dropped until a start sentinel ``%`` or ``;``;
* a half swipe (card pulled too fast, a start sentinel and then silence, or a
  new ``%`` before the end): reported as "read again", then resynchronised on the
  next start sentinel;
* readers that end a swipe with CR/LF and readers that send nothing after the
  last ``?``: a swipe also ends after ``gap_ms`` of silence.
"""

from __future__ import annotations

import glob
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from agent.carddata import detect, luhn, tokens, tracks
from agent.drivers.base import Backoff, Debouncer, ThreadedReader
from agent.drivers.events import READ_AGAIN, CardPresented, ReadFailed
from agent.errors import CardDataError, ReaderError

log = logging.getLogger(__name__)

MAX_SWIPE_CHARS = 512
MAX_MATCHES_SHOWN = 5
CARD_ON_SCANNER = ("a bank card was swiped or scanned on the code scanner; it is not kept "
                   "as a code - use the card reader")
_START = "%;"


@dataclass(frozen=True)
class Frame:
    """One complete swipe (``kind="swipe"``) or a broken one (``"partial"``).

    ``text`` of a swipe is track data: never log or keep it.
    """

    kind: Literal["swipe", "partial"]
    text: str = ""
    reason: str = ""

    def __repr__(self) -> str:
        return f"Frame({self.kind}, <{len(self.text)} chars>, {self.reason!r})"


class SwipeFramer:
    """Reassemble swipes from a byte stream. ``lines=True`` frames plain lines
    (for a serial barcode scanner) instead of sentinel-delimited swipes."""

    def __init__(self, *, lines: bool = False):
        self.lines = lines
        self.buf: list[str] = []
        self.in_frame = False

    def _reset(self) -> None:
        self.buf = []
        self.in_frame = False

    def _ends_complete(self) -> bool:
        text = "".join(self.buf).rstrip()
        # The end sentinel may be followed by one LRC character.
        return text.endswith("?") or (len(text) >= 2 and text[-2] == "?")

    def _finish(self, out: list[Frame]) -> None:
        text = "".join(self.buf)
        if self.lines:
            if text.strip():
                out.append(Frame("swipe", text.strip()))
        elif self._ends_complete():
            out.append(Frame("swipe", text))
        else:
            out.append(Frame("partial", reason="the swipe was cut short"))
        self._reset()

    def feed(self, data: bytes) -> list[Frame]:
        """Take the bytes just received; return the frames they complete."""
        out: list[Frame] = []
        for byte in data:
            ch = chr(byte)
            if ch in "\r\n":
                if self.in_frame:
                    self._finish(out)
                continue
            printable = 0x20 <= byte < 0x7F
            if not self.in_frame:
                if self.lines and printable:
                    self.in_frame = True
                    self.buf.append(ch)
                elif ch in _START:
                    self.in_frame = True
                    self.buf.append(ch)
                continue                       # noise outside a swipe: dropped
            if not printable:
                # Line noise inside a swipe: it cannot be trusted; wait for the next one.
                out.append(Frame("partial", reason="noise on the line"))
                self._reset()
                continue
            if ch == "%" and not self.lines:
                # A new track 1 starts: the previous swipe is over, complete or not.
                self._finish(out)
                self.in_frame = True
            self.buf.append(ch)
            if len(self.buf) > MAX_SWIPE_CHARS:
                out.append(Frame("partial", reason="too long for a swipe"))
                self._reset()
        return out

    def idle(self) -> list[Frame]:
        """The line was silent for the inter-character gap: end any frame in progress."""
        out: list[Frame] = []
        if self.in_frame:
            self._finish(out)
        return out


def swipe_event(text: str, *, reader: str, source: Literal["msr"], pan_key: bytes,
                diagnostics: bool = False) -> CardPresented | ReadFailed:
    """Turn swipe text into an event (the text is dropped right after)."""
    try:
        swipe = tracks.parse_swipe(text)
        pan = swipe.pan
        token = tokens.pan_token(pan_key, pan)
        return CardPresented(
            source=source, reader=reader, token=token, token_kind=tokens.token_kind(token),
            masked=luhn.mask_pan(pan), bin6=pan[:6],
            expiry=swipe.expiry if diagnostics else None,
        )
    except CardDataError as exc:
        return ReadFailed(source, reader, f"{READ_AGAIN}: {exc}")


def code_event(text: str, *, reader: str, pan_key: bytes | None = None,
               diagnostics: bool = False) -> CardPresented | ReadFailed:
    """Turn a scanned code into an event; card data never becomes a ``code:`` token.

    A scanner-role reader may be sent a swipe (a wedge card reader taken for the
    scanner) or a card number (scanned or typed): track data is read as a swipe
    (``pan:`` token, masked), a bare card number becomes a ``pan:`` token too
    (source ``hid``); without a ``pan_key`` either is dropped as a failed read.
    """
    found = detect.find_card_data(text)
    if found is not None:
        if pan_key is None:
            return ReadFailed("hid", reader, f"{READ_AGAIN}: {CARD_ON_SCANNER}")
        if found.kind == "track":
            return swipe_event(text, reader=reader, source="msr", pan_key=pan_key,
                               diagnostics=diagnostics)
        pan = found.pan or ""
        try:
            token = tokens.pan_token(pan_key, pan)
        except CardDataError as exc:
            return ReadFailed("hid", reader, f"{READ_AGAIN}: {exc}")
        return CardPresented(source="hid", reader=reader, token=token,
                             token_kind=tokens.token_kind(token), masked=luhn.mask_pan(pan),
                             bin6=pan[:6])
    try:
        token = tokens.code_token(text)
    except CardDataError as exc:
        return ReadFailed("hid", reader, f"{READ_AGAIN}: {exc}")
    shown = text.strip()
    return CardPresented(source="hid", reader=reader, token=token,
                         token_kind=tokens.token_kind(token),
                         masked=shown if len(shown) <= 64 else shown[:61] + "...", bin6=None)


def resolve_device(pattern: str) -> str:
    """The one device a path or glob names.

    A glob must match exactly one device: with several, which one would be "the
    scanner" depends on plug order (a wedge card reader could be taken for it),
    so the reader refuses to start and names the matches. Name the device by its
    ``/dev/input/by-id/`` path (docs/readers.md).
    """
    if any(c in pattern for c in "*?["):
        found = sorted(glob.glob(pattern))
        if not found:
            raise ReaderError(f"no device matches {pattern}")
        if len(found) > 1:
            shown = ", ".join(found[:MAX_MATCHES_SHOWN])
            more = f" and {len(found) - MAX_MATCHES_SHOWN} more" \
                if len(found) > MAX_MATCHES_SHOWN else ""
            raise ReaderError(
                f"{len(found)} devices match {pattern} ({shown}{more}); set the reader's "
                "device to the one stable path (/dev/input/by-id/... or a udev symlink) "
                "so no other device can take its role")
        return found[0]
    return pattern


class SerialReader(ThreadedReader):
    """A serial magstripe reader (role "card") or barcode scanner (role "barcode")."""

    kind = "serial"

    def __init__(self, name: str, device: str, pan_key: bytes, *, role: str = "card",
                 baud: int = 9600, bytesize: int = 8, parity: str = "N", stopbits: int = 1,
                 gap_ms: int = 200, debouncer: Debouncer | None = None,
                 backoff: Backoff | None = None, diagnostics: bool = False,
                 serial_factory: Callable[..., Any] | None = None):
        super().__init__(name, debouncer=debouncer, backoff=backoff)
        self.device = device
        self.pan_key = pan_key
        self.role = role
        self.settings = {"baudrate": baud, "bytesize": bytesize, "parity": parity,
                         "stopbits": stopbits}
        self.gap = gap_ms / 1000.0
        self.diagnostics = diagnostics
        self.serial_factory = serial_factory
        self.port: Any = None

    def open(self) -> None:
        """Open the port (a glob is resolved first)."""
        path = resolve_device(self.device)
        if not os.path.exists(path):
            raise ReaderError(f"{path} does not exist (unplugged?)")
        try:
            if self.serial_factory is None:
                import serial
                factory: Callable[..., Any] = serial.Serial
            else:
                factory = self.serial_factory
            self.port = factory(path, timeout=self.gap, **self.settings)
        except ImportError as exc:  # pragma: no cover
            raise ReaderError("pyserial is not installed") from exc
        except (OSError, ValueError) as exc:  # SerialException is an OSError
            raise ReaderError(f"cannot open {path}: {exc}") from None

    def close(self) -> None:
        """Close the port."""
        if self.port is not None:
            try:
                self.port.close()
            except Exception:
                log.debug("closing %s failed", self.device, exc_info=True)
            self.port = None

    def serve(self) -> None:
        """Read, frame and report until stopped or the port goes away."""
        framer = SwipeFramer(lines=self.role == "barcode")
        while not self.stopping.is_set():
            try:
                # One byte (waits up to gap_ms), then whatever else is buffered: a
                # swipe is reported as soon as it ends, not when a buffer fills.
                data = self.port.read(1)
                if data:
                    data += self.port.read(self.port.in_waiting)
            except (OSError, TypeError, AttributeError) as exc:
                # pyserial raises SerialException (an OSError) on unplug; TypeError or
                # AttributeError when the port was closed under it by stop().
                if self.stopping.is_set():
                    return
                raise ReaderError(f"{self.device}: {exc}") from None
            frames = framer.feed(data) if data else framer.idle()
            for frame in frames:
                self._report(frame)

    def _report(self, frame: Frame) -> None:
        if frame.kind == "partial":
            log.info("reader %s: %s", self.name, frame.reason)
            self.emit(ReadFailed("msr" if self.role == "card" else "hid", self.name,
                                 f"{READ_AGAIN}: {frame.reason}"))
            return
        if self.role == "barcode":
            self.emit(code_event(frame.text, reader=self.name, pan_key=self.pan_key,
                                 diagnostics=self.diagnostics))
        else:
            self.emit(swipe_event(frame.text, reader=self.name, source="msr",
                                  pan_key=self.pan_key, diagnostics=self.diagnostics))

    def interrupt(self) -> None:
        """The read times out every gap_ms; nothing more is needed."""
