"""(1.3) Stored value and gift cards in the store: the check made inside the write
transaction that records a sale (or refund) moving stored value.

The arithmetic is the rules engine's (:mod:`agent.rules.stored_value`); this module
only reads what it needs in the caller's transaction, so no interleaving of sales on
any thread or process takes a member's ``value.<x>`` or a gift card below zero at
this terminal. Across terminals offline, the bundle's
``stored_value.offline_max_spend_per_holder_day`` bounds what each may spend.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agent.offline_queue import events as ev
from agent.offline_queue.members import MemberCache
from agent.rules.stored_value import (
    GIFT_KIND,
    gift_card_refusal,
    holder_spendable,
    value_delta_of_sale,
)


class ValueNotAvailable(ev.InvalidEvent):
    """Stored value that cannot be spent; nothing was recorded. ``reason``:
    ``gift_card_unknown``, ``gift_card_empty``, ``gift_card_expired``,
    ``insufficient_value``, ``gift_card_spent`` (a refund cannot take back the value of
    a card already spent), ``offline_value_limit``; ``params`` say how much."""

    def __init__(self, reason: str, message: str, params: Mapping[str, Any] | None = None):
        self.reason = reason
        self.params = dict(params or {})
        super().__init__(message)


@dataclass(frozen=True)
class ValueCheck:
    """What the in-transaction check needs that the store does not know: the club's
    local date, that day's bounds (epoch µs), and the offline day limit per holder
    (None: online, or the bundle sets none)."""

    today: dt.date
    day_start_us: int
    day_end_us: int
    offline_limit: int | None = None
    offline_units_limit: int | None = None


_CARD_SPENT_TODAY = (
    "SELECT coalesce(sum(json_extract(body, '$.amount')), 0) FROM events "
    "WHERE member_id = ? AND type = 'gift_card_redeem' AND at_us >= ? AND at_us < ? "
    "AND state != 'rejected' AND json_extract(body, '$.refund_id') IS NULL")
_UNITS_USED_TODAY = (
    "SELECT coalesce(sum(json_extract(t.value, '$.units')), 0) FROM events e, "
    "json_each(e.body, '$.units_used') t WHERE e.member_id = ? AND e.type = 'sale' "
    "AND e.at_us >= ? AND e.at_us < ? AND e.state != 'rejected'")
_MEMBER_SPENT_TODAY = (
    "SELECT coalesce(sum(json_extract(t.value, '$.amount')), 0) FROM events e, "
    "json_each(e.body, '$.tenders') t WHERE e.member_id = ? AND e.type = 'sale' "
    "AND e.at_us >= ? AND e.at_us < ? AND e.state != 'rejected' "
    "AND json_extract(t.value, '$.method') = 'stored_value'")


def _offline_room(conn: sqlite3.Connection, query: str, holder: str, amount: int,
                  check: ValueCheck, limit: int | None = -1) -> None:
    limit = check.offline_limit if limit == -1 else limit
    if limit is None:
        return
    spent = int(conn.execute(query, (holder, check.day_start_us, check.day_end_us))
                .fetchone()[0])
    if spent + amount > limit:
        left = max(0, limit - spent)
        raise ValueNotAvailable(
            "offline_value_limit", f"offline, at most {limit} of stored value "
            f"may be spent per card or member and day here; {left} is left today",
            {"max": limit, "left": left})


def check_value_in_tx(conn: sqlite3.Connection, members: MemberCache, type_: str,
                      body: Mapping[str, Any], companions: Sequence[Mapping[str, Any]],
                      check: ValueCheck) -> None:
    """Refuse (ValueNotAvailable) what the holders cannot pay, read in the caller's
    write transaction: a sale's ``stored_value`` tenders against its member's usable
    balances, each companion ``gift_card_redeem`` against its card."""
    if type_ == "sale" and isinstance(body.get("member_id"), str):
        member_id = str(body["member_id"])
        by_kind: dict[str, int] = {}
        for row in body.get("tenders") or []:
            if isinstance(row, Mapping) and row.get("method") == "stored_value":
                by_kind[str(row["kind"])] = by_kind.get(str(row["kind"]), 0) + int(row["amount"])
        units = 0
        for row in body.get("units_used") or []:  # (1.3) lines paid in units
            by_kind[str(row["kind"])] = by_kind.get(str(row["kind"]), 0) + int(row["units"])
            units += int(row["units"])
        if by_kind:
            record = members.member(member_id) or {}
            balances = members.usable_balances(member_id)
            for kind, amount in by_kind.items():
                have = holder_spendable(record, balances, kind, check.today)
                if amount > have:
                    raise ValueNotAvailable(
                        "insufficient_value", f"the member has {have} of {kind} to spend, the "
                        f"sale asks {amount}; nothing was recorded",
                        {"kind": kind, "available": have, "asked": amount})
            money = sum(v for k, v in by_kind.items() if k.startswith("value."))
            if money:
                _offline_room(conn, _MEMBER_SPENT_TODAY, member_id, money, check)
            if units:
                _offline_room(conn, _UNITS_USED_TODAY, member_id, units, check,
                              check.offline_units_limit)
    if type_ == "refund":
        _check_refund_in_tx(conn, members, body)
    for companion in companions:
        card_id, amount = str(companion["card_id"]), int(companion["amount"])
        if amount <= 0:
            continue  # value put back on the card by a refund
        card = members.member(card_id)
        balances = members.usable_balances(card_id)
        if type_ != "sale":  # a refund takes back the value of a card its sale issued
            have = int(balances.get(GIFT_KIND, 0))
            if amount > have:
                raise ValueNotAvailable(
                    "gift_card_spent", f"the gift card sold by this sale holds {have} of "
                    f"the {amount} it was sold with; it cannot be refunded whole",
                    {"card_id": card_id, "available": have, "asked": amount})
            continue
        refusal = gift_card_refusal(card, balances, amount, check.today)
        if refusal is not None:
            raise ValueNotAvailable(refusal.reason, str(refusal), refusal.params)
        _offline_room(conn, _CARD_SPENT_TODAY, card_id, amount, check)


def _check_refund_in_tx(conn: sqlite3.Connection, members: MemberCache,
                        body: Mapping[str, Any]) -> None:
    """A refund takes back the top-ups of its sale: the member must still hold them."""
    row = conn.execute("SELECT body, member_id FROM events WHERE id = ? AND type = 'sale'",
                       (body.get("sale_id"),)).fetchone()
    if row is None or row[1] is None:
        return
    taken = {k: v for k, v in value_delta_of_sale(json.loads(row[0])).items() if v > 0}
    if not taken:
        return
    balances = members.usable_balances(str(row[1]))
    for kind, amount in taken.items():
        have = int(balances.get(kind, 0))
        if amount > have:
            raise ValueNotAvailable(
                "insufficient_value", f"the member has spent part of this top-up ({have} of "
                f"{kind} left, {amount} to take back); it cannot be refunded whole",
                {"kind": kind, "available": have, "asked": amount})


def gift_card_record(card: Mapping[str, Any], sale_id: str) -> dict[str, Any]:
    """The provisional holder record of a gift card sold here, until the club's."""
    return {
        "member_id": card["card_id"], "version": 0, "holder": "gift_card", "name": None,
        "status": "active", "identifiers": [card["token"]],
        "balances": {GIFT_KIND: int(card["amount"])},
        "balance_lots": ({GIFT_KIND: [{"amount": int(card["amount"]),
                                       "expires": card["expires"]}]}
                         if card.get("expires") else {}),
        "expires": card.get("expires"), "stats": {}, "applied": {}, "_sale_id": sale_id,
    }


def encode_record(record: Mapping[str, Any]) -> str:
    """A record as the cache stores it."""
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False)
