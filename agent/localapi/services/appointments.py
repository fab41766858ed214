"""Appointments: ``appointment.create``, ``.update``, ``.cancel`` and ``.list``.

An overlap with another booking of the same staff member is refused (-32008),
naming the other booking's time and service.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, ParamSpec, TypeVar

from agent.errors import ApiError
from agent.localapi import CONFLICT, INVALID_PARAMS, NOT_FOUND, UNKNOWN_MEMBER
from agent.localapi.services.core import Caller, ServiceCore
from agent.localapi.services.params import (
    Params,
    _checked_token,
    _p,
    _parse_date,
    _parse_time,
    _text,
)
from agent.offline_queue import AppointmentConflict
from agent.staff import permissions as perm

P = ParamSpec("P")
T = TypeVar("T")


class AppointmentMethods(ServiceCore):
    """``appointment.*``."""

    async def _appointment_fields(self, params: Params,
                                  base: Mapping[str, Any] | None) -> dict[str, Any]:
        base = dict(base or {})
        out: dict[str, Any] = {}
        customer = params.get("customer")
        if customer is None and isinstance(params.get("phone"), str):
            customer = params["phone"]
        if customer is None:
            customer = base.get("customer")
        if not isinstance(customer, str) or not customer.strip():
            raise ApiError(INVALID_PARAMS, "Say who the appointment is for (a member or a phone).",
                           {"param": "customer"})
        if customer.startswith("tel:"):
            customer = _checked_token(customer, "customer")   # no card number as a phone
        elif customer[:1] not in ("+", "0") and not customer.replace(" ", "").isdigit() \
                and not (await self.db.read(self.members.member, customer)):
            # A member id (club or local:) the terminal knows; nothing else is kept.
            raise ApiError(UNKNOWN_MEMBER, "No member has this id.")
        if customer[:1] in ("+", "0") or customer.replace(" ", "").isdigit():
            customer = self._identifier_of({"phone": customer})
        if customer.startswith("tel:"):
            # A phone that belongs to a member books the member.
            holder = await self.db.read(self.members.lookup, customer)
            if holder is not None:
                customer = holder["member_id"]
        out["customer"] = customer
        # A customer who is not a member is a phone; their name is kept with the booking
        # (a member's name comes from the member cache).
        name = _text(params, "customer_name", required=False, max_len=100)
        if name is None and customer == base.get("customer"):
            name = base.get("customer_name")
        out["customer_name"] = (name or None) if customer.startswith("tel:") else None
        service = (_text(params, "service", required=False, max_len=100)
                   if "service" in params else base.get("service"))
        if not isinstance(service, str) or not service.strip():
            raise ApiError(INVALID_PARAMS, "Say which service is booked.", {"param": "service"})
        out["service"] = service.strip()
        staff_id = params.get("staff_id", base.get("staff_id"))
        if not isinstance(staff_id, str) or not staff_id:
            raise ApiError(INVALID_PARAMS, "Say which staff member gives the service.",
                           {"param": "staff_id"})
        if await self.db.read(self.records.staff, staff_id) is None:
            raise ApiError(NOT_FOUND, "There is no staff member with this id.")
        out["staff_id"] = staff_id
        start = _parse_time(params.get("start", base.get("start")), "start")
        out["start"] = start.isoformat()
        minutes = params.get("minutes", base.get("minutes"))
        if isinstance(minutes, bool) or not isinstance(minutes, int) or not 1 <= minutes <= 1440:
            raise ApiError(INVALID_PARAMS, "The length must be 1 to 1440 minutes.",
                           {"param": "minutes", "reason": "bad_minutes", "min": 1,
                            "max": 1440})
        out["minutes"] = minutes
        # Free text is checked like every other: no control characters, no card number.
        note = (_text(params, "note", required=False, max_len=500)
                if params.get("note") is not None else base.get("note", ""))
        out["note"] = note or ""
        return out

    async def _conflict(self, other_id: str) -> ApiError:
        other = await self.db.read(self.records.appointment, other_id) or {}
        names = await self._staff_names([other.get("staff_id")])
        start = other.get("start")
        when = ""
        if isinstance(start, str):
            begin = datetime.fromisoformat(start).astimezone(self._tz())
            end = begin + timedelta(minutes=int(other.get("minutes") or 0))
            when = f" {begin:%H:%M}–{end:%H:%M}"
        who = names.get(str(other.get("staff_id")), "This staff member")
        return ApiError(CONFLICT, f"{who} is already booked{when} ({other.get('service')}).",
                        {"appointment_id": other_id, "reason": "appointment_overlap"})

    async def _appointment_call(self, what: str, fn: Callable[P, T], *args: P.args,
                                **kwargs: P.kwargs) -> T:
        """Record an appointment change; an overlap names the other booking."""
        try:
            return await self._record(what, fn, *args, **kwargs)
        except AppointmentConflict as exc:
            raise await self._conflict(exc.other_id) from exc

    async def appointment_create(self, params: Params, conn: Caller | None) -> dict[str, Any]:
        """``appointment.create``; an overlap with the same staff is -32008."""
        session = await self._session(params, perm.APPOINTMENT_ADD)
        appt = await self._appointment_fields(params, None)
        found, _stored = await self._appointment_call(
            "an appointment", self.records.create_appointment, customer=appt["customer"],
            service=appt["service"], staff_id=appt["staff_id"],
            start=datetime.fromisoformat(appt["start"]), minutes=appt["minutes"],
            note=appt["note"], by=session.staff_id, at=self.clock(),
            offline=not self.view.online(), customer_name=appt["customer_name"])
        return {"appointment_id": found["appointment_id"]}

    async def _existing_appointment(self, params: Params) -> dict[str, Any]:
        appointment_id = _p(params, "appointment_id", str)
        appt = await self.db.read(self.records.appointment, appointment_id)
        if appt is None or appt.get("status") == "cancelled":
            raise ApiError(NOT_FOUND, "There is no such appointment (it may have been "
                           "cancelled).")
        return dict(appt)

    async def appointment_update(self, params: Params, conn: Caller | None) -> dict[str, Any]:
        """``appointment.update``: move or change an appointment (given keys change)."""
        session = await self._session(params, perm.APPOINTMENT_EDIT)
        old = await self._existing_appointment(params)
        appt = await self._appointment_fields(params, old)
        found, _stored = await self._appointment_call(
            "an appointment change", self.records.update_appointment, old["appointment_id"],
            by=session.staff_id, at=self.clock(), offline=not self.view.online(),
            customer=appt["customer"], service=appt["service"], staff_id=appt["staff_id"],
            start=datetime.fromisoformat(appt["start"]), minutes=appt["minutes"],
            note=appt["note"], customer_name=appt["customer_name"] or "")
        return {"appointment_id": found["appointment_id"]}

    async def appointment_cancel(self, params: Params, conn: Caller | None) -> dict[str, Any]:
        """``appointment.cancel``."""
        session = await self._session(params, perm.APPOINTMENT_DELETE)
        appt = await self._existing_appointment(params)
        await self._appointment_call("a cancellation", self.records.cancel_appointment,
                                     appt["appointment_id"], by=session.staff_id,
                                     at=self.clock(), offline=not self.view.online())
        return {"appointment_id": appt["appointment_id"]}

    async def appointment_list(self, params: Params, conn: Caller | None) -> list[dict[str, Any]]:
        """``appointment.list``: the booked appointments starting on that local day.

        A list sorted by start, each with ``customer_name`` and ``staff_name``.
        """
        day = _parse_date(params.get("date")) if params.get("date") else self._today()
        staff_filter = params.get("staff_id")
        start, end = self._day_bounds(day)
        rows = await self.db.read(self.records.appointments_between, start, end)
        names = await self._staff_names({r.get("staff_id") for r in rows})
        items = []
        for row in rows:
            if row.get("status") not in (None, "active", "booked"):
                continue
            if staff_filter and row.get("staff_id") != staff_filter:
                continue
            if not start <= datetime.fromisoformat(row["start"]) < end:
                continue
            item = {k: row.get(k) for k in ("appointment_id", "customer", "service",
                                           "staff_id", "start", "minutes", "note")}
            item["staff_name"] = names.get(str(row.get("staff_id")), row.get("staff_id"))
            item["customer_name"] = (row.get("customer_name")
                                     or await self._customer_name(str(row.get("customer"))))
            items.append(item)
        items.sort(key=lambda a: (datetime.fromisoformat(str(a["start"])), str(a["staff_name"])))
        return items

    async def _customer_name(self, customer: str) -> str:
        if customer.startswith("tel:"):
            holder = await self.db.read(self.members.lookup, customer)
            return str(holder.get("name")) if holder else customer[4:]
        member = await self.db.read(self.members.member, customer)
        return str(member.get("name")) if member else customer


