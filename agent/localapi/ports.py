"""What the local API's services need from the rest of the agent.

:class:`ServiceStore` is the subset of ``agent.offline_queue.Store`` the services
call, plus the local operations data (staff, appointments). :func:`rules_quote`
is the one place that talks to ``agent.rules``. :class:`DbThread` runs every store
call on one worker thread so a disk write never blocks the event loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class StoredEventLike(Protocol):
    """What ``Store.append`` returns."""

    id: str
    seq: int


class ServiceStore(Protocol):
    """The store calls the local API makes (names as ``agent.offline_queue.Store`` has them)."""

    def append(self, type: str, body: dict[str, Any], *, at: datetime,
               staff_id: str | None, offline: bool, check_funds: bool = False) -> Any:
        """Record one event durably; raise StorageError if it could not be.

        ``check_funds``: refuse (LimitExceeded) a sale spending more than the
        member's usable balances, checked in the same transaction.
        """
        ...

    def sale_for_quote(self, quote_id: str) -> Any:
        """The sale recorded from ``quote_id`` (an index probe), or None."""
        ...

    def lookup(self, token: str) -> dict[str, Any] | None:
        """The cached member holding ``token``."""
        ...

    def member(self, member_id: str) -> dict[str, Any] | None:
        """The cached member ``member_id``."""
        ...

    def usable_balances(self, member_id: str) -> dict[str, int]:
        """Cached balances plus this terminal's own unapplied events."""
        ...

    def offline_counters(self, member_id: str, local_day_start: datetime,
                         local_day_end: datetime) -> tuple[int, int]:
        """(redeemed value, credit used) by the member in that local day here."""
        ...

    def queue_stats(self) -> Any:
        """QueueStats(pending, oldest_at, rejected, by_type)."""
        ...

    def members_version(self) -> int:
        """The member cache's version."""
        ...

    def events(self, state: str | None = None) -> Iterable[Any]:
        """Events still held (wire dicts or StoredEvent objects)."""
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

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(*args, **kwargs)`` on the writer thread and await its result."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._writer, functools.partial(fn, *args, **kwargs))

    async def read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a read-only ``fn`` on a reader thread and await its result."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, functools.partial(fn, *args, **kwargs))

    def close(self) -> None:
        """Let queued calls finish, then stop the threads."""
        self._readers.shutdown(wait=True)
        self._writer.shutdown(wait=True)


def field_of(obj: Any, name: str, default: Any = None) -> Any:
    """``obj.name`` or ``obj[name]``: the store and rules may hand us either."""
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


def event_dict(event: Any) -> dict[str, Any]:
    """A stored event as a flat dict: the wire keys plus the type's own keys."""
    if isinstance(event, Mapping):
        out = dict(event)
    else:
        out = {k: getattr(event, k) for k in ("id", "seq", "type", "at", "staff_id", "offline",
                                              "state") if hasattr(event, k)}
        body = getattr(event, "body", None) or {}
        out.update(body)
    if "body" in out and isinstance(out["body"], Mapping):
        body = out.pop("body")
        for k, v in body.items():
            out.setdefault(k, v)
    at = out.get("at")
    if isinstance(at, str):
        out["at"] = datetime.fromisoformat(at.replace("Z", "+00:00"))
    return out


QuoteFn = Callable[[Any, dict[str, Any], "dict[str, Any] | None", dict[str, Any]], dict[str, Any]]


def rules_quote(bundle: Any, request: dict[str, Any], member: dict[str, Any] | None,
                ctx: dict[str, Any]) -> dict[str, Any]:
    """Compute a quote with ``agent.rules.quote`` from plain dicts.

    Returns ``Quote.to_dict()`` plus ``limits_held``. ``member["balances"]`` must be
    the usable balances. Raises ``LimitExceeded`` / ``RulesError`` unchanged.
    """
    from agent import rules  # type: ignore[attr-defined,unused-ignore]

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
    quote = rules.quote(bundle, req, view, rules.QuoteContext(**ctx))
    result: dict[str, Any] = quote.to_dict()
    result["limits_held"] = list(quote.limits_held)
    return result
