"""Stored value and gift cards (protocol 1.3, #19 "value"): pure checks and arithmetic.

- The bundle's ``stored_value`` block: the balance types a club sells (``value.<x>``:
  money in minor units; ``units.<x>``: non-money units), whether each may pay a sale
  here, its ceiling, its default validity, and the offline spending limit.
- Tenders ``stored_value`` (a ``value.<x>`` balance of the sale's member) and
  ``gift_card`` (a gift card found by its token) as the local API takes them.
- The rows a sale records for what it sells: ``topups`` and ``gift_cards_issued``.
- What is spendable of a dated balance today (lots expired before today are not).

No I/O, no clock: days and amounts are passed in. Documented in
docs/protocol/bundle.md ("Stored value") and docs/protocol/club.md ("Stored value
and gift cards").
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from agent.errors import RulesError
from agent.rules.model import Quote

#: Tender methods that spend a stored balance (besides rules.tenders' money methods).
VALUE_METHODS = ("stored_value", "gift_card")
#: The balance kind a gift card holds.
GIFT_KIND = "value.gift"
#: Most stored value or gift card tenders one sale may carry.
MAX_VALUE_TENDERS = 4
#: Most balance types one bundle may define.
MAX_TYPES = 32
MAX_AMOUNT = 2**53 - 1
_KIND = re.compile(r"(value|units)\.[a-z0-9_]{1,32}")


class ValueRefused(ValueError):
    """A stored-value action that cannot be done; ``reason`` is machine-readable
    (``gift_card_empty``, ``gift_card_expired``, ``gift_card_unknown``,
    ``insufficient_value``, ``not_spendable``, ``bad_tenders``, ``over_max_balance``)."""

    def __init__(self, reason: str, message: str, **params: Any):
        super().__init__(message)
        self.reason = reason
        self.params = params


@dataclass(frozen=True, slots=True)
class ValueType:
    """One balance type of the bundle's ``stored_value.types``."""

    kind: str
    name: str
    unit: str | None
    spendable: bool
    max_balance: int | None
    expires_days: int | None


@dataclass(frozen=True, slots=True)
class StoredValueConfig:
    """The bundle's ``stored_value`` block."""

    types: tuple[ValueType, ...]
    #: Offline, the most one holder (member or gift card) may spend of stored value
    #: per local day at one terminal (None: no limit; 0: nothing while offline).
    offline_max_spend_per_holder_day: int | None = None
    #: Offline, the most ``units.*`` one member may use per local day at one terminal.
    offline_max_units_per_holder_day: int | None = None

    def type_of(self, kind: str) -> ValueType | None:
        """The type of ``kind``, or None when the bundle does not define it."""
        return next((t for t in self.types if t.kind == kind), None)


def is_value_kind(kind: object) -> bool:
    """Whether ``kind`` names a stored-value balance (``value.<x>`` / ``units.<x>``)."""
    return isinstance(kind, str) and _KIND.fullmatch(kind) is not None


def _int(where: str, key: str, value: object, minimum: int = 0) -> int:
    if type(value) is not int or not minimum <= value <= MAX_AMOUNT:
        raise RulesError(f"{where}: {key!r} must be a whole number from {minimum} to 2^53-1")
    assert isinstance(value, int)
    return value


def parse_stored_value(raw: object) -> StoredValueConfig:
    """The bundle's ``stored_value`` block, checked (RulesError naming the key)."""
    if not isinstance(raw, Mapping):
        raise RulesError("bundle stored_value: must be an object {types, offline_max_...}")
    types_raw = raw.get("types", [])
    if not isinstance(types_raw, list) or len(types_raw) > MAX_TYPES:
        raise RulesError(f"bundle stored_value: 'types' must be a list of at most {MAX_TYPES}")
    types: list[ValueType] = []
    for i, item in enumerate(types_raw):
        where = f"bundle stored_value.types[{i}]"
        if not isinstance(item, Mapping):
            raise RulesError(f"{where}: must be an object")
        kind = item.get("kind")
        if not is_value_kind(kind):
            raise RulesError(f"{where}: 'kind' must be value.<name> or units.<name> "
                             f"(lower-case letters, digits, _), not {str(kind)[:40]!r}")
        assert isinstance(kind, str)
        if any(t.kind == kind for t in types):
            raise RulesError(f"{where}: kind {kind!r} is defined twice")
        name = item.get("name", kind)
        unit = item.get("unit")
        if not isinstance(name, str) or len(name) > 120 or (
                unit is not None and (not isinstance(unit, str) or len(unit) > 40)):
            raise RulesError(f"{where}: 'name' and 'unit' must be short texts")
        spendable = item.get("spendable", True)
        if not isinstance(spendable, bool):
            raise RulesError(f"{where}: 'spendable' must be true or false")
        max_balance = item.get("max_balance")
        expires_days = item.get("expires_days")
        types.append(ValueType(
            kind, name, unit, spendable,
            None if max_balance is None else _int(where, "max_balance", max_balance, 1),
            None if expires_days is None else _int(where, "expires_days", expires_days, 1)))
    limit = raw.get("offline_max_spend_per_holder_day")
    units = raw.get("offline_max_units_per_holder_day")
    return StoredValueConfig(
        tuple(types),
        None if limit is None else _int("bundle stored_value",
                                        "offline_max_spend_per_holder_day", limit),
        None if units is None else _int("bundle stored_value",
                                        "offline_max_units_per_holder_day", units))


def expiry_date(today: dt.date, days: int | None) -> str | None:
    """The last valid local date of value bought ``today`` and valid ``days`` days
    (None: it does not expire)."""
    return None if days is None else (today + dt.timedelta(days=days)).isoformat()


def spendable(balance: int, lots: object, today: dt.date) -> int:
    """``balance`` less the ``balance_lots`` rows of its kind that expired before
    ``today`` (each ``{amount, expires}``, the last valid local date); never below 0.

    The club spends the soonest-expiring lots first, so the expired lots are what is
    left of them: exactly what may no longer be spent."""
    day = today.isoformat()
    expired = 0
    if isinstance(lots, list):
        for lot in lots:
            if isinstance(lot, Mapping) and type(lot.get("amount")) is int \
                    and isinstance(lot.get("expires"), str) and lot["expires"][:10] < day:
                expired += max(0, lot["amount"])
    return max(0, balance - expired)


def holder_spendable(record: Mapping[str, Any], balances: Mapping[str, int], kind: str,
                     today: dt.date) -> int:
    """What a holder (member or gift card record, ``balances`` the usable ones) may spend
    of ``kind`` today. A gift card past its own ``expires`` date holds nothing usable."""
    expires = record.get("expires")
    if isinstance(expires, str) and expires[:10] < today.isoformat():
        return 0
    lots = record.get("balance_lots")
    return spendable(int(balances.get(kind, 0)),
                     lots.get(kind) if isinstance(lots, Mapping) else None, today)


def gift_card_refusal(record: Mapping[str, Any] | None, balances: Mapping[str, int],
                      amount: int, today: dt.date) -> ValueRefused | None:
    """Why a gift card cannot pay ``amount`` today (None: it can)."""
    if record is None or record.get("holder") != "gift_card":
        return ValueRefused("gift_card_unknown", "This gift card is not known here.")
    if record.get("status", "active") != "active":
        return ValueRefused("gift_card_unknown", "This gift card is blocked.")
    expires = record.get("expires")
    if isinstance(expires, str) and expires[:10] < today.isoformat():
        return ValueRefused("gift_card_expired", f"This gift card expired after "
                            f"{expires[:10]}.", expires=expires[:10])
    have = holder_spendable(record, balances, GIFT_KIND, today)
    if have <= 0:
        return ValueRefused("gift_card_empty", "This gift card has no value left.")
    if amount > have:
        return ValueRefused("insufficient_value", f"The gift card holds only {have}; "
                            f"{amount} asked.", available=have, asked=amount)
    return None


def value_refusal(config: StoredValueConfig | None, record: Mapping[str, Any],
                  balances: Mapping[str, int], kind: str, amount: int,
                  today: dt.date) -> ValueRefused | None:
    """Why a member cannot pay ``amount`` of ``kind`` today (None: they can)."""
    vtype = config.type_of(kind) if config is not None else None
    if vtype is None or not vtype.spendable or not kind.startswith("value."):
        return ValueRefused("not_spendable", f"{kind} cannot pay a sale here.", kind=kind)
    have = holder_spendable(record, balances, kind, today)
    if amount > have:
        return ValueRefused("insufficient_value", f"The member has {have} of {kind}; "
                            f"{amount} asked.", available=have, asked=amount, kind=kind)
    return None


@dataclass(frozen=True, slots=True)
class ValueTender:
    """A ``stored_value`` tender (``kind``) or a ``gift_card`` tender (``token``)."""

    method: str
    amount: int
    kind: str | None = None
    token: str | None = None


def split_tenders(raw: object) -> tuple[list[Any], list[ValueTender]]:
    """The local API's ``tenders`` split into money tenders (left as given, for
    :func:`agent.rules.tenders.parse_tenders`) and value tenders, checked.

    ``{method: "stored_value", kind, amount}`` and ``{method: "gift_card", token,
    amount}`` (``amount`` ≥ 1). Raises ValueRefused ``bad_tenders``."""
    if not isinstance(raw, list):
        return raw, []  # type: ignore[return-value]  # parse_tenders refuses it
    money: list[Any] = []
    value: list[ValueTender] = []
    for item in raw:
        method = item.get("method") if isinstance(item, Mapping) else None
        if method not in VALUE_METHODS:
            money.append(item)
            continue
        assert isinstance(item, Mapping)
        amount = item.get("amount")
        if type(amount) is not int or not 1 <= amount <= MAX_AMOUNT:
            raise ValueRefused("bad_tenders", "A stored value or gift card tender needs an "
                               "amount of at least 1.")
        assert isinstance(amount, int)
        if method == "stored_value":
            kind = item.get("kind")
            if not is_value_kind(kind) or not str(kind).startswith("value."):
                raise ValueRefused("bad_tenders", "A stored value tender needs the kind of "
                                   "balance it spends (value.<name>).")
            value.append(ValueTender("stored_value", amount, kind=str(kind)))
        else:
            token = item.get("token")
            if not isinstance(token, str) or ":" not in token or not 3 <= len(token) <= 300:
                raise ValueRefused("bad_tenders", "A gift card tender needs the card's token "
                                   "(tap or scan the card, or type its code).")
            value.append(ValueTender("gift_card", amount, token=token))
    if len(value) > MAX_VALUE_TENDERS:
        raise ValueRefused("bad_tenders", f"At most {MAX_VALUE_TENDERS} stored value or gift "
                           "card tenders per sale.", max=MAX_VALUE_TENDERS)
    return money, value


def value_delta_of_sale(sale: Mapping[str, Any]) -> dict[str, int]:
    """What a sale does to its member's stored-value balances: +each ``topups`` row,
    −each ``stored_value`` tender, by kind (zeros left out)."""
    out: dict[str, int] = {}
    for row in sale.get("topups") or []:
        if isinstance(row, Mapping) and isinstance(row.get("kind"), str):
            out[row["kind"]] = out.get(row["kind"], 0) + int(row.get("amount") or 0)
    for row in sale.get("tenders") or []:
        if isinstance(row, Mapping) and row.get("method") == "stored_value" \
                and isinstance(row.get("kind"), str):
            out[row["kind"]] = out.get(row["kind"], 0) - int(row.get("amount") or 0)
    for row in sale.get("units_used") or []:
        if isinstance(row, Mapping) and isinstance(row.get("kind"), str):
            out[row["kind"]] = out.get(row["kind"], 0) - int(row.get("units") or 0)
    return {k: v for k, v in out.items() if v}


def has_value_rows(sale: Mapping[str, Any]) -> bool:
    """Whether a sale moved stored value (top-ups, gift cards sold, or paid by them):
    such a sale is refunded whole (docs/protocol/club.md, "Stored value and gift cards")."""
    return bool(sale.get("topups") or sale.get("gift_cards_issued")
                or sale.get("units_used") or any(
        isinstance(t, Mapping) and t.get("method") in VALUE_METHODS
        for t in sale.get("tenders") or []))


def line_value_rows(products: Sequence[Mapping[str, Any] | None],
                    lines: Sequence[Mapping[str, Any]], config: StoredValueConfig | None,
                    today: dt.date) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The ``topups`` and gift cards a basket sells: for each line whose product
    (``products[i]``: its ``topup`` / ``gift_card`` definition, or None) sells stored
    value. A fixed ``amount`` is credited per unit; an open amount (``amount`` null)
    credits what the line costs (``qty × unit_price``). Gift cards: one card per line,
    ``qty`` 1. Raises ValueRefused ``bad_value_line``."""
    topups: list[dict[str, Any]] = []
    cards: list[dict[str, Any]] = []
    for i, (spec, line) in enumerate(zip(products, lines, strict=True)):
        if spec is None:
            continue
        qty = int(line.get("qty", 1))
        price = int(line.get("unit_price", 0))
        if "topup" in spec:
            top = spec["topup"]
            kind = str(top["kind"])
            amount = int(top["amount"]) * qty if top.get("amount") is not None else qty * price
            vtype = config.type_of(kind) if config is not None else None
            days = top.get("expires_days")
            days = days if days is not None else (vtype.expires_days if vtype else None)
            if amount <= 0:
                raise ValueRefused("bad_value_line", f"Line {i + 1}: a top-up needs an "
                                   "amount.", line=i)
            topups.append({"line": i, "kind": kind, "amount": amount,
                           "expires": expiry_date(today, days)})
        elif "gift_card" in spec:
            card = spec["gift_card"]
            if qty != 1:
                raise ValueRefused("bad_value_line", f"Line {i + 1}: sell one gift card per "
                                   "line.", line=i)
            amount = int(card["amount"]) if card.get("amount") is not None else price
            if amount <= 0:
                raise ValueRefused("bad_value_line", f"Line {i + 1}: a gift card needs an "
                                   "amount.", line=i)
            vtype = config.type_of(GIFT_KIND) if config is not None else None
            days = card.get("expires_days")
            days = days if days is not None else (vtype.expires_days if vtype else None)
            cards.append({"line": i, "amount": amount, "expires": expiry_date(today, days)})
    return topups, cards


def units_rows(specs: Sequence[Mapping[str, Any] | None],
               lines: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The ``units_used`` of a basket: each line of a product paid in units
    (``specs[i]["units_price"]`` ``{kind, units}``) uses ``qty × units`` of ``kind``."""
    out = []
    for i, (spec, line) in enumerate(zip(specs, lines, strict=True)):
        if spec is not None and "units_price" in spec:
            price = spec["units_price"]
            out.append({"line": i, "kind": str(price["kind"]),
                        "units": int(line.get("qty", 1)) * int(price["units"])})
    return out


def max_balance_refusal(config: StoredValueConfig | None, kind: str, balance: int,
                        adding: int) -> ValueRefused | None:
    """Why a top-up of ``adding`` would pass the type's ``max_balance`` (None: it fits)."""
    vtype = config.type_of(kind) if config is not None else None
    if vtype is not None and vtype.max_balance is not None \
            and balance + adding > vtype.max_balance:
        return ValueRefused("over_max_balance", f"{vtype.name} may hold at most "
                            f"{vtype.max_balance}; the member has {balance}.",
                            kind=kind, max=vtype.max_balance, balance=balance)
    return None


def outside_rules(quote: Quote, lines: Sequence[Mapping[str, Any]],
                  value_lines: Sequence[int]) -> Quote:
    """The quote of a basket whose lines ``value_lines`` sell stored value, from the
    rules' quote of the other lines: stored value is sold at its price, outside every
    rule (no discount, no points, not payable by points or credit — as Odoo leaves its
    gift card and eWallet products out of loyalty programs). Their totals are added to
    ``gross``, ``net`` and ``payable``; ``line_nets`` gets them at their places."""
    totals = {i: int(lines[i].get("qty", 1)) * int(lines[i].get("unit_price", 0))
              for i in value_lines}
    extra = sum(totals.values())
    nets = list(quote.line_nets)
    if len(nets) == len(lines) - len(totals):
        for i in sorted(totals):
            nets.insert(i, totals[i])
    explain = [*quote.explain, {
        "step": "stored_value", "why": "stored_value_outside_rules", "amount": extra,
        "text": f"{len(totals)} stored value line(s) ({extra}) sold at their price, "
                "outside the rules"}]
    return replace(quote, gross=quote.gross + extra, net=quote.net + extra,
                   payable=quote.payable + extra, line_nets=nets, explain=explain)
