"""Cash entries and their corrections: ``expense.add``, ``cash_receipt.add`` and
``event.correct`` (a correction refers to an event; the event itself never changes).
"""

from __future__ import annotations

from typing import Any

from agent.errors import ApiError
from agent.localapi import CONFLICT, INVALID_PARAMS, NOT_ALLOWED, NOT_FOUND
from agent.localapi.services.core import Caller, ServiceCore
from agent.localapi.services.params import Params, _amount, _text
from agent.offline_queue.events import CORRECTABLE
from agent.staff import permissions as perm


class CashMethods(ServiceCore):
    """``expense.add``, ``cash_receipt.add`` and ``event.correct``."""

    async def _money_event(self, type_: str, params: Params) -> dict[str, Any]:
        session = await self._session(params, perm.EXPENSE if type_ == "expense"
                                      else perm.CASH_RECEIPT)
        amount = _amount(params)
        category = _text(params, "category", max_len=64)
        note = _text(params, "note", required=False, max_len=500, default="") or ""
        stored = await self._record(f"an {type_}", self.records.add_cash_entry, type_, amount,
                                    category, note, by=session.staff_id, at=self.clock(),
                                    offline=not self.view.online())
        return {"event_id": stored.id}

    async def expense_add(self, params: Params, conn: Caller | None) -> dict[str, Any]:
        """``expense.add`` (cashier or manager)."""
        return await self._money_event("expense", params)

    async def cash_receipt_add(self, params: Params, conn: Caller | None) -> dict[str, Any]:
        """``cash_receipt.add`` (cashier or manager)."""
        return await self._money_event("cash_receipt", params)


    async def event_correct(self, params: Params, conn: Caller | None) -> dict[str, Any]:
        """``event.correct`` (manager): a ``correction`` event referring to an expense,
        cash receipt or enrolment; the corrected event itself is never changed."""
        session = await self._session(params, perm.REPORT)
        event_id = _text(params, "event_id", max_len=100)
        reason = _text(params, "reason", max_len=200)
        if not reason or not reason.strip():
            raise ApiError(INVALID_PARAMS, "A correction needs a reason.", {"param": "reason"})
        entry = await self.db.read(self.outbox.event, event_id)
        if entry is None or entry.type not in CORRECTABLE or entry.state == "rejected":
            raise ApiError(NOT_FOUND, "There is no expense, cash receipt or enrolment with "
                           "this id on this terminal.", {"param": "event_id"})
        need = perm.permission(entry.type, "edit")  # expense, cash_receipt, member_enrol
        if need not in session.permissions:
            raise ApiError(NOT_ALLOWED, f"A {session.role} may not correct this "
                           f"({perm.describe(need)}); ask a manager.",
                           {"reason": "role", "permission": need})
        void = params.get("void", False)
        if not isinstance(void, bool):
            raise ApiError(INVALID_PARAMS, "void must be true or false.", {"param": "void"})
        foreign = sorted(({k for keys in CORRECTABLE.values() for k in keys}
                          - set(CORRECTABLE[entry.type])) & params.keys())
        if foreign:
            raise ApiError(INVALID_PARAMS, f"A {entry.type.replace('_', ' ')} has no "
                           f"{foreign[0]} to correct.", {"param": foreign[0]})
        changes: dict[str, Any] = {}
        for key in CORRECTABLE[entry.type]:
            if params.get(key) is None:
                continue
            if key == "amount":
                changes[key] = _amount(params)
            elif key == "phone":
                changes[key] = await self._new_phone(params, entry.event)
            else:
                changes[key] = _text(params, key, max_len={"name": 100, "category": 64}
                                     .get(key, 500))
        if void == bool(changes):
            raise ApiError(INVALID_PARAMS, "Give either void, or what to change ("
                           f"{', '.join(CORRECTABLE[entry.type])}).")
        body: dict[str, Any] = {"ref_id": entry.id, "ref_type": entry.type,
                                "action": "void" if void else "amend",
                                "reason": reason.strip(), "changes": changes}
        if entry.type == "member_enrol":
            body["member_id"] = entry.event.get("member_id")
            name = changes.get("name")
            if name is not None and not str(name).strip():
                raise ApiError(INVALID_PARAMS, "The name must not be empty.", {"param": "name"})
        stored = await self._append("correction", body, session.staff_id)
        return {"event_id": stored.id, "ref_id": entry.id}

    async def _new_phone(self, params: Params, enrolment: dict[str, Any]) -> str:
        """The ``tel:`` token of a corrected phone; another member's phone is refused."""
        token = self._identifier_of({"phone": params.get("phone")})
        holder = await self.db.read(self.members.lookup, token)
        if holder is not None and holder.get("member_id") != enrolment.get("member_id") \
                and token not in (enrolment.get("identifiers") or []):
            raise ApiError(CONFLICT, f"This phone number already belongs to "
                           f"{holder.get('name')}.", {"member_id": holder.get("member_id"),
                                                     "identifier_kind": "tel"})
        return token
