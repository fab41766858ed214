"""APDU transport (bytes in, bytes out) and the ISO 7816-4 channel on top of it.

The transport is the only part that touches a reader: :class:`ApduTransport` has
one real implementation (``agent.drivers.pcsc.PyscardTransport``) and one fake
shipped here, :class:`ReplayTransport`, which replays recorded exchanges and
checks that every command written is exactly the recorded one. The protocol code
(EMV, NFC tags) only sees a :class:`CardChannel`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from agent.errors import ReaderError

Protocol_ = Literal["T0", "T1", "RAW"]


class ApduTransport(Protocol):
    """Send one command APDU, get the response (data + SW1 SW2)."""

    protocol: Protocol_
    atr: bytes

    def transmit(self, command: bytes) -> bytes:
        """Raise ReaderError when the card is gone or the reader fails."""
        ...


class CardRemoved(ReaderError):
    """The card left the field (or the reader) during the read."""


@dataclass(frozen=True)
class Response:
    """A response APDU split into data and status word."""

    data: bytes
    sw: int

    @property
    def ok(self) -> bool:
        """True for 9000."""
        return self.sw == 0x9000

    def __repr__(self) -> str:  # the data may be card data: never shown
        return f"Response(<{len(self.data)} bytes>, sw={self.sw:04X})"


def build_apdu(cla: int, ins: int, p1: int, p2: int, data: bytes = b"",
               le: int | None = None) -> bytes:
    """A short command APDU; ``le=0`` means "up to 256 bytes" (Le byte 00)."""
    out = bytes([cla, ins, p1, p2])
    if data:
        if len(data) > 255:
            raise ValueError("short APDUs carry at most 255 data bytes")
        out += bytes([len(data)]) + data
    if le is not None:
        out += bytes([le & 0xFF])
    return out


class CardChannel:
    """ISO 7816-4 exchange over a transport: GET RESPONSE on 61xx, resend on 6Cxx.

    Over T=0 a case-4 command (data and Le) is sent without Le, as T=0 cannot carry
    both; the card then answers 61xx and GET RESPONSE fetches the data. Counts
    every APDU sent in :attr:`count`.
    """

    MAX_CHAINED = 32

    def __init__(self, transport: ApduTransport):
        self.transport = transport
        self.count = 0

    def _raw(self, command: bytes) -> Response:
        self.count += 1
        answer = self.transport.transmit(command)
        if len(answer) < 2:
            # Readers (vpcd among them) hand back an empty answer when the card
            # left the field during the exchange.
            raise CardRemoved("the card gave no answer (taken away?)")
        return Response(answer[:-2], (answer[-2] << 8) | answer[-1])

    def send(self, cla: int, ins: int, p1: int, p2: int, data: bytes = b"",
             le: int | None = 0) -> Response:
        """Send a command and follow 61xx / 6Cxx until the final answer."""
        if self.transport.protocol == "T0" and data and le is not None:
            le = None
        command = build_apdu(cla, ins, p1, p2, data, le)
        resp = self._raw(command)
        collected = b""
        for _ in range(self.MAX_CHAINED):
            sw1, sw2 = resp.sw >> 8, resp.sw & 0xFF
            if sw1 == 0x6C:
                # Wrong Le: resend the same command with the Le the card asks for.
                command = build_apdu(cla, ins, p1, p2, data, sw2)
                resp = self._raw(command)
                continue
            if sw1 == 0x61:
                collected += resp.data
                resp = self._raw(build_apdu(cla & 0x03, 0xC0, 0x00, 0x00, b"", sw2))
                continue
            return Response(collected + resp.data, resp.sw)
        raise ReaderError("the card kept asking for GET RESPONSE")


class ReplayTransport:
    """A fake transport replaying recorded (command, response) pairs.

    Every command written must equal the next recorded one, byte for byte, else
    AssertionError (it is a test double). ``remove_after`` makes the card vanish
    after that many exchanges (a card pulled away mid-read).
    """

    def __init__(self, exchanges: Iterable[tuple[bytes | str, bytes | str]], *,
                 protocol: Protocol_ = "T1", atr: bytes = b"", remove_after: int | None = None):
        self.exchanges: Sequence[tuple[bytes, bytes]] = [
            (_hex(c), _hex(r)) for c, r in exchanges
        ]
        self.protocol: Protocol_ = protocol
        self.atr = atr
        self.remove_after = remove_after
        self.written: list[bytes] = []

    def transmit(self, command: bytes) -> bytes:
        """Check ``command`` against the recording and return the recorded answer."""
        index = len(self.written)
        if self.remove_after is not None and index >= self.remove_after:
            raise CardRemoved("the card was removed")
        self.written.append(bytes(command))
        if index >= len(self.exchanges):
            raise AssertionError(f"unexpected extra command #{index}: {command.hex().upper()}")
        expected, answer = self.exchanges[index]
        if command != expected:
            raise AssertionError(
                f"command #{index} differs:\n  sent     {command.hex().upper()}\n"
                f"  expected {expected.hex().upper()}"
            )
        return answer

    @property
    def finished(self) -> bool:
        """True when every recorded exchange was used."""
        return len(self.written) == len(self.exchanges)


def _hex(value: bytes | str) -> bytes:
    if isinstance(value, bytes):
        return value
    return bytes.fromhex(value.replace(" ", ""))
