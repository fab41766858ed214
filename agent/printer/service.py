"""The receipt printer as the agent uses it: a profile's ``[printer]`` made into a
:class:`PrintQueue`, and the calls the local API makes (print a sale, print a
cash register's lines, the state). Nothing here waits for the printer."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from agent.printer.device import (
    Transport,
    network_transport,
    serial_transport,
    usb_transport,
)
from agent.printer.encode import EncodeOptions
from agent.printer.layout import Shop, layout_sale, layout_text
from agent.printer.queue import PrintJob, PrintQueue
from agent.printer.reasons import Reason, rule_label, rule_reasons

if TYPE_CHECKING:
    from agent.rules import Bundle
    from agent.terminal_profile import PrinterSpec


def transport_for(spec: PrinterSpec) -> Callable[[], Transport]:
    """A new transport per job, from the profile's ``kind`` and ``address``."""
    if spec.kind == "network":
        return lambda: network_transport(spec.address, spec.timeout_s)
    if spec.kind == "serial":
        return lambda: serial_transport(spec.address, spec.baud, spec.timeout_s)
    if spec.kind == "usb":
        return lambda: usb_transport(spec.address, spec.timeout_s)
    raise ValueError(f"no printer transport for kind {spec.kind!r}")


def at_text(at: object, timezone: str | None) -> str:
    """``2026-11-25T09:00:00.000Z`` → ``2026-11-25 10:00`` in the shop's time zone (the
    rule bundle's ``timezone``), else in the offset it was recorded with."""
    text = str(at or "")
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text[:40]
    if timezone and moment.tzinfo is not None:
        try:
            moment = moment.astimezone(ZoneInfo(timezone))
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return moment.strftime("%Y-%m-%d %H:%M")


class ReceiptPrinter:
    """Lays out receipts in the caller's thread (cheap) and prints them in the
    queue's worker (slow, bounded)."""

    def __init__(self, spec: PrinterSpec, bundle: Callable[[], Bundle | None], *,
                 language: str = "en",
                 on_state: Callable[[dict[str, Any]], None] = lambda _s: None,
                 transport: Callable[[], Transport] | None = None):
        self.spec = spec
        self.bundle = bundle
        self.language = spec.language or language
        self.shop = Shop(spec.shop_name, spec.shop_lines, spec.footer)
        self.queue = PrintQueue(
            transport or transport_for(spec),
            EncodeOptions(code_page=spec.code_page, font=spec.font or None,
                          qr_native=spec.qr_native),
            drawer_pin=spec.drawer_pin, poll_s=spec.status_poll_s, on_state=on_state,
            describe={"kind": spec.kind, "address": spec.address, "columns": spec.columns,
                      "auto_print": spec.auto_print})

    @property
    def auto_print(self) -> bool:
        return self.spec.auto_print

    def start(self) -> None:
        self.queue.start()

    def stop(self) -> None:
        self.queue.stop()

    def _why(self, discounts: object) -> tuple[dict[str, Sequence[Reason]],
                                                dict[str, Mapping[str, str]]]:
        reasons: dict[str, Sequence[Reason]] = {}
        labels: dict[str, Mapping[str, str]] = {}
        bundle = self.bundle()
        if bundle is None or not isinstance(discounts, list):
            return reasons, labels
        for d in discounts[:50]:
            rule_id = str(d.get("rule") or "") if isinstance(d, Mapping) else ""
            rule = bundle.rule(rule_id) if rule_id else None
            if rule is not None:
                reasons[rule_id] = rule_reasons(rule, bundle.minor_units, bundle.currency)
                label = rule_label(rule)
                if label:
                    labels[rule_id] = label
        return reasons, labels

    def print_sale(self, sale: Mapping[str, Any], *, reprint: bool = False) -> bool:
        """Queue the receipt of a committed sale; False when the queue is full."""
        bundle = self.bundle()
        full = dict(sale)
        if bundle is not None:
            full.setdefault("currency", bundle.currency)
            full.setdefault("minor_units", bundle.minor_units)
        if not full.get("currency"):
            full["currency"] = ""
        reasons, labels = self._why(full.get("discounts"))
        receipt = layout_sale(full, reasons=reasons, labels=labels, shop=self.shop,
                              columns=self.spec.columns, language=self.language,
                              at_text=at_text(full.get("at"),
                                              bundle.timezone if bundle is not None else None),
                              reprint=reprint)
        return self.queue.submit(PrintJob(receipt, "reprint" if reprint else "sale",
                                          drawer=receipt.cash and not reprint))

    def print_text(self, lines: Sequence[str], title: str = "") -> bool:
        """Queue a cash register's own lines (already checked by the caller)."""
        receipt = layout_text(lines, shop=self.shop, columns=self.spec.columns,
                              language=self.language, title=title)
        return self.queue.submit(PrintJob(receipt, "text"))

    def status(self) -> dict[str, Any]:
        return self.queue.status()
