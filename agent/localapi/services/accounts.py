"""(1.3) House accounts at the till: ``account.status`` and ``account.pay``.

Paying on account is a tender of ``sale.commit`` (``{"method": "account",
"account_id"}`` or ``"account_token"`` for the account card); the store checks it
against the account in the write transaction that records the sale and its
``account_charge`` (agent/offline_queue/outbox.py, agent/rules/accounts.py).
"""

from __future__ import annotations

from typing import Any

from agent.errors import ApiError
from agent.localapi import INVALID_PARAMS, NOT_FOUND
from agent.localapi.services.core import Caller, ServiceCore
from agent.localapi.services.params import Params, _checked_token, _p, _text
from agent.offline_queue import QuoteAlreadyRecorded
from agent.offline_queue.events import MAX_AMOUNT, OWED
from agent.offline_queue.outbox import PAYMENT_KEY
from agent.rules import accounts
from agent.staff import permissions as perm

#: Most accounts ``account.status`` lists for one member.
MAX_ACCOUNTS_LISTED = 20
#: Most authorised buyers listed by name per account.
MAX_BUYERS_LISTED = 50
#: Methods a payment of what an account owes may be taken by.
PAY_METHODS = ("cash", "card", "other")
NO_ACCOUNT = "There is no such house account on this terminal."


class AccountMethods(ServiceCore):
    """``account.status`` and ``account.pay``."""

    async def account_view(self, record: dict[str, Any]) -> dict[str, Any]:
        """What the till shows of one account: owed, limit, available, buyers."""
        account_id = str(record["member_id"])
        owed = (await self.db.read(self.members.usable_balances, account_id)).get(OWED, 0)
        buyers = []
        for member_id in accounts.authorised(record)[:MAX_BUYERS_LISTED]:
            member = await self.db.read(self.members.member, member_id)
            buyers.append({"member_id": member_id,
                           "name": (member or {}).get("name")})
        bundle = self.view.bundle()
        offline = bundle.offline if bundle is not None else None
        return {"account_id": account_id, "name": record.get("name"),
                "status": record.get("status", "active"), "owed": owed,
                "credit_limit": accounts.credit_limit(record),
                "available": accounts.available(record, owed),
                "authorised": buyers,
                "offline_max": offline.max_account_charge if offline is not None else None}

    async def account_status(self, params: Params, conn: Caller | None) -> dict[str, Any]:
        """``account.status`` (cashier, manager): exactly one of ``token`` (the account
        card, or a member's card: the accounts that member may buy on), ``account_id``
        or ``member_id``. Answers ``{accounts: [...]}`` (empty: none)."""
        await self._session(params, perm.SELL)
        given = [k for k in ("token", "account_id", "member_id") if params.get(k) is not None]
        if len(given) != 1:
            raise ApiError(INVALID_PARAMS, "Give exactly one of token, account_id or member_id.",
                           {"reason": "bad_params"})
        records: list[dict[str, Any]] = []
        if given[0] == "token":
            token = _checked_token(params.get("token"))
            found = await self.db.read(self.members.lookup, token)
            if accounts.is_account(found):
                assert found is not None
                records = [found]
            elif found is not None:
                records = await self.db.read(self.members.accounts_for,
                                             str(found["member_id"]), MAX_ACCOUNTS_LISTED)
        elif given[0] == "account_id":
            account_id = _text(params, "account_id", max_len=100)
            found = await self.db.read(self.members.member, account_id)
            if not accounts.is_account(found):
                raise ApiError(NOT_FOUND, NO_ACCOUNT, {"reason": "account_unknown"})
            assert found is not None
            records = [found]
        else:
            member_id = _text(params, "member_id", max_len=100)
            records = await self.db.read(self.members.accounts_for, member_id,
                                         MAX_ACCOUNTS_LISTED)
        return {"accounts": [await self.account_view(r) for r in records]}

    async def account_pay(self, params: Params, conn: Caller | None) -> dict[str, Any]:
        """``account.pay`` (cashier, manager): the customer pays ``amount`` (minor
        units, 1 … what the account owes) of the account ``account_id`` by ``method``
        (cash, card, other); an ``account_payment`` event. Answers the event id and the
        account after it."""
        session = await self._session(params, perm.SELL)
        account_id = _text(params, "account_id", max_len=100)
        amount = _p(params, "amount", int)
        if not 1 <= amount <= MAX_AMOUNT:
            raise ApiError(INVALID_PARAMS, "The amount must be a whole number of minor units, "
                           "at least 1.", {"param": "amount", "reason": "bad_amount"})
        method = _p(params, "method", str, required=False, default="cash")
        if method not in PAY_METHODS:
            raise ApiError(INVALID_PARAMS, f"The method must be one of {', '.join(PAY_METHODS)}.",
                           {"param": "method", "reason": "bad_method"})
        note = _text(params, "note", required=False, max_len=500)
        payment_id = _text(params, "payment_id", required=False, max_len=64)
        record = await self.db.read(self.members.member, account_id)
        if not accounts.is_account(record):
            raise ApiError(NOT_FOUND, NO_ACCOUNT, {"reason": "account_unknown"})
        assert record is not None
        body: dict[str, Any] = {"account_id": account_id, "amount": amount, "method": method,
                                "note": note}
        if payment_id is not None:
            # A retry after a lost answer (the agent restarted) answers the payment
            # recorded for this key instead of taking it twice.
            body["payment_id"] = payment_id
            earlier = await self._payment_taken(payment_id)
            if earlier is not None:
                return {"event_id": earlier, "account": await self.account_view(record),
                        "repeated": True}
        try:
            stored = await self._append("account_payment", body, session.staff_id)
        except ApiError as exc:
            earlier = await self._payment_taken(payment_id) if payment_id else None
            if isinstance(exc.__cause__, QuoteAlreadyRecorded) and earlier is not None:
                return {"event_id": earlier, "account": await self.account_view(record),
                        "repeated": True}
            raise
        return {"event_id": stored.id, "account": await self.account_view(record)}

    async def _payment_taken(self, payment_id: str) -> str | None:
        """The id of the payment recorded under the client's ``payment_id``, or None."""
        entry = await self.db.read(self.outbox.sale_for_quote, PAYMENT_KEY + payment_id)
        return entry.id if entry is not None else None

    async def resolve_account_token(self, token: object) -> tuple[str, str]:
        """The account a tender's ``account_token`` (the account card) names, and the
        token as stored; ApiError ``account_unknown`` when it is no account's card."""
        checked = _checked_token(token, "account_token")
        record = await self.db.read(self.members.lookup, checked)
        if not accounts.is_account(record):
            raise ApiError(NOT_FOUND, "This card is not a house account's card.",
                           {"param": "tenders", "reason": "account_unknown"})
        assert record is not None
        return str(record["member_id"]), checked
