"""Receipts: ``receipt.print`` (reprint a sale, or print a cash register's own
loyalty lines) and ``printer.status``; and the hook that queues a sale's receipt
once it is committed (:func:`print_after_commit`).

The printer is reached through ``AgentView.printer`` (a
:class:`agent.printer.ReceiptPrinterPort`): queuing never waits for the printer,
and nothing here can undo or delay a recorded sale.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from agent.carddata.detect import find_card_data
from agent.errors import ApiError
from agent.localapi import BUSY, INVALID_PARAMS, NOT_ALLOWED, NOT_FOUND, receipt_number
from agent.localapi.services.core import AgentView, Caller, ServiceCore
from agent.localapi.services.params import CARD_IN_TEXT, Params, _p, _text
from agent.localapi.services.sales import restored_receipt
from agent.printer import ReceiptPrinterPort
from agent.printer.layout import MAX_TEXT_CHARS, MAX_TEXT_LINES
from agent.safe_text import describe, unsafe_char
from agent.staff import permissions as perm

log = logging.getLogger("agent.localapi.services")

# A printed receipt names at most this many catalogue lines by their product names
# (the rest by sku): one bounded catalogue read per receipt.
MAX_NAMED_LINES = 200


async def named_lines(core: ServiceCore, receipt: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``receipt`` whose catalogue lines carry their product's ``names``
    (and ``name``, in English), so the printer prints "Croissant", not the sku.

    Unchanged without a printer or a catalogue; a catalogue that cannot be read
    leaves the skus (logged): the receipt still prints."""
    out = dict(receipt)
    lines = receipt.get("lines")
    if core.view.printer is None or not isinstance(lines, list):
        return out
    out["lines"] = await name_lines(core, lines)
    return out


async def name_lines(core: ServiceCore, lines: list[Any]) -> list[Any]:
    """``lines`` with each catalogue line's product ``names`` (and ``name``, in
    English) added: for a receipt, ``sale.list`` and the refund dialog. Unchanged
    without a catalogue, or when it cannot be read (logged)."""
    catalogue = core.catalogue
    if catalogue is None:
        return lines
    skus = [line.get("sku") if isinstance(line, Mapping) and not line.get("name")
            and not line.get("names") else None for line in lines[:MAX_NAMED_LINES]]
    if not any(isinstance(s, str) and s for s in skus):
        return lines

    def read() -> list[Any]:
        return [catalogue.by_sku(s) if isinstance(s, str) and s else None for s in skus]

    try:
        products = await core.db.read(read)
    except Exception:
        log.warning("the catalogue could not be read to name sale lines; they keep their "
                    "skus", exc_info=True)
        return lines
    named: list[Any] = []
    for i, line in enumerate(lines):
        product = products[i] if i < len(products) else None
        if product is None:
            named.append(line)
        else:
            named.append({**line, "names": dict(product.names), "name": product.name("en")})
    return named


def print_after_commit(view: AgentView, receipt: Mapping[str, Any]) -> None:
    """Queue a just-committed sale's receipt when the profile's printer auto-prints.

    Called after the sale is durable and its answer built; any failure here is
    logged and swallowed: the sale stands, the receipt can be printed again."""
    printer = view.printer
    if printer is None or not printer.auto_print:
        return
    try:
        printer.print_sale({**receipt, "receipt_no": receipt_number(str(receipt["sale_id"]))})
    except Exception:
        log.exception("the receipt of sale %s could not be queued", receipt.get("sale_id"))


def _checked_lines(params: Params) -> list[str]:
    raw = _p(params, "lines", list)
    if not raw or len(raw) > MAX_TEXT_LINES:
        raise ApiError(INVALID_PARAMS, f"Give 1 to {MAX_TEXT_LINES} lines to print.",
                       {"param": "lines", "max": MAX_TEXT_LINES})
    lines: list[str] = []
    for i, line in enumerate(raw):
        if not isinstance(line, str):
            raise ApiError(INVALID_PARAMS, f"Line {i + 1} to print is not text.",
                           {"param": "lines", "index": i})
        if len(line) > MAX_TEXT_CHARS:
            raise ApiError(INVALID_PARAMS, f"Line {i + 1} to print is too long (at most "
                           f"{MAX_TEXT_CHARS} characters).",
                           {"param": "lines", "index": i, "max": MAX_TEXT_CHARS})
        bad = unsafe_char(line)
        if bad is not None:
            raise ApiError(INVALID_PARAMS, f"Line {i + 1} to print holds a control character "
                           f"({describe(bad)}); printer commands cannot be sent this way.",
                           {"param": "lines", "index": i, "reason": "control_character"})
        if find_card_data(line) is not None:
            raise ApiError(INVALID_PARAMS, CARD_IN_TEXT.format(what=f"line {i + 1}"),
                           {"param": "lines", "index": i, "reason": "card_number"})
        lines.append(line)
    return lines


class ReceiptMethods(ServiceCore):
    """``receipt.print`` and ``printer.status``."""

    def _printer(self) -> ReceiptPrinterPort:
        printer = self.view.printer
        if printer is None:
            raise ApiError(NOT_ALLOWED, "This terminal has no receipt printer configured "
                           "(terminal profile [printer]).", {"reason": "no_printer"})
        return printer

    async def printer_status(self, params: Params, conn: Caller | None) -> dict[str, Any]:
        """``printer.status``: the printer's state (``{"kind": "none"}`` without one)."""
        printer = self.view.printer
        return printer.status() if printer is not None else {"kind": "none", "state": "none"}

    async def receipt_print(self, params: Params, conn: Caller | None) -> dict[str, Any]:
        """``receipt.print``: ``sale_id`` reprints this terminal's sale; ``lines`` (with
        an optional ``title``) prints a cash register's own text. Answers once the
        job is queued: ``{"queued": true, "printer": {...}}``."""
        if ("sale_id" in params) == ("lines" in params):
            raise ApiError(INVALID_PARAMS, "Give either sale_id (a reprint) or lines.",
                           {"param": "sale_id"})
        if "sale_id" in params:
            session = await self._session(params, perm.SALE_VIEW)
            sale_id = _text(params, "sale_id", max_len=64)
            printer = self._printer()
            receipt = self._recent_receipt(sale_id)
            if receipt is None:
                entry = await self.db.read(self.outbox.event, sale_id)
                if entry is None or entry.type != "sale":
                    raise ApiError(NOT_FOUND, "There is no such sale on this terminal.")
                receipt = restored_receipt(entry.event, self.view)
                staff = await self._staff_names({receipt.get("staff_id")})
                receipt["staff_name"] = staff.get(str(receipt.get("staff_id")))
                receipt["offline"] = entry.event.get("offline")
            receipt = await named_lines(self, receipt)
            log.info("receipt of sale %s reprinted by %s", sale_id, session.staff_id)
            queued = printer.print_sale({**receipt, "receipt_no": receipt_number(sale_id)},
                                        reprint=True)
        else:
            await self._session(params, perm.SELL)
            lines = _checked_lines(params)
            title = _text(params, "title", required=False, max_len=80) or ""
            printer = self._printer()
            queued = printer.print_text(lines, title)
        if not queued:
            raise ApiError(BUSY, "The printer's queue is full (it is not printing); please "
                           "check the printer and try again.", {"reason": "printer_busy"})
        return {"queued": True, "printer": printer.status()}

    def _recent_receipt(self, sale_id: str) -> dict[str, Any] | None:
        """The full receipt of a sale committed in this run (balances after included)."""
        for _at, result in self._committed.values():
            if result.get("sale_id") == sale_id:
                return dict(result["receipt"])
        return None
