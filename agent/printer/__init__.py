"""Receipts on an ESC/POS printer (issue 16): a pure layout (``layout``), the
reasons a benefit applied (``reasons``), the bytes (``encode``, python-escpos),
the transport and real-time status (``device``), the bounded print worker
(``queue``) and what the agent calls (``service.ReceiptPrinter``).

This module imports nothing heavy: the local API's services reach the printer
through :class:`ReceiptPrinterPort` only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol


class ReceiptPrinterPort(Protocol):
    """What the local API's services call (the daemon's :class:`ReceiptPrinter`)."""

    @property
    def auto_print(self) -> bool: ...
    def print_sale(self, sale: Mapping[str, Any], *, reprint: bool = False) -> bool: ...
    def print_text(self, lines: Sequence[str], title: str = "") -> bool: ...
    def status(self) -> dict[str, Any]: ...


__all__ = ["ReceiptPrinterPort"]
