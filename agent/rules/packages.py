"""Visit packages and memberships (protocol 1.3): a package's state on a day, the check
of a check-in, and freezing. Pure; the store runs :func:`use_refusal` inside the write
transaction that records a ``package_use`` (docs/rules.md, "Visit packages").

A package, as the club keeps it in the member record's ``packages``::

    {"package_id": "pk-1", "sku": "GYM-10", "name": "10-visit gym pass",
     "visits_total": 10,            # null: a period membership, unlimited visits
     "starts": "2026-11-01", "expires": "2027-01-29",
     "grace_days": 7, "freezable_days": 30,
     "frozen": [{"from": "2026-12-01", "until": "2026-12-10"}],
     "sold_by": [{"sale_id": "…", "line": 0, "visits": 10, "days": 90}],
     "revoked": "2026-11-20"}      # (only when a refund took it back)

Dates are the club's local dates, both ends included. Each frozen day moves the
expiry one day later (a frozen package loses no time). The visits left are the
member's balance ``visits.<package_id>`` (usable: cached + this terminal's own uses).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

#: The balance kind of one package's visits left.
VISITS_PREFIX = "visits."
#: Most packages shown for one member, and most units one check-in uses.
MAX_PACKAGES = 50
MAX_UNITS = 100
#: Longest package id and name a till shows (longer ids: the entry is left out).
MAX_ID = 64
MAX_TEXT = 200
#: Largest count of days or visits a record may hold (the wire's largest amount).
MAX_COUNT = 2**53 - 1


def visits_kind(package_id: str) -> str:
    return VISITS_PREFIX + package_id


@dataclass(frozen=True)
class PackageState:
    """What a package is on a day: ``state`` is ``not_started``, ``active``,
    ``in_grace`` (expired, within its grace days: still usable), ``frozen`` or
    ``expired``; ``expires`` is the expiry moved by the frozen days."""

    state: str
    expires: date
    grace_left: int = 0

    @property
    def usable(self) -> bool:
        return self.state in ("active", "in_grace")


class PackageError(ValueError):
    """A package record the terminal cannot read (a malformed date)."""


def _day(value: object, what: str) -> date:
    try:
        return date.fromisoformat(str(value))
    except ValueError as exc:
        raise PackageError(f"the package's {what} {value!r:.40} is not a date") from exc


def _count(value: object, what: str) -> int:
    """A whole number of days or visits the record holds (absent: 0)."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or abs(value) > MAX_COUNT:
        raise PackageError(f"the package's {what} {value!r:.40} is not a whole number")
    return value


def _words(value: object) -> str | None:
    """A name the record holds, as text a till shows (anything else: none)."""
    return value[:MAX_TEXT] if isinstance(value, str) else None


def frozen_spans(pkg: Mapping[str, Any]) -> list[tuple[date, date]]:
    """The package's frozen periods, each (first day, last day)."""
    spans = []
    frozen = pkg.get("frozen")
    for span in frozen if isinstance(frozen, list) else []:
        if isinstance(span, Mapping):
            start, end = _day(span.get("from"), "freeze start"), _day(span.get("until"),
                                                                      "freeze end")
            if end >= start:
                spans.append((start, end))
    return spans


def frozen_days(pkg: Mapping[str, Any]) -> int:
    return sum((end - start).days + 1 for start, end in frozen_spans(pkg))


def expires_on(pkg: Mapping[str, Any]) -> date:
    """The last day of the package, later by every frozen day."""
    try:
        return _day(pkg.get("expires"), "expiry") + timedelta(days=frozen_days(pkg))
    except OverflowError as exc:
        raise PackageError("the package's expiry is past the calendar's end") from exc


def state_on(pkg: Mapping[str, Any], day: date) -> PackageState:
    """The package's state on ``day``. A package the club ``revoked`` (a refund took
    it back) is ``expired`` on every day, its expiry at the latest the day before the
    refund, no grace."""
    expires = expires_on(pkg)
    if pkg.get("revoked") is not None:
        revoked = _day(pkg.get("revoked"), "revocation")
        return PackageState("expired", min(expires, revoked - timedelta(days=1)))
    if day < _day(pkg.get("starts"), "start"):
        return PackageState("not_started", expires)
    if any(start <= day <= end for start, end in frozen_spans(pkg)):
        return PackageState("frozen", expires)
    if day <= expires:
        return PackageState("active", expires)
    grace = max(0, _count(pkg.get("grace_days"), "grace days"))
    over = (day - expires).days
    if over <= grace:
        return PackageState("in_grace", expires, grace_left=grace - over)
    return PackageState("expired", expires)


@dataclass(frozen=True)
class Refusal:
    reason: str
    message: str
    params: Mapping[str, Any]


def use_refusal(pkg: Mapping[str, Any] | None, left: int | None, units: int, day: date,
                *, used_today_offline: int = 0, offline_max: int | None = None
                ) -> Refusal | None:
    """Why ``units`` visits of ``pkg`` cannot be used on ``day``, or None.

    ``left`` is the usable balance of ``visits.<id>`` (None for an unlimited
    membership); offline, ``offline_max`` bounds this terminal's uses of one member's
    packages per local day (``used_today_offline`` so far)."""
    if pkg is None:
        return Refusal("package_unknown", "This member holds no such package.", {})
    pid = str(pkg.get("package_id"))
    st = state_on(pkg, day)
    if st.state == "not_started":
        return Refusal("package_not_started", f"This package starts on "
                       f"{pkg.get('starts')}.", {"package_id": pid,
                                                 "starts": str(pkg.get("starts"))})
    if st.state == "frozen":
        return Refusal("package_frozen", "This package is frozen today.",
                       {"package_id": pid})
    if st.state == "expired":
        return Refusal("package_expired", f"This package expired on {st.expires} (grace "
                       f"days over).", {"package_id": pid, "expires": st.expires.isoformat()})
    if pkg.get("visits_total") is not None and (left or 0) < units:
        return Refusal("package_used_up", "No visits are left on this package.",
                       {"package_id": pid, "left": max(0, left or 0)})
    if offline_max is not None and used_today_offline + units > offline_max:
        return Refusal("package_offline_limit", "The terminal is offline and this member "
                       "has used today's offline check-ins here.",
                       {"package_id": pid, "offline_max": offline_max})
    return None


def freeze_refusal(pkg: Mapping[str, Any], start: date, end: date,
                   today: date) -> Refusal | None:
    """Why the package cannot be frozen from ``start`` to ``end`` (both included), or
    None: not backwards, not in the past, no overlap with a freeze, within the
    package's ``freezable_days`` in all."""
    pid = str(pkg.get("package_id"))
    # ``why`` tells the three ``bad_freeze`` cases apart for a UI (a 1.3 addition:
    # the reason stays ``bad_freeze`` for peers that know only it).
    if end < start:
        return Refusal("bad_freeze", "The freeze ends before it starts.",
                       {"package_id": pid, "why": "ends_before_start",
                        "from": start.isoformat(), "until": end.isoformat()})
    if start < today:
        return Refusal("bad_freeze", "A freeze cannot start in the past.",
                       {"package_id": pid, "why": "in_past", "from": start.isoformat(),
                        "today": today.isoformat()})
    overlap = next(((s, e) for s, e in frozen_spans(pkg) if not (end < s or start > e)), None)
    if overlap is not None:
        return Refusal("bad_freeze", "The package is already frozen then.",
                       {"package_id": pid, "why": "overlap",
                        "frozen_from": overlap[0].isoformat(),
                        "frozen_until": overlap[1].isoformat()})
    allowed = max(0, int(pkg.get("freezable_days") or 0))
    days = (end - start).days + 1
    if frozen_days(pkg) + days > allowed:
        return Refusal("freeze_too_long", f"This package may be frozen {allowed} days in all "
                       f"({frozen_days(pkg)} used).",
                       {"package_id": pid, "freezable_days": allowed,
                        "used": frozen_days(pkg), "days": days})
    return None


def member_packages(record: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    """The packages a member record holds (well-formed entries only, the first
    :data:`MAX_PACKAGES` of them; anything but a list: none)."""
    out: list[Mapping[str, Any]] = []
    packages = (record or {}).get("packages")
    for pkg in packages if isinstance(packages, list) else []:
        if len(out) == MAX_PACKAGES:
            break
        if isinstance(pkg, Mapping) and isinstance(pkg.get("package_id"), str) \
                and 0 < len(pkg["package_id"]) <= MAX_ID:
            out.append(pkg)
    return out


def find_package(record: Mapping[str, Any] | None,
                 package_id: str) -> Mapping[str, Any] | None:
    return next((p for p in member_packages(record) if p["package_id"] == package_id), None)


def summary(pkg: Mapping[str, Any], left: int | None, day: date) -> dict[str, Any]:
    """One package as the local API shows it (:class:`PackageError`: a field the
    terminal cannot read)."""
    st = state_on(pkg, day)
    total = pkg.get("visits_total")
    if total is not None and _count(total, "visits total") < 0:
        raise PackageError(f"the package's visits total {total} is below zero")
    return {"package_id": pkg["package_id"], "sku": _words(pkg.get("sku")),
            "name": _words(pkg.get("name")),
            "state": st.state, "usable": st.usable, "starts": _words(pkg.get("starts")),
            "expires": st.expires.isoformat(), "grace_left": st.grace_left,
            "visits_total": total,
            "visits_left": None if pkg.get("visits_total") is None else max(0, left or 0),
            "frozen": [{"from": s.isoformat(), "until": e.isoformat()}
                       for s, e in frozen_spans(pkg)]}


def usable_ids(packages: Iterable[Mapping[str, Any]], lefts: Mapping[str, int],
               day: date) -> list[str]:
    """The packages a check-in could use today (state usable, a visit left)."""
    out = []
    for pkg in packages:
        pid = str(pkg["package_id"])
        if state_on(pkg, day).usable and (pkg.get("visits_total") is None
                                          or lefts.get(visits_kind(pid), 0) > 0):
            out.append(pid)
    return out


# ---- (1.3) refunds of package sales ------------------------------------------------


@dataclass(frozen=True)
class RefundTake:
    """What a refund of a sale takes back of the packages it sold, as the club will:
    ``visits`` (package id → visits of its limited grants), ``unlimited`` (the ids of
    memberships it takes a grant of)."""

    visits: Mapping[str, int]
    unlimited: tuple[str, ...]


def refund_take(packages: Iterable[Mapping[str, Any]], sale_id: str,
                units: Mapping[int, int] | None,
                pending: Mapping[int, int] | None = None) -> RefundTake:
    """The grants (``sold_by`` entries) a refund of ``sale_id`` takes back: ``units``
    (line → units refunded now; None: the whole sale). The club takes a line's grants
    latest first, so ``pending`` (line → units refunded before that the record still
    shows granted) are the latest ones, and this refund takes the ones before them.
    A sale the record shows no grant of (not applied yet, or no package line) takes
    nothing."""
    visits: dict[str, int] = {}
    unlimited: list[str] = []
    skip = dict(pending or {})
    want = None if units is None else dict(units)
    for pkg in reversed(list(packages)):
        grants = pkg.get("sold_by")
        if not isinstance(grants, list):
            continue
        pid = str(pkg.get("package_id"))
        for grant in reversed(grants):
            if not isinstance(grant, Mapping) or grant.get("sale_id") != sale_id:
                continue
            line = grant.get("line")
            if not isinstance(line, int):
                continue
            if skip.get(line, 0) > 0:
                skip[line] -= 1
                continue
            if want is not None:
                if want.get(line, 0) <= 0:
                    continue
                want[line] -= 1
            if grant.get("visits") is None or pkg.get("visits_total") is None:
                if pid not in unlimited:
                    unlimited.append(pid)
            else:
                visits[pid] = visits.get(pid, 0) + max(0, int(grant["visits"]))
    return RefundTake(visits, tuple(unlimited))


def refund_refusal(take: RefundTake, lefts: Mapping[str, int],
                   used_since_sale: Mapping[str, int]) -> Refusal | None:
    """Why a refund taking ``take`` back cannot be recorded here, or None: a package
    whose usable visits (``lefts``: ``visits.<id>`` → balance) are fewer than the
    visits the refund takes back was used (the refund would give the money back for
    visits had); a membership with check-ins at this terminal since the sale
    (``used_since_sale``: package id → count) was used."""
    for pid, visits in take.visits.items():
        left = max(0, int(lefts.get(visits_kind(pid), 0)))
        if left < visits:
            used = visits - left
            return Refusal("package_used", f"{used} of the package's visits were used: it "
                           "cannot be refunded here; ask the club.",
                           {"package_id": pid, "used": used, "visits": visits})
    for pid in take.unlimited:
        if used_since_sale.get(pid, 0) > 0:
            used = used_since_sale[pid]
            return Refusal("package_used", f"{used} of the package's visits were used: it "
                           "cannot be refunded here; ask the club.",
                           {"package_id": pid, "used": used, "visits": None})
    return None
