"""(1.3) Stored value and gift cards at the till (docs/protocol/local-api.md, "Stored
value and gift cards"): ``value.balance``, and what ``sale.quote``/``sale.commit`` add
— the top-ups and gift cards a basket sells, the ``stored_value``/``gift_card``
tenders that pay it, and the companion events of a refund.

The arithmetic is :mod:`agent.rules.stored_value`'s; the store checks the balances
again inside the write transaction (``Outbox.append_linked``).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

from agent.errors import ApiError
from agent.localapi import INVALID_PARAMS, LIMIT, NOT_FOUND, UNKNOWN_MEMBER
from agent.localapi.services.core import Caller, ServiceCore
from agent.localapi.services.params import Params, _checked_token
from agent.offline_queue import ValueCheck
from agent.offline_queue.events import epoch_us
from agent.rules.stored_value import (
    GIFT_KIND,
    StoredValueConfig,
    ValueRefused,
    ValueTender,
    gift_card_refusal,
    holder_spendable,
    is_value_kind,
    line_value_rows,
    max_balance_refusal,
    units_rows,
    value_refusal,
)
from agent.staff import permissions as perm

if TYPE_CHECKING:
    from agent.offline_queue import OutboxEntry

#: Most gift card tenders or cards sold one sale may carry (also the Struct's bound).
MAX_CARDS_PER_SALE = 50


def refused(exc: ValueRefused, code: int = LIMIT) -> ApiError:
    """A refusal of the stored-value arithmetic as the API error a cashier reads."""
    return ApiError(code, str(exc), {"reason": exc.reason, **exc.params})


def _value_config(view_bundle: Any) -> StoredValueConfig | None:
    return getattr(view_bundle, "stored_value", None) if view_bundle is not None else None


@dataclass
class ValueSale:
    """What a quote sells of stored value: ``topups`` rows and gift cards to issue
    (``{line, amount, expires, token?}``; card ids and tokens are made at commit)."""

    topups: list[dict[str, Any]] = field(default_factory=list)
    cards: list[dict[str, Any]] = field(default_factory=list)
    #: Lines paid in the member's units: ``{line, kind, units}``.
    units: list[dict[str, Any]] = field(default_factory=list)


class ValueMethods(ServiceCore):
    """``value.balance`` and the stored-value parts of a sale."""

    def _value_config(self) -> StoredValueConfig | None:
        return _value_config(self.view.bundle())

    def _value_check(self) -> ValueCheck:
        today = self._today()
        start, end = self._day_bounds(today)
        config = self._value_config()
        limit = config.offline_max_spend_per_holder_day if config is not None else None
        units = config.offline_max_units_per_holder_day if config is not None else None
        online = self.view.online()
        return ValueCheck(today, epoch_us(start), epoch_us(end), None if online else limit,
                          None if online else units)

    async def quote_value_rows(self, raw: Sequence[Any], details: Sequence[Mapping[str, Any]],
                               lines: Sequence[Mapping[str, Any]],
                               member: Mapping[str, Any] | None) -> ValueSale:
        """The top-ups and gift cards a basket sells (lines of products with ``topup`` /
        ``gift_card``), checked: a top-up needs a member, a kind the bundle defines
        and room under its ``max_balance``; a card's own token (``card_token`` on the
        line: a blank card tapped to be loaded) must be free."""
        specs: list[Mapping[str, Any] | None] = [
            {k: d[k] for k in ("topup", "gift_card", "units_price") if k in d} or None
            for d in details]
        specs += [None] * (len(lines) - len(specs))
        if not any(specs):
            return ValueSale()
        config = self._value_config()
        units = units_rows(specs, lines)
        if units:
            self._check_units(units, member)
        try:
            topups, cards = line_value_rows(specs, lines, config, self._today())
        except ValueRefused as exc:
            raise refused(exc, INVALID_PARAMS) from exc
        if topups and member is None:
            raise ApiError(LIMIT, "A top-up is put on a member's card: identify the member "
                           "first.", {"reason": "member_needed"})
        added: dict[str, int] = {}
        for row in topups:
            if config is None or config.type_of(row["kind"]) is None:
                raise ApiError(INVALID_PARAMS, f"The club's rules do not define the balance "
                               f"{row['kind']}; this top-up cannot be sold.",
                               {"reason": "unknown_value_kind", "kind": row["kind"]})
            added[row["kind"]] = added.get(row["kind"], 0) + row["amount"]
        if member is not None:
            balances = member.get("balances") or {}
            for kind, amount in added.items():
                over = max_balance_refusal(config, kind, int(balances.get(kind, 0)), amount)
                if over is not None:
                    raise refused(over)
        if len(cards) > MAX_CARDS_PER_SALE:
            raise ApiError(INVALID_PARAMS, f"At most {MAX_CARDS_PER_SALE} gift cards per sale.",
                           {"reason": "too_many_cards", "max": MAX_CARDS_PER_SALE})
        for card in cards:
            line = raw[card["line"]] if card["line"] < len(raw) else None
            token = line.get("card_token") if isinstance(line, Mapping) else None
            if token is not None:
                token = _checked_token(token, "card_token")
                if await self.db.read(self.members.lookup, token) is not None:
                    raise ApiError(INVALID_PARAMS, "This card already belongs to a member or "
                                   "gift card; use a new card.",
                                   {"reason": "gift_card_token_taken", "line": card["line"]})
                card["token"] = token
        return ValueSale(topups, cards, units)

    def _check_units(self, units: list[dict[str, Any]], member: Mapping[str, Any] | None) -> None:
        """Lines paid in units need the member, who must hold them (usable, unexpired)."""
        if member is None:
            raise ApiError(LIMIT, "Paying in units needs the member: identify the member "
                           "first.", {"reason": "member_needed"})
        balances = member.get("balances") or {}
        asked: dict[str, int] = {}
        for row in units:
            asked[row["kind"]] = asked.get(row["kind"], 0) + row["units"]
        for kind, amount in asked.items():
            have = holder_spendable(member, balances, kind, self._today())
            if amount > have:
                raise ApiError(LIMIT, f"The member has {have} of {kind}; {amount} needed.",
                               {"reason": "insufficient_value", "kind": kind,
                                "available": have, "asked": amount})

    @staticmethod
    def issue_cards(cards: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """The sale's ``gift_cards_issued``: each card with its id and token (a printed
        ``code:GC-…`` unless a card was tapped to be loaded)."""
        out = []
        for card in cards:
            token = card.get("token") or "code:GC-" + uuid.uuid4().hex[:12].upper()
            out.append({"line": card["line"], "card_id": "gc-" + uuid.uuid4().hex,
                        "token": token, "amount": card["amount"], "expires": card["expires"]})
        return out

    async def _gift_card(self, token: str) -> dict[str, Any] | None:
        """The gift card holding ``token`` (a typed code matched as the club stores it)."""
        if token.startswith("code:"):
            token = await self._code_as_stored(token)
        record = await self.db.read(self.members.lookup, token)
        return record if record is not None and record.get("holder") == "gift_card" else None

    async def resolve_value_tenders(self, tenders: Sequence[ValueTender],
                                    member: Mapping[str, Any] | None
                                    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The sale's value tender rows (``{method, amount, kind|card_id}``) and the
        companion ``gift_card_redeem`` bodies, each checked now (a readable refusal);
        the store checks again in the write transaction."""
        rows: list[dict[str, Any]] = []
        companions: list[dict[str, Any]] = []
        today = self._today()
        config = self._value_config()
        by_kind: dict[str, int] = {}
        by_card: dict[str, tuple[dict[str, Any], int]] = {}
        for tender in tenders:
            if tender.method == "stored_value":
                assert tender.kind is not None
                if member is None:
                    raise ApiError(LIMIT, "Stored value pays only for an identified member.",
                                   {"reason": "member_needed"})
                by_kind[tender.kind] = by_kind.get(tender.kind, 0) + tender.amount
            else:
                assert tender.token is not None
                token = _checked_token(tender.token, "tenders")
                card = await self._gift_card(token)
                if card is None:
                    raise ApiError(UNKNOWN_MEMBER, "This gift card is not known here. Check "
                                   "the code, or ask the customer for another payment.",
                                   {"reason": "gift_card_unknown"})
                known = by_card.get(card["member_id"])
                by_card[card["member_id"]] = (card, tender.amount + (known[1] if known else 0))
        if by_kind:
            assert member is not None
            balances = await self.db.read(self.members.usable_balances, member["member_id"])
            for kind, amount in by_kind.items():
                refusal = value_refusal(config, member, balances, kind, amount, today)
                if refusal is not None:
                    raise refused(refusal)
                rows.append({"method": "stored_value", "amount": amount, "kind": kind})
        for card_id, (card, amount) in by_card.items():
            balances = await self.db.read(self.members.usable_balances, card_id)
            refusal = gift_card_refusal(card, balances, amount, today)
            if refusal is not None:
                raise refused(refusal)
            rows.append({"method": "gift_card", "amount": amount, "card_id": card_id})
            companions.append({"card_id": card_id, "amount": amount})
        return rows, companions

    async def refund_companions(self, sale: OutboxEntry) -> list[dict[str, Any]]:
        """The ``gift_card_redeem`` bodies of a whole refund of ``sale``: each card that
        paid gets its amount back (negative amount); each card the sale sold gives
        its value back (positive amount, refused in the store when spent)."""
        out: list[dict[str, Any]] = []
        for row in sale.event.get("tenders") or []:
            if isinstance(row, Mapping) and row.get("method") == "gift_card":
                out.append({"card_id": row["card_id"], "amount": -int(row["amount"])})
        for card in sale.event.get("gift_cards_issued") or []:
            if isinstance(card, Mapping):
                out.append({"card_id": card["card_id"], "amount": int(card["amount"])})
        return out

    async def value_balance(self, params: Params, conn: Caller | None) -> dict[str, Any]:
        """``value.balance {token}`` (cashier, manager): the balances of the member or gift
        card holding ``token``, by type with their dated lots — outside a sale."""
        await self._session(params, perm.SELL)
        token = _checked_token(params.get("token"))
        if token.startswith("code:"):
            token = await self._code_as_stored(token)
        record = await self.db.read(self.members.lookup, token)
        if record is None:
            raise ApiError(NOT_FOUND, "No member or gift card has this card or code here.",
                           {"reason": "gift_card_unknown"})
        balances = await self.db.read(self.members.usable_balances, record["member_id"])
        return balance_answer(record, balances, self._value_config(), self._today())


def balance_answer(record: Mapping[str, Any], balances: Mapping[str, int],
                   config: StoredValueConfig | None, today: date) -> dict[str, Any]:
    """``value.balance``'s answer: the holder, and each stored-value balance with its
    type's name and unit, what is spendable today and its lots (``expired`` flagged)."""
    gift = record.get("holder") == "gift_card"
    lots_raw = record.get("balance_lots")
    lots_of = lots_raw if isinstance(lots_raw, Mapping) else {}
    kinds = sorted(k for k in balances if is_value_kind(k))
    if gift and GIFT_KIND not in kinds:
        kinds.append(GIFT_KIND)
    rows = []
    for kind in kinds:
        vtype = config.type_of(kind) if config is not None else None
        lots = [{"amount": int(lot["amount"]), "expires": str(lot["expires"])[:10],
                 "expired": str(lot["expires"])[:10] < today.isoformat()}
                for lot in lots_of.get(kind) or []
                if isinstance(lot, Mapping) and type(lot.get("amount")) is int
                and isinstance(lot.get("expires"), str)]
        rows.append({"kind": kind, "name": vtype.name if vtype else kind,
                     "unit": vtype.unit if vtype else None,
                     "amount": int(balances.get(kind, 0)),
                     "spendable": holder_spendable(record, balances, kind, today),
                     "tender": bool(vtype.spendable and kind.startswith("value."))
                     if vtype else gift,
                     "lots": lots})
    expires = record.get("expires")
    return {
        "holder": "gift_card" if gift else "member",
        "id": record["member_id"],
        "name": None if gift else record.get("name"),
        "status": record.get("status", "active"),
        "expires": str(expires)[:10] if isinstance(expires, str) else None,
        "expired": isinstance(expires, str) and str(expires)[:10] < today.isoformat(),
        "points": None if gift else int(balances.get("points", 0)),
        "balances": rows,
    }
