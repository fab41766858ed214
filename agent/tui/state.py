"""Plain data the UI keeps: the agent's status and the signed-in staff member.

Pure functions turn ``agent.status`` results and event notifications into a
new :class:`AgentStatus`; widgets only draw it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class ReaderView:
    """One reader as the status bar shows it."""

    name: str
    kind: str
    state: str


@dataclass(frozen=True)
class AgentStatus:
    """What the status bar shows; ``known`` is False until the agent answered."""

    known: bool = False
    terminal_id: str = ""
    online: bool = False
    since: datetime | None = None
    pending: int = 0
    rejected: int = 0
    rules_version: int | None = None
    rules_problem: str | None = None
    readers: tuple[ReaderView, ...] = ()
    currency: str | None = None
    minor_units: int = 2
    timezone: str | None = None
    connected: bool = True
    # The receipt printer's state (docs/receipts.md), None without a printer.
    printer: str | None = None


@dataclass(frozen=True)
class StaffSession:
    """The signed-in staff member (``staff.login``'s answer)."""

    session: str
    staff_id: str
    name: str
    role: str

    @property
    def is_manager(self) -> bool:
        """Managers see per-staff figures and may refund."""
        return self.role == "manager"


def _when(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _readers(items: object) -> tuple[ReaderView, ...]:
    if not isinstance(items, list):
        return ()
    return tuple(
        ReaderView(str(r.get("name", "?")), str(r.get("kind", "")), str(r.get("state", "")))
        for r in items
        if isinstance(r, dict)
    )


def status_from_result(result: dict[str, Any], now: datetime) -> AgentStatus:
    """An :class:`AgentStatus` from an ``agent.status`` result."""
    queue = result.get("queue") or {}
    minor = result.get("minor_units")
    return AgentStatus(
        known=True,
        terminal_id=str(result.get("terminal_id", "")),
        online=bool(result.get("online")),
        since=_when(result.get("link_since")) or now,
        pending=int(queue.get("pending") or 0),
        rejected=int(queue.get("rejected") or 0),
        rules_version=result.get("rules_version"),
        rules_problem=result.get("rules_problem"),
        readers=_readers(result.get("readers")),
        currency=result.get("currency"),
        minor_units=minor if isinstance(minor, int) else 2,
        timezone=result.get("timezone"),
        printer=_printer_state(result.get("printer")),
    )


def _printer_state(value: object) -> str | None:
    if isinstance(value, dict) and value.get("kind") not in (None, "none"):
        return str(value.get("state") or "unknown")
    return None


def apply_event(status: AgentStatus, event: dict[str, Any], now: datetime) -> AgentStatus:
    """The status after an event notification (unknown types change nothing)."""
    kind = event.get("type")
    if kind == "link":
        online = bool(event.get("online"))
        since = _when(event.get("since")) or now
        if online == status.online and status.since is not None and "since" not in event:
            since = status.since
        return dataclasses.replace(status, online=online, since=since)
    if kind == "queue":
        return dataclasses.replace(
            status, pending=int(event.get("pending") or 0), rejected=int(event.get("rejected") or 0)
        )
    if kind == "rules":
        return dataclasses.replace(
            status, rules_version=event.get("version"), rules_problem=event.get("problem")
        )
    if kind == "printer":
        return dataclasses.replace(status, printer=_printer_state(event))
    if kind == "reader":
        name = str(event.get("name", "?"))
        view = ReaderView(name, str(event.get("kind", "")), str(event.get("state", "")))
        readers = [view if r.name == name else r for r in status.readers]
        if all(r.name != name for r in status.readers):
            readers.append(view)
        return dataclasses.replace(status, readers=tuple(readers))
    return status


@dataclass(frozen=True)
class HeldBasket:
    """A sale left half-made when its staff member was signed out.

    Kept for the same staff member only, for :data:`HELD_BASKET_S`: the agent may
    have restarted (sessions end with it) or the till signed out for idleness,
    and the cashier signs in again to finish the same customer's sale.
    """

    staff_id: str
    lines: tuple[Any, ...]
    member: dict[str, Any] | None
    member_token: str | None
    held_at: float


HELD_BASKET_S = 15 * 60.0
