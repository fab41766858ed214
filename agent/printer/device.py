"""The output stage's I/O half: a python-escpos printer (network, serial, USB) behind
one small transport, and the printer's real-time status (``DLE EOT n``).

Every call is bounded by the profile's ``timeout_s``; every library error becomes
a :class:`PrinterError` with a reason a technician can act on (``refused``,
``not_found``, ``timeout``, ``io``), the library's exception kept as the cause.
"""

from __future__ import annotations

import contextlib
import socket
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from agent.errors import ClubtermError

DLE_EOT = b"\x10\x04"
# DLE EOT n: 1 printer status, 2 offline cause, 4 roll paper sensor.
STATUS_QUERIES = (1, 2, 4)
CHUNK = 4096


class PrinterError(ClubtermError):
    """The printer could not be reached, stopped answering, or refused to print."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


PaperState = Literal["ok", "low", "out"]


@dataclass(frozen=True)
class PrinterStatus:
    """What the printer said about itself (DLE EOT 1, 2 and 4)."""

    online: bool
    paper: PaperState
    cover_open: bool

    @property
    def state(self) -> str:
        """One word for ``agent.status``: ready, paper_low, paper_out, cover_open, offline."""
        if self.cover_open:
            return "cover_open"
        if self.paper == "out":
            return "paper_out"
        if not self.online:
            return "offline"
        return "paper_low" if self.paper == "low" else "ready"


def parse_status(printer: int, offline_cause: int, paper: int) -> PrinterStatus:
    """The status from the three answer bytes (ESC/POS: fixed bits 0x12 in each).

    DLE EOT 1 bit 3: offline. DLE EOT 2 bit 2: cover open, bit 5: stopped for
    paper end. DLE EOT 4 bits 2-3: near end, bits 5-6: paper end.
    """
    out = bool(paper & 0x60) or bool(offline_cause & 0x20)
    low = bool(paper & 0x0C)
    return PrinterStatus(online=not printer & 0x08, paper="out" if out else "low" if low else "ok",
                         cover_open=bool(offline_cause & 0x04))


class Transport(Protocol):
    """Bytes to a printer and its status back; each call bounded in time."""

    def open(self) -> None: ...
    def write(self, data: bytes) -> None: ...
    def query(self, n: int) -> int: ...
    def close(self) -> None: ...


def _mapped(exc: BaseException, where: str) -> PrinterError:
    if isinstance(exc, ConnectionRefusedError):
        return PrinterError(f"the printer refused the connection ({where})", "refused")
    if isinstance(exc, TimeoutError | socket.timeout):
        return PrinterError(f"the printer did not answer in time ({where})", "timeout")
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if "refused" in text.lower():
        return PrinterError(f"the printer refused the connection ({where})", "refused")
    if "timed out" in text.lower():
        return PrinterError(f"the printer did not answer in time ({where})", "timeout")
    if isinstance(exc, FileNotFoundError) or "no such file" in text.lower() \
            or "not found" in text.lower():
        return PrinterError(f"the printer is not connected ({where}: {text[:120]})",
                            "not_found")
    return PrinterError(f"{where}: {text[:200]}", "io")


class EscposTransport:
    """A python-escpos printer object (``Network``, ``Serial`` or ``Usb``) as a
    :class:`Transport`."""

    def __init__(self, printer: Any, timeout_s: float):
        self.printer = printer
        self.timeout_s = timeout_s

    def _call(self, where: str, fn: Any, *args: Any) -> Any:
        from escpos.exceptions import Error as EscposError

        try:
            return fn(*args)
        except (OSError, EscposError, ValueError, AssertionError) as exc:
            # DeviceNotFoundError is raised while handling the socket's error: map that.
            inner = (exc.__cause__ or exc.__context__ or exc) if isinstance(exc, EscposError) \
                else exc
            raise _mapped(inner, where) from exc

    def open(self) -> None:
        self._call("connecting", self.printer.open)
        device = getattr(self.printer, "device", None)
        if device is not None and hasattr(device, "write_timeout"):
            device.write_timeout = self.timeout_s  # pyserial: a stalled port does not hang

    def write(self, data: bytes) -> None:
        for i in range(0, len(data), CHUNK):
            self._call("sending", self.printer._raw, data[i:i + CHUNK])

    def query(self, n: int) -> int:
        answer = self._call("asking its status", self.printer.query_status, DLE_EOT + bytes([n]))
        if not answer:
            raise PrinterError("the printer did not answer its status query", "timeout")
        return int(answer[-1])

    def close(self) -> None:
        with contextlib.suppress(Exception):  # closing a broken link must not raise
            self.printer.close()


def network_transport(address: str, timeout_s: float) -> EscposTransport:
    """``host:port`` (port 9100 by default)."""
    from escpos.printer import Network

    host, _, port = address.rpartition(":") if ":" in address else (address, "", "9100")
    return EscposTransport(Network(host=host or address, port=int(port or 9100),
                                   timeout=timeout_s), timeout_s)


def serial_transport(address: str, baud: int, timeout_s: float) -> EscposTransport:
    """A serial device path; hardware flow control off (a missing DSR line must not
    stall every receipt), timeouts on reads and writes."""
    from escpos.printer import Serial

    return EscposTransport(Serial(devfile=address, baudrate=baud, timeout=timeout_s,
                                  dsrdtr=False), timeout_s)


def usb_transport(address: str, timeout_s: float) -> EscposTransport:
    """``vendor:product`` in hex (``04b8:0202``)."""
    from escpos.printer import Usb

    vendor, _, product = address.partition(":")
    return EscposTransport(Usb(int(vendor, 16), int(product, 16),
                               timeout=int(timeout_s * 1000)), timeout_s)


def query_status(transport: Transport) -> PrinterStatus:
    """Ask DLE EOT 1, 2 and 4 (each answer bounded by the transport's timeout)."""
    answers = [transport.query(n) for n in STATUS_QUERIES]
    return parse_status(*answers)
