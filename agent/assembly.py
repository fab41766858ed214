"""Assembling the agent's parts from its configuration: the rules state, the local
API's limits, the readers and what a card read leads to, the certificate check.
Called by :mod:`agent.daemon`,
which owns the run loop, the signals and the order things start and stop in.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from agent.config import Config
from agent.errors import ClubtermError
from agent.localapi.ports import field_of
from agent.localapi.server import ServerLimits
from agent.localapi.services import Services

if TYPE_CHECKING:
    from agent.offline_queue import Store
    from agent.sync.ports import LinkStore

log = logging.getLogger("agent.daemon")

MakeLink = Callable[[Config, "LinkStore", Any, Callable[[dict[str, Any]], None]], Any]
BuildReaders = Callable[[Config, bytes], list[Any]]


@dataclass
class ReaderSlot:
    """A running reader and its last reported state."""

    reader: Any
    name: str
    kind: str
    state: str = "connecting"
    detail: str = ""


def api_limits(cfg: Config) -> ServerLimits:
    """The local API's limits: [local_api] of the configuration, the rest built in."""
    return ServerLimits(max_connections=cfg.api_max_connections,
                        max_connections_per_user=cfg.api_max_connections_per_user,
                        idle_timeout_s=float(cfg.api_idle_timeout_s))


def make_bundle_state(cfg: Config, store: Any) -> Any:
    """The rules state, restored from the last bundle the store kept (store thread)."""
    from agent.rules import BundleState, load_trusted_keys

    trusted: dict[str, Any] = {}
    if cfg.rules_keys_dir is not None:
        try:
            trusted = dict(load_trusted_keys(cfg.rules_keys_dir))
        except ClubtermError as exc:
            log.error("cannot load the rule signing keys: %s", exc)
    state = BundleState(trusted, club=cfg.club_id, merchant=cfg.merchant_id)
    envelope = store.bundles.current_bundle()
    if envelope is not None:
        try:
            bundle = state.restore(envelope)
            log.info("rule bundle %s", bundle.summary())
        except ClubtermError as exc:
            log.error("the saved rule bundle cannot be used: %s", exc)
    else:
        log.warning("no rule bundle yet: sales get no benefits until the club sends one")
    return state


def make_link(cfg: Config, make: MakeLink | None, store: Store, bundle_state: Any,
              on_event: Callable[[dict[str, Any]], None]) -> Any:
    """The club link (not started), or None when the terminal works offline.

    The link takes the store's parts (:class:`agent.sync.link.LinkParts`): the
    outbox, members, bundles, commands and staff records; typing ``store`` as the
    real class here has mypy check it against each part's Protocol.
    """
    if not cfg.broker_url:
        log.warning("no broker_url configured: working offline until the terminal is "
                    "enrolled (clubterm provision enrol)")
        return None
    if make is None:
        try:
            from agent.sync import ClubLink
        except ImportError as exc:
            log.error("the club link is not available in this build: %s", exc)
            return None
        make = ClubLink
    try:
        return make(cfg, store, bundle_state, on_event)
    except ClubtermError as exc:
        log.error("the club link cannot start: %s; working offline", exc)
        return None


def start_readers(cfg: Config, build: BuildReaders | None,
                  emit: Callable[[Any], None]) -> list[ReaderSlot]:
    """Build the profile's readers and start each; one that fails is shown, not fatal."""
    if not cfg.profile.readers:
        log.info("the profile %s has no readers", cfg.profile.name)
        return []
    if build is None:
        try:
            from agent.drivers import build_readers
        except ImportError as exc:
            log.error("reader drivers are not available in this build: %s", exc)
            return []
        build = build_readers
    try:
        readers = build(cfg, cfg.read_pan_key())
    except ClubtermError as exc:
        log.error("cannot set up the readers: %s", exc)
        return []
    slots: list[ReaderSlot] = []
    for reader in readers:
        slot = ReaderSlot(reader, reader.name, getattr(reader, "kind", "reader"),
                          field_of(reader.state, "state", "connecting"))
        slots.append(slot)
        try:
            reader.start(emit)
        except ClubtermError as exc:
            slot.state, slot.detail = "error", str(exc)
            log.error("reader %s cannot start: %s", slot.name, exc)
    return slots


def make_printer(cfg: Config, bundle: Callable[[], Any],
                 on_state: Callable[[dict[str, Any]], None]) -> Any:
    """The profile's receipt printer (started), or None when it has none
    (``[printer] kind = "none"``) or its parts cannot load; a printer that is
    unplugged still starts: its state says so."""
    spec = cfg.profile.printer
    if spec.kind == "none":
        return None
    try:
        from agent.printer.service import ReceiptPrinter
    except ImportError as exc:
        log.error("receipt printing is not available in this build: %s", exc)
        return None
    printer = ReceiptPrinter(spec, bundle, language=cfg.ui_locale or "en", on_state=on_state)
    printer.start()
    log.info("receipt printer: %s %s, %d columns, auto-print %s", spec.kind, spec.address,
             spec.columns, "on" if spec.auto_print else "off")
    return printer


def printer_summary(state: dict[str, Any]) -> dict[str, Any]:
    """The printer's state as the club status and the status line carry it."""
    return {"kind": state.get("kind"), "state": state.get("state"),
            "detail": state.get("detail"), "failed": state.get("failed", 0)}


def printer_event(state: dict[str, Any]) -> dict[str, Any]:
    """The ``printer`` event notification for a state of the print worker."""
    return {"type": "printer", **printer_summary(state), "last_job": state.get("last_job")}


def stop_readers(slots: list[ReaderSlot]) -> None:
    for slot in slots:
        try:
            slot.reader.stop()
        except Exception:
            log.exception("reader %s did not stop cleanly", slot.name)


def check_certificate(cfg: Config) -> str | None:
    """Log a warning when the client certificate expires within 30 days."""
    if cfg.cert_file is None:
        return None
    from provisioning.expiry import cert_expiry_warning

    warning = cert_expiry_warning(cfg.cert_file, datetime.now(UTC))
    if warning:
        log.warning("%s", warning)
    return warning


async def card_notification(services: Services, event: Any) -> dict[str, Any]:
    """The notification for a card or code presented on a reader (a ``CardPresented``):
    the member it belongs to, looked up in the store, or a staff badge's tap.

    A staff badge is not broadcast with its token (every subscriber would see a
    credential): its event carries a single-use tap reference instead, and
    neither the token nor the tag's UID is logged. The daemon and the demo agent
    (``agent.localapi.demo``) both publish what this returns.
    """
    try:
        badge = await services.badge_tapped(event.token, event.reader)
    except ClubtermError as exc:
        log.error("could not check whether a card is a staff badge: %s", exc)
        return {"type": "read_failed", "source": event.source, "reader": event.reader,
                "message": "read again: the terminal could not check this card"}
    if badge is not None:
        badge["source"] = event.source
        log.info("staff badge tapped on %s: staff %s", event.reader, badge["staff"]["staff_id"])
        return badge
    services.note_card(event.token, event.masked, event.bin6)
    product = None
    try:
        product = await services.product_for_token(event.token)
    except ClubtermError as exc:
        log.error("product lookup failed: %s", exc)
    if product is not None:
        # A product's barcode: the event says which (the UI adds it to the sale).
        log.info("product scanned on %s: %s", event.reader, product["sku"])
        return {"type": "card", "kind": "product", "source": event.source,
                "reader": event.reader, "token": event.token, "token_kind": event.token_kind,
                "masked": None, "info": None, "member": None, "product": product}
    try:
        member = await services.member_summary(event.token)
    except ClubtermError as exc:
        log.error("member lookup failed: %s", exc)
        member = None
    lost = None
    if member is None:
        try:
            lost = await services.lost_card(event.token)  # (1.3) refused as lost
        except ClubtermError as exc:
            log.error("lost-card lookup failed: %s", exc)
    log.info("card read: %s %s (%s) → %s", event.source, event.masked or event.token_kind,
             event.reader, member["member_id"] if member else
             ("a card reported lost" if lost else "no member"))
    return {"type": "card", "kind": "card", "source": event.source, "reader": event.reader,
            "token": event.token, "token_kind": event.token_kind, "masked": event.masked,
            "info": getattr(event, "info", None), "member": member,
            **({"lost": lost} if lost else {})}


def reader_notification(event: Any) -> dict[str, Any]:
    """The notification for a reader's change of state (a ``ReaderState``)."""
    return {"type": "reader", "name": event.name, "kind": event.kind, "state": event.state,
            "detail": event.detail or None}
