"""Visit packages and memberships at the counter (protocol 1.3): ``package.list`` and
``package.checkin`` (docs/protocol/local-api.md, "Visit packages").

A member taps their card; the till shows the packages the club keeps in the member
record (visits left, expiry after freezes, grace days) and a check-in records a
``package_use``, checked by the store in the write transaction that records it
(``Outbox.append_package_use``): two tills at once never give more visits than the
package has at one terminal.
"""

from __future__ import annotations

import logging
from typing import Any

from agent.errors import ApiError
from agent.localapi import INVALID_PARAMS, LIMIT
from agent.localapi.services.adjust import AdjustMethods, _only
from agent.localapi.services.core import Caller
from agent.localapi.services.params import Params, _p, _parse_date, _text, request_id_param
from agent.offline_queue.events import epoch_us
from agent.offline_queue.package_uses import UseCheck
from agent.rules import packages as pk
from agent.staff import permissions as perm

log = logging.getLogger("agent.localapi.services")

_LIST_KEYS = frozenset({"session", "token", "member_id"})
_CHECKIN_KEYS = frozenset({"session", "token", "member_id", "package_id", "units",
                           "request_id"})
_FREEZE_KEYS = frozenset({"session", "token", "member_id", "package_id", "from", "until",
                          "reason"})
#: Check-ins one terminal gives one member per local day offline when the bundle says
#: nothing (docs/protocol/bundle.md, "Visit packages").
DEFAULT_OFFLINE_USES = 1

class PackageMethods(AdjustMethods):
    """``package.list`` and ``package.checkin``."""

    async def _package_member(self, params: Params) -> dict[str, Any]:
        # The same rule as a manual adjustment: the card (token) or member_id, active.
        return await self._adjusted_member(params)

    async def _packages_of(self, member: dict[str, Any]) -> list[dict[str, Any]]:
        member_id = str(member["member_id"])
        balances = await self.db.read(self.members.usable_balances, member_id)
        today = self._today()
        out = []
        for pkg in await self.db.read(self.outbox.member_packages, member_id):
            if pkg.get("revoked") is not None:
                continue  # (1.3) its sale was refunded: not the member's any more
            try:
                out.append(pk.summary(pkg, balances.get(pk.visits_kind(pkg["package_id"]), 0),
                                      today))
            except pk.PackageError as exc:
                log.warning("member %s: package %s unreadable: %s", member_id,
                            pkg.get("package_id"), exc)
        return out

    async def package_list(self, params: Params, conn: Caller | None) -> dict[str, Any]:
        """``package.list`` (cashier, manager): the member's packages, each with its state
        today (``active``, ``in_grace``, ``frozen``, ``not_started``, ``expired``),
        visits left and expiry."""
        _only(params, _LIST_KEYS)
        await self._session(params, perm.SELL)
        member = await self._package_member(params)
        return {"member_id": member["member_id"], "name": member.get("name"),
                "packages": await self._packages_of(member)}

    async def package_checkin(self, params: Params, conn: Caller | None) -> dict[str, Any]:
        """``package.checkin`` (cashier, manager): use ``units`` (default 1) visits of
        ``package_id``, or of the member's only usable package; several usable and
        none named: ``package_choice`` with the list."""
        _only(params, _CHECKIN_KEYS)
        session = await self._session(params, perm.SELL)
        member = await self._package_member(params)
        units = _p(params, "units", int, required=False, default=1)
        if not 1 <= units <= pk.MAX_UNITS:
            raise ApiError(INVALID_PARAMS, f"units must be 1 … {pk.MAX_UNITS}.",
                           {"param": "units", "reason": "out_of_range"})
        packages = await self._packages_of(member)
        package_id = _text(params, "package_id", required=False, max_len=64)
        if package_id is None:
            usable = [p for p in packages if p["usable"] and (p["visits_total"] is None
                                                              or p["visits_left"] > 0)]
            if len(usable) != 1:
                if not usable:
                    raise ApiError(LIMIT, "This member has no package to check in with.",
                                   {"reason": "package_none", "packages": packages})
                raise ApiError(INVALID_PARAMS, "This member has several packages: choose one.",
                               {"reason": "package_choice", "param": "package_id",
                                "packages": usable})
            package_id = str(usable[0]["package_id"])
        body: dict[str, Any] = {"member_id": str(member["member_id"]), "package_id": package_id,
                                "units": units, "identified_by": params.get("token")
                                if isinstance(params.get("token"), str) else None}
        request_id = request_id_param(params)
        if request_id is not None:
            body["request_id"] = request_id
        if body["identified_by"] is not None:
            body["identified_by"] = self._identifier_of({"token": body["identified_by"]})
        at = self.clock()
        offline = not self.view.online()
        bundle = self.view.bundle()
        start, end = bundle.local_day(at) if bundle is not None else \
            self._day_bounds(self._today())
        limit = None
        if offline:
            configured = bundle.offline.max_package_uses_per_member_day \
                if bundle is not None and bundle.offline is not None else None
            limit = DEFAULT_OFFLINE_USES if configured is None else configured
        check = UseCheck(self._today(), epoch_us(start), epoch_us(end), limit)
        stored, left = await self._record("a check-in", self.outbox.append_package_use,
                                          body, at=at, staff_id=session.staff_id,
                                          offline=offline, check=check)
        pkg = next((p for p in packages if p["package_id"] == package_id), None)
        return {"event_id": stored.id, "at": stored.at, "member_id": member["member_id"],
                "name": member.get("name"), "package_id": package_id,
                "package_name": (pkg or {}).get("name"), "units": units,
                "visits_left": left, "state": (pkg or {}).get("state"),
                "grace_left": (pkg or {}).get("grace_left"),
                "expires": (pkg or {}).get("expires"), "offline": offline}

    async def package_freeze(self, params: Params, conn: Caller | None) -> dict[str, Any]:
        """``package.freeze`` (manager: ``member_enrol.edit``): freeze the member's
        package from ``from`` to ``until`` (local dates, both included): no check-in
        then, and the expiry moves later by those days."""
        _only(params, _FREEZE_KEYS)
        session = await self._session(params, perm.CARD_LINK)
        member = await self._package_member(params)
        package_id = _text(params, "package_id", max_len=64)
        start, until = _parse_date(params.get("from"), "from"), \
            _parse_date(params.get("until"), "until")
        reason = _text(params, "reason", required=False, max_len=200)
        body: dict[str, Any] = {"member_id": str(member["member_id"]), "package_id": package_id,
                                "from": start.isoformat(), "until": until.isoformat(),
                                "reason": reason}
        stored = await self._record("a package freeze", self.outbox.append_package_freeze,
                                    body, at=self.clock(), staff_id=session.staff_id,
                                    offline=not self.view.online(), today=self._today())
        packages = await self._packages_of(member)
        return {"event_id": stored.id, "at": stored.at, "member_id": member["member_id"],
                "package": next((p for p in packages if p["package_id"] == package_id), None)}
