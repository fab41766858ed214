"""What the local API's services need from the rest of the agent.

One :class:`Protocol` per part of the store the services use, named as the store's
parts are (``store.outbox``, ``store.members``, ``store.records``), each listing
every call the services make with the store's own return types; mypy checks the
real ``Store`` against them (``agent.localapi.services.seams``). :func:`rules_quote`
is the one place that talks to ``agent.rules``. :class:`DbThread` runs every store
call on worker threads so a disk write never blocks the event loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, tzinfo
from typing import TYPE_CHECKING, Any, ParamSpec, Protocol, TypeVar

if TYPE_CHECKING:
    from agent.catalogue import Product
    from agent.offline_queue import OutboxEntry, QueueStats, StoredEvent, ValueCheck
    from agent.offline_queue.package_uses import UseCheck
    from agent.rules import Bundle, MemberView, Quote, QuoteContext, QuoteRequest
    from agent.rules.adjust import AdjustmentsConfig

T = TypeVar("T")
P = ParamSpec("P")


class Outbox(Protocol):
    """The outbox calls the services make (``store.outbox``)."""

    def append(self, type: str, body: dict[str, Any], *, at: datetime,
               staff_id: str | None, offline: bool, check_funds: bool = False,
               account_offline_max: int | None = None) -> StoredEvent:
        """Record one event durably; raise StorageError if it could not be.

        ``check_funds``: refuse (LimitExceeded) a sale spending more than the
        member's usable balances, checked in the same transaction. (1.3) A sale on a
        house account is checked against the account (AccountRefused) and recorded
        with its ``account_charge``; ``account_offline_max`` bounds it offline.
        """
        ...

    def append_linked(self, type_: str, body: dict[str, Any],
                      companions: Sequence[dict[str, Any]], *, at: datetime,
                      staff_id: str | None, offline: bool, check_funds: bool = False,
                      value_check: ValueCheck | None = None,
                      account_offline_max: int | None = None) -> StoredEvent:
        """(1.3) Record an event and its companion ``gift_card_redeem`` events in one
        write transaction (all or none); ``value_check``: refuse (ValueNotAvailable)
        stored value the holders cannot pay, checked in that transaction;
        ``account_offline_max``: as :meth:`append` (a sale also paid on account)."""

    def append_adjustment(self, body: dict[str, Any], *, at: datetime, staff_id: str | None,
                          offline: bool, config: AdjustmentsConfig | None,
                          day: tuple[datetime, datetime]) -> tuple[StoredEvent, dict[str, int]]:
        """(1.3) Check a ``balance_adjust`` against the balance and the bundle's limits
        and record it, in one write transaction; the event and the new balances."""
        ...

    def append_package_use(self, body: dict[str, Any], *, at: datetime, staff_id: str | None,
                           offline: bool, check: UseCheck) -> tuple[StoredEvent, int | None]:
        """(1.3) Check and record a check-in (``package_use``) in one write transaction;
        the event and the visits left (None: unlimited). PackageRefused: nothing recorded."""
        ...

    def append_package_freeze(self, body: dict[str, Any], *, at: datetime,
                              staff_id: str | None, offline: bool, today: date) -> StoredEvent:
        """(1.3) Check and record a package freeze in one write transaction."""
        ...

    def member_packages(self, member_id: str) -> list[Mapping[str, Any]]:
        """(1.3) The member's packages with this terminal's own freezes."""
        ...

    def preview_adjustment(self, body: dict[str, Any], *, staff_id: str | None, offline: bool,
                           config: AdjustmentsConfig | None,
                           day: tuple[datetime, datetime]) -> int:
        """(1.3) The checks of ``append_adjustment`` as a read, recording nothing: the
        balance of the kind before it, or AdjustmentRefused."""
        ...

    def sale_for_quote(self, quote_id: str) -> OutboxEntry | None:
        """The sale recorded from ``quote_id`` (an index probe), or None."""
        ...

    def queue_stats(self) -> QueueStats:
        """What the outbox holds: pending, oldest, rejected."""
        ...

    def event(self, event_id: str) -> OutboxEntry | None:
        """One event of the outbox by id."""
        ...

    def events_between(self, start: datetime, end: datetime,
                       types: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Wire events recorded in [start, end) (with ``_state``)."""
        ...

    def sales_before(self, before_seq: int | None, limit: int) -> list[OutboxEntry]:
        """This terminal's sales older than ``before_seq``, newest first."""
        ...

    def refunds_of(self, sale_ids: Sequence[str]) -> dict[str, OutboxEntry]:
        """The refunds (not rejected) of these sales, by sale id."""
        ...

    def enrolment_of(self, member_ids: Sequence[str]) -> OutboxEntry | None:
        """This terminal's enrolment of one of ``member_ids``, or None."""

    def line_refunds_of(self, sale_ids: Sequence[str]) -> dict[str, list[OutboxEntry]]:
        """The refunds by line (not rejected) of these sales, oldest first, by sale id."""
        ...

    def promotion_counts(self, member_id: str | None, tz: tzinfo) -> dict[str, Any]:
        """What issue 21's rules count (limits, budgets, codes, coupons)."""
        ...


class Catalogue(Protocol):
    """The product catalogue calls the services make (``store.catalogue``)."""

    def by_barcode(self, barcode: str) -> Product | None:
        """The product with this barcode, or None."""
        ...

    def by_sku(self, sku: str) -> Product | None:
        """The product with this sku, or None."""
        ...

    def search(self, text: str, limit: int = 20) -> list[Product]:
        """Products whose sku or a name holds ``text`` (folded)."""
        ...

    def catalogue_info(self) -> dict[str, Any]:
        """``{version, products, languages, problem}``."""
        ...


class Members(Protocol):
    """The member-cache calls the services make (``store.members``)."""

    def members_version(self) -> int:
        """The member cache's version."""
        ...

    def lookup(self, token: str) -> dict[str, Any] | None:
        """The cached member holding ``token``."""
        ...

    def member(self, member_id: str) -> dict[str, Any] | None:
        """The cached member ``member_id``."""
        ...

    def lost_holder(self, token: str) -> dict[str, Any] | None:
        """The cached member who reported the card ``token`` lost."""
        ...

    def find_members(self, name_part: str, limit: int) -> list[dict[str, Any]]:
        """Members whose name holds ``name_part``."""
        ...

    def accounts_for(self, member_id: str, limit: int) -> list[dict[str, Any]]:
        """(1.3) The house accounts ``member_id`` may buy on (at most ``limit``)."""
        ...

    def usable_balances(self, member_id: str) -> dict[str, int]:
        """Cached balances plus this terminal's own unapplied events."""
        ...

    def member_view(self, member_id: str) -> dict[str, Any] | None:
        """The member record with usable balances and stats."""
        ...

    def offline_counters(self, member_id: str, local_day_start: datetime,
                         local_day_end: datetime) -> tuple[int, int]:
        """(redeemed value, credit used) by the member in that local day here."""
        ...

    def cache_looked_up(self, record: dict[str, Any], at_epoch: float) -> None:
        """Keep a record the club answered an online lookup with (marked as such)."""
        ...


class Records(Protocol):
    """The local records the services read and write (``store.records``)."""

    def staff(self, staff_id: str) -> dict[str, Any] | None:
        """A staff member (any state), or None."""
        ...

    def staff_by_badge(self, token: str) -> dict[str, Any] | None:
        """The active staff member holding a badge, or None."""
        ...

    def verify_staff_pin(self, staff_id: str, pin: str) -> bool:
        """Whether the PIN is right (as slow for an unknown id)."""
        ...

    def create_local_staff(self, staff_id: str, name: str, role: str, *, pin: str | None,
                           badges: Sequence[str], by: str | None, at: datetime,
                           offline: bool, offline_only: bool
                           ) -> tuple[dict[str, Any], StoredEvent]:
        """A new local staff member and its ``staff_change`` event."""
        ...

    def clock_staff(self, staff_id: str, action: str, *, at: datetime, by: str | None,
                    identified_by: str | None, offline: bool,
                    corrected_by: str | None = None, reason: str | None = None
                    ) -> StoredEvent:
        """Record an attendance event."""
        ...

    def add_cash_entry(self, kind: str, amount: int, category: str | None, note: str | None,
                       *, by: str | None, at: datetime, offline: bool) -> StoredEvent:
        """Record an expense or a cash receipt."""
        ...

    def appointment(self, appointment_id: str) -> dict[str, Any] | None:
        """One appointment, or None."""
        ...

    def appointments_between(self, start: datetime, end: datetime, *,
                             include_cancelled: bool = False) -> list[dict[str, Any]]:
        """Appointments starting in [start, end)."""
        ...

    def create_appointment(self, *, customer: str | None, service: str | None,
                           staff_id: str | None, start: datetime, minutes: int,
                           note: str | None, by: str | None, at: datetime, offline: bool,
                           appointment_id: str | None = None,
                           customer_name: str | None = None,
                           ) -> tuple[dict[str, Any], StoredEvent]:
        """Book an appointment (AppointmentConflict on an overlap)."""
        ...

    def update_appointment(self, appointment_id: str, *, by: str | None, at: datetime,
                           offline: bool, customer: str | None = None,
                           service: str | None = None, staff_id: str | None = None,
                           start: datetime | None = None, minutes: int | None = None,
                           note: str | None = None, customer_name: str | None = None,
                           ) -> tuple[dict[str, Any], StoredEvent]:
        """Change an appointment (AppointmentConflict on an overlap)."""
        ...

    def cancel_appointment(self, appointment_id: str, *, by: str | None, at: datetime,
                           offline: bool) -> StoredEvent:
        """Cancel an appointment."""
        ...


class DbThread:
    """Store calls off the event loop: one writer thread, and a small pool for reads.

    SQLite takes one writer at a time, so every write goes through one thread, in
    order. In WAL mode readers do not wait for a writer's fsync, so reads (member
    lookups, balances, status) have their own threads and a quote is never held up
    behind a commit being written. The store opens one connection per thread.
    """

    def __init__(self, readers: int = 2) -> None:
        self._writer = concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix="clubterm-db")
        self._readers = concurrent.futures.ThreadPoolExecutor(
            readers, thread_name_prefix="clubterm-db-read")

    async def call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(*args, **kwargs)`` on the writer thread and await its result."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._writer, functools.partial(fn, *args, **kwargs))

    async def read(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a read-only ``fn`` on a reader thread and await its result."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, functools.partial(fn, *args, **kwargs))

    def close(self) -> None:
        """Let queued calls finish, then stop the threads."""
        self._readers.shutdown(wait=True)
        self._writer.shutdown(wait=True)


def field_of(obj: object, name: str, default: object = None) -> Any:
    """``obj.name`` or ``obj[name]`` (the daemon's reader rows may be either)."""
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


def event_dict(event: Mapping[str, Any]) -> dict[str, Any]:
    """A stored wire event as a flat dict: the wire keys plus the type's own keys,
    ``at`` as a datetime."""
    out = dict(event)
    body = out.pop("body", None)
    if isinstance(body, Mapping):
        for k, v in body.items():
            out.setdefault(k, v)
    at = out.get("at")
    if isinstance(at, str):
        out["at"] = datetime.fromisoformat(at.replace("Z", "+00:00"))
    return out


# The rules engine's quote (``agent.rules.quote``): what the services compute with.
QuoteFn = Callable[["Bundle | None", "QuoteRequest", "MemberView | None", "QuoteContext"],
                   "Quote"]


def rules_quote(bundle: Bundle | None, request: dict[str, Any], member: dict[str, Any] | None,
                ctx: dict[str, Any]) -> Quote:
    """Compute a quote with ``agent.rules.quote`` from plain data (benchmarks, tools).

    ``request`` holds ``lines`` (wire line dicts), ``token_kind``, ``bin6``,
    ``redeem_points``, ``use_credit`` and issue 21's ``codes``/``rewards``; ``ctx``
    the :class:`agent.rules.QuoteContext` fields. ``member["balances"]`` must be the
    usable balances. Raises ``LimitExceeded`` / ``RulesError`` unchanged.
    """
    from agent import rules

    req = rules.QuoteRequest(
        lines=[rules.Line.from_dict(line) for line in request["lines"]],
        token_kind=request.get("token_kind"),
        bin6=request.get("bin6"),
        redeem_points=request.get("redeem_points"),
        use_credit=tuple(request.get("use_credit") or ()),
        codes=tuple(request.get("codes") or ()),
        rewards=tuple(request.get("rewards") or ()),
    )
    view = rules.MemberView(member, member.get("balances")) if member is not None else None
    return rules.quote(bundle, req, view, rules.QuoteContext(**ctx))
