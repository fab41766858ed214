"""What the club link needs of the store, one small Protocol per part.

Each lists only the calls the link makes, with their real return types; the
store's parts (``store.outbox``, ``store.members``, …) satisfy them structurally.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Protocol

from agent.catalogue import Catalogue
from agent.staff.staff_list import StaffList


class EncodedBatchLike(Protocol):
    """A batch ready to publish (:class:`agent.offline_queue.store.EncodedBatch`)."""

    @property
    def payload(self) -> bytes: ...
    @property
    def ids(self) -> list[str]: ...
    @property
    def last_seq(self) -> int: ...


class QueueStatsLike(Protocol):
    """The outbox's depth (:class:`agent.offline_queue.QueueStats`)."""

    @property
    def pending(self) -> int: ...
    @property
    def rejected(self) -> int: ...
    @property
    def oldest_at(self) -> datetime | None: ...


class Outbox(Protocol):
    """The events waiting for the club (``store.outbox``)."""

    def next_batch_encoded(self, batch_id: str, terminal_id: str, max_events: int = 500,
                           max_bytes: int = 262144, exclude_ids: Iterable[str] = (), *,
                           after_seq: int = 0) -> EncodedBatchLike | None: ...
    def mark_sent(self, ids: list[str]) -> None: ...
    def apply_ack(self, accepted: list[str], rejected: list[tuple[str, str]],
                  applied_seq: int | None) -> None: ...
    def queue_stats(self) -> QueueStatsLike: ...


class Members(Protocol):
    """The member cache (``store.members``)."""

    def members_version(self) -> int: ...
    def apply_changes(self, change: dict[str, Any]) -> bool: ...
    def import_snapshot(self, lines: Iterable[bytes | str], version: int,
                        full: bool) -> int: ...


class Bundles(Protocol):
    """Rule bundles kept and refused (``store.bundles``)."""

    def save_bundle(self, envelope: dict[str, Any], version: int) -> None: ...
    def current_bundle(self) -> dict[str, Any] | None: ...
    def save_refused_bundle(self, envelope: dict[str, Any], reason: str) -> None: ...


class Commands(Protocol):
    """The club's commands and their results (``store.commands``)."""

    def begin_command(self, command_id: str, command_type: str) -> dict[str, Any] | None: ...
    def interrupt_running_commands(self) -> list[dict[str, Any]]: ...
    def save_command_result(self, command_id: str,
                            result: dict[str, Any]) -> dict[str, Any]: ...


class StaffRecords(Protocol):
    """The club's staff list in the local records (``store.records``)."""

    def staff_list_version(self) -> int | None: ...
    def replace_club_staff(self, staff_list: StaffList, envelope: Mapping[str, Any], *,
                           keep_local: bool) -> dict[str, Any]: ...


class CatalogueParts(Protocol):
    """The product catalogue in use (``store.catalogue``)."""

    def catalogue_version(self) -> int | None: ...
    def replace_catalogue(self, doc: Catalogue) -> int: ...
    def apply_changes(self, doc: Catalogue) -> int: ...
    def save_problem(self, problem: str | None) -> None: ...


class RulesState(Protocol):
    """What the link needs of :class:`agent.rules.BundleState`."""

    @property
    def version(self) -> int | None: ...
    @property
    def trusted(self) -> Mapping[str, Any]: ...  # the club's signing keys (staff lists too)
    def problem(self) -> str | None: ...
    def offer(self, envelope: Mapping[str, Any], now: datetime) -> bool: ...
    def restore(self, envelope: Mapping[str, Any]) -> Any: ...


class LinkStore(Protocol):
    """The store (:class:`agent.offline_queue.Store`): the parts the link uses."""

    @property
    def outbox(self) -> Outbox: ...
    @property
    def members(self) -> Members: ...
    @property
    def bundles(self) -> Bundles: ...
    @property
    def commands(self) -> Commands: ...
    @property
    def records(self) -> StaffRecords: ...
    @property
    def catalogue(self) -> CatalogueParts: ...
