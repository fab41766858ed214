"""Events of the protocol as plain data: validation, wire form and balance effects.

Pure functions, no I/O: the store calls them inside its transactions, tests call
them with dicts. See ``docs/store.md`` for the decisions taken where
``protocol.md`` is silent.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import msgspec

from agent.errors import ClubtermError
from agent.protocol.events import AnyEvent
from agent.rules.stored_value import GIFT_KIND, value_delta_of_sale

#: Every event type of protocol.md and the keys each must carry (values may be null
#: where the protocol allows it).
EVENT_TYPES: dict[str, tuple[str, ...]] = {
    "sale": (
        "member_id", "identified_by", "lines", "gross", "discounts", "redeemed_points",
        "redeemed_value", "credits_used", "payable", "points_earned", "credits_earned",
        "lottery_entries", "rules_version", "payment",
    ),
    "refund": ("sale_id", "reason"),
    # (1.1) A refund of some lines of a sale (docs/protocol/club.md): the local API
    # gives `lines`; the store adds the reversal (agent/rules/refund.py) in the write
    # transaction that records it. A v1 club rejects it `unknown_type`.
    "refund_lines": ("sale_id", "reason", "lines"),
    "attendance": ("staff_id", "action", "identified_by"),
    "expense": ("amount", "category", "note"),
    "cash_receipt": ("amount", "category", "note"),
    "appointment": (
        "appointment_id", "action", "customer", "service", "staff_id", "start", "minutes",
        "note",
    ),
    "member_enrol": ("member_id", "name", "identifiers", "referred_by"),
    "card_link": ("member_id", "identifier"),
    # A staff member created or changed at the terminal (docs/protocol/staff.md); the
    # common staff_id is the manager who did it. `pin` is the scrypt hash object, never a PIN.
    "staff_change": ("action", "target_staff_id", "name", "groups", "pin", "badges", "active"),
    # Additions to protocol.md (docs/sync.md, "Corrections and day closes"):
    # a manager's correction of an earlier event (the old one stays as it was) …
    "correction": ("ref_id", "ref_type", "action", "reason", "changes"),
    # … and the end-of-day close (Z report) with the day's totals.
    "day_close": ("date", "close_no", "totals"),
    # (1.3) House accounts (docs/protocol/club.md "House accounts"): the companion of a
    # sale paid on account (same write transaction as the sale), the reversal of a
    # refund of such a sale, and a payment of what the account owes.
    "account_charge": ("account_id", "sale_id", "member_id", "amount"),
    "account_refund": ("account_id", "sale_id", "refund_id", "amount"),
    "account_payment": ("account_id", "amount", "method"),
    # (1.3) A gift card paid part of a sale (or a refund put value back on it): the
    # companion of that sale or refund, recorded in its write transaction.
    "gift_card_redeem": ("card_id", "sale_id", "amount"),
    # (1.3) A manual balance adjustment (docs/protocol/club.md "Manual balance
    # adjustments"): signed `amount` of `kind` for one member; a v1/1.2 club rejects
    # it `unknown_type` (the terminal then drops its delta).
    "balance_adjust": ("member_id", "kind", "amount", "reason", "note"),
    # (1.3) A check-in: `units` visits of the member's package `package_id` used
    # (docs/protocol/club.md "Visit packages"); checked in the append's transaction.
    "package_use": ("member_id", "package_id", "units", "identified_by"),
    # (1.3) A manager froze a package for a period (no check-in then; the expiry
    # moves later by those days); checked in the append's transaction.
    "package_freeze": ("member_id", "package_id", "from", "until", "reason"),
}

#: (1.3) The balance kind of a house account: what it owes, in minor units.
OWED = "owed"
#: (1.3) Event types that change a house account's ``owed``.
ACCOUNT_TYPES = ("account_charge", "account_refund", "account_payment")

#: Event types a ``correction`` may refer to, and what each may change.
CORRECTABLE: dict[str, tuple[str, ...]] = {
    "expense": ("amount", "category", "note"),
    "cash_receipt": ("amount", "category", "note"),
    "member_enrol": ("name", "phone"),
}

#: Keys every event has; the store fills them in.
COMMON_KEYS = ("id", "seq", "type", "at", "merchant_id", "terminal_id", "staff_id", "offline")

# protocol.md gives attendance and appointment a key `staff_id` of their own, which
# is also a common key. On the wire there is one `staff_id`: the type's own value
# (the staff clocking in, the staff serving) wins, as in v1. (1.1, docs/protocol/
# club.md "Who recorded it, whom it is about") Every event also carries
# `recorded_by` (who recorded it) and these two types `target_staff_id` (whom it is
# about, the name staff_change already uses), so a 1.1 club never reads the overload.
_OWN_STAFF_ID = frozenset({"attendance", "appointment"})

#: Largest MQTT payload the protocol allows (a batch), in bytes.
MAX_PAYLOAD_BYTES = 256 * 1024
#: Most events in one batch.
MAX_BATCH_EVENTS = 500

POINTS = "points"
#: The largest amount, total or balance (minor units or points) an event may carry:
#: 2**53 - 1, the largest integer every JSON reader (JavaScript's numbers, doubles)
#: reads exactly. Bigger ones could not be applied by the club.
MAX_AMOUNT = 2**53 - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class InvalidEvent(ClubtermError, ValueError):
    """An event handed to the store is malformed; nothing was recorded.

    This is a bug in the caller (the daemon builds events), not a storage fault.
    """


class AlreadyRefunded(InvalidEvent):
    """A refund names a sale that already has a refund that was not rejected."""


class RefundNotPossible(InvalidEvent):
    """A refund (whole or by line) the sale's earlier refunds do not allow.

    ``reason``: ``refunded`` (a whole refund exists), ``partly_refunded`` (a whole
    refund asked after refunds by line), ``over_refund``, ``no_such_line``,
    ``bad_lines``, ``unknown_sale``; ``params`` name the line and what is left.
    """

    def __init__(self, reason: str, message: str, params: Mapping[str, Any] | None = None):
        self.reason = reason
        self.params = dict(params or {})
        super().__init__(message)


class AccountRefused(InvalidEvent):
    """(1.3) A charge on, or payment of, a house account the store refuses in its write
    transaction; nothing was recorded. ``reason``: ``account_unknown``,
    ``account_closed``, ``account_not_authorised``, ``account_limit``,
    ``account_offline_limit``, ``account_overpaid``."""

    def __init__(self, reason: str, message: str, params: Mapping[str, Any] | None = None):
        self.reason = reason
        self.params = dict(params or {})
        super().__init__(message)


class CardNotLinkable(InvalidEvent):
    """A ``card_link`` the member cache refuses, checked in the append's write
    transaction (two tills linking one card at once: the second is refused).

    ``reason``: ``card_taken`` (another member holds the card; ``params`` name them),
    ``card_lost`` (the card was reported lost), ``card_linked`` (already the member's),
    ``not_members_card`` (``replaces`` is not one of the member's cards).
    """

    def __init__(self, reason: str, message: str, params: Mapping[str, Any] | None = None):
        self.reason = reason
        self.params = dict(params or {})
        super().__init__(message)


class QuoteAlreadyRecorded(InvalidEvent):
    """A sale names a ``quote_id`` that another sale of this store already has.

    ``sale_id`` is that sale's id: a quote is committed at most once.
    """

    def __init__(self, quote_id: str, sale_id: str):
        self.quote_id = quote_id
        self.sale_id = sale_id
        super().__init__(f"the quote {quote_id} was already recorded as sale {sale_id}")


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def encode_json(value: Any) -> bytes:
    """The compact UTF-8 JSON used for stored bodies and batch sizes."""
    return _ENCODER.encode(value).encode("utf-8")


def format_at(at: datetime) -> str:
    """RFC 3339 with the offset of ``at`` and millisecond precision."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise InvalidEvent("an event time must carry its UTC offset (aware datetime)")
    return at.isoformat(timespec="milliseconds")


def parse_at(text: str) -> datetime:
    """Parse an RFC 3339 time as written by :func:`format_at` (``Z`` accepted)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def epoch_us(at: datetime) -> int:
    """Microseconds since the epoch (for range queries on times)."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise InvalidEvent("a time must carry its UTC offset (aware datetime)")
    return (at - _EPOCH) // timedelta(microseconds=1)


def _need_int(type_: str, key: str, value: object) -> int:
    # type() is exact: a bool is an int subclass and is refused.
    if type(value) is not int:
        raise InvalidEvent(f"{type_}.{key} must be an integer (minor units or points), "
                           f"not {value!r}")
    assert isinstance(value, int)
    return value


def _need_list(type_: str, key: str, value: object) -> list[Any]:
    if not isinstance(value, list):
        raise InvalidEvent(f"{type_}.{key} must be a list, not {type(value).__name__}")
    return value


#: Placeholders for the common keys the store fills in, so a body alone can be read
#: through its event Struct.
_COMMON_PLACEHOLDERS = {"id": "-", "seq": 0, "at": "", "merchant_id": "-",
                        "terminal_id": "-", "staff_id": None, "offline": False}
_STRUCT_ENCODER = msgspec.json.Encoder()
_STRUCT_DECODER = msgspec.json.Decoder(AnyEvent)


def validate_body(type_: str, body: Mapping[str, Any]) -> None:
    """Refuse an event body that the protocol (or the balance arithmetic) cannot use:
    the hand checks first (their messages), then the body through its Struct
    (``agent/protocol/events.py``, what ``event.schema.json`` publishes), so a body the
    hand checks let through but the protocol refuses is InvalidEvent with the path."""
    _validate_by_hand(type_, body)
    if type_ == "refund_lines" and "payable" not in body:
        # As the local API gives it: the store's refund arithmetic checks the lines
        # (reasons no_such_line, over_refund …), adds the reversal, and calls again.
        return
    try:
        # Encode and decode: about six times faster than msgspec.convert on a dict.
        _STRUCT_DECODER.decode(_STRUCT_ENCODER.encode(
            {**_COMMON_PLACEHOLDERS, **body, "type": type_}))
    except msgspec.ValidationError as exc:
        raise InvalidEvent(f"a {type_} event does not match the protocol: {exc}") from None


def _validate_by_hand(type_: str, body: Mapping[str, Any]) -> None:
    required = EVENT_TYPES.get(type_)
    if required is None:
        raise InvalidEvent(f"unknown event type {type_!r}; known: {', '.join(EVENT_TYPES)}")
    if not isinstance(body, Mapping):
        raise InvalidEvent(f"the body of a {type_} event must be a JSON object")
    missing = [k for k in required if k not in body]
    if missing:
        raise InvalidEvent(f"a {type_} event needs {', '.join(missing)}")
    _check_bounds(type_, body)
    own = set(required)
    clash = [k for k in COMMON_KEYS if k in body and k not in own]
    if clash:
        raise InvalidEvent(f"{', '.join(clash)} of a {type_} event are set by the store")
    if type_ == "sale":
        member = body["member_id"]
        if member is not None and not isinstance(member, str):
            raise InvalidEvent("sale.member_id must be a string or null")
        for key in ("gross", "redeemed_points", "redeemed_value", "payable", "lottery_entries"):
            _need_int(type_, key, body[key])
        for key in ("lines", "discounts", "credits_used", "points_earned", "credits_earned"):
            _need_list(type_, key, body[key])
        for row in body["credits_used"]:
            _kind_amount(type_, "credits_used", row, "amount")
        for row in body["credits_earned"]:
            _kind_amount(type_, "credits_earned", row, "amount")
        for row in body["points_earned"]:
            if not isinstance(row, Mapping) or type(row.get("points")) is not int:
                raise InvalidEvent("sale.points_earned rows must be objects with integer "
                                   "'points'")
        tenders = body.get("tenders")  # (1.1) optional; when present it sums to payable
        if tenders is not None:
            for row in _need_list(type_, "tenders", tenders):
                if not isinstance(row, Mapping) or not isinstance(row.get("method"), str):
                    raise InvalidEvent("sale.tenders rows must be objects with a 'method'")
                _need_int(type_, "tenders.amount", row.get("amount"))
            if sum(int(row["amount"]) for row in tenders) != body["payable"]:
                raise InvalidEvent("sale.tenders must sum to payable")
            on_account = [row for row in tenders if row.get("method") == "account"]
            if len(on_account) > 1 or any(not isinstance(row.get("account_id"), str)
                                          or not row["account_id"] for row in on_account):
                raise InvalidEvent("sale.tenders may charge one house account, named by "
                                   "its account_id")
    elif type_ in ("refund", "refund_lines"):
        if not isinstance(body["sale_id"], str) or not body["sale_id"]:
            raise InvalidEvent(f"{type_}.sale_id must be the id of a sale")
        if type_ == "refund_lines":
            _need_list(type_, "lines", body["lines"])
    elif type_ in ("expense", "cash_receipt"):
        _need_int(type_, "amount", body["amount"])
    elif type_ == "attendance":
        if body["action"] not in ("in", "out"):
            raise InvalidEvent("attendance.action must be 'in' or 'out'")
    elif type_ == "appointment":
        if body["action"] not in ("create", "update", "cancel"):
            raise InvalidEvent("appointment.action must be create, update or cancel")
        _need_int(type_, "minutes", body["minutes"])
    elif type_ == "member_enrol":
        ids = _need_list(type_, "identifiers", body["identifiers"])
        if not all(isinstance(t, str) for t in ids):
            raise InvalidEvent("member_enrol.identifiers must be tokens (strings)")
        if not isinstance(body["member_id"], str):
            raise InvalidEvent("member_enrol.member_id must be a string")
    elif type_ == "staff_change":
        if body["action"] not in ("create", "update"):
            raise InvalidEvent("staff_change.action must be create or update")
        if not isinstance(body["target_staff_id"], str) or not body["target_staff_id"]:
            raise InvalidEvent("staff_change.target_staff_id must be a staff id")
        groups = _need_list(type_, "groups", body["groups"])
        badges = _need_list(type_, "badges", body["badges"])
        if not all(isinstance(g, str) for g in groups + badges):
            raise InvalidEvent("staff_change.groups and badges must be strings")
        pin = body["pin"]
        if pin is not None and (not isinstance(pin, Mapping) or "hash" not in pin):
            raise InvalidEvent("staff_change.pin must be a PIN hash object or null")
    elif type_ == "correction":
        if not isinstance(body["ref_id"], str) or not body["ref_id"]:
            raise InvalidEvent("correction.ref_id must be the id of an event")
        allowed = CORRECTABLE.get(body["ref_type"])
        if allowed is None:
            raise InvalidEvent(f"correction.ref_type must be one of {', '.join(CORRECTABLE)}")
        if body["action"] not in ("void", "amend"):
            raise InvalidEvent("correction.action must be void or amend")
        changes = body["changes"]
        if not isinstance(changes, Mapping) or any(k not in allowed for k in changes):
            raise InvalidEvent(f"correction.changes of a {body['ref_type']} may hold only "
                               f"{', '.join(allowed)}")
        if body["action"] == "amend" and not changes:
            raise InvalidEvent("an amending correction must change something")
        if "phone" in changes and not (isinstance(changes["phone"], str)
                                       and changes["phone"].startswith("tel:")):
            raise InvalidEvent("correction.changes.phone must be a tel: token")
        if "amount" in changes:
            _need_int(type_, "changes.amount", changes["amount"])
            if changes["amount"] <= 0:
                raise InvalidEvent("correction.changes.amount must be positive (void instead)")
    elif type_ == "day_close":
        _need_int(type_, "close_no", body["close_no"])
        if not isinstance(body["totals"], Mapping):
            raise InvalidEvent("day_close.totals must be an object")
    elif type_ == "card_link":
        if not isinstance(body["member_id"], str) or not isinstance(body["identifier"], str):
            raise InvalidEvent("card_link.member_id and identifier must be strings")
    elif type_ in ACCOUNT_TYPES:
        if not isinstance(body["account_id"], str) or not body["account_id"]:
            raise InvalidEvent(f"{type_}.account_id must be the id of a house account")
        if _need_int(type_, "amount", body["amount"]) < 0:
            raise InvalidEvent(f"{type_}.amount must not be negative")
    elif type_ == "gift_card_redeem":
        if not isinstance(body["card_id"], str) or not body["card_id"].startswith("gc-"):
            raise InvalidEvent("gift_card_redeem.card_id must be a gift card id (gc-…)")
        if _need_int(type_, "amount", body["amount"]) == 0:
            raise InvalidEvent("gift_card_redeem.amount must not be 0")
    elif type_ == "balance_adjust":
        if not isinstance(body["member_id"], str) or not body["member_id"]:
            raise InvalidEvent("balance_adjust.member_id must be a member id")
        if _need_int(type_, "amount", body["amount"]) == 0:
            raise InvalidEvent("balance_adjust.amount must not be 0")
        kind = body["kind"]
        if not isinstance(kind, str) or not (kind == POINTS or kind.startswith(
                ("credit.", "units."))):
            raise InvalidEvent("balance_adjust.kind must be points, credit.<x> or units.<x>")
    elif type_ == "package_freeze":
        if not isinstance(body["member_id"], str) or not body["member_id"]:
            raise InvalidEvent("package_freeze.member_id must be a member id")
        if not isinstance(body["package_id"], str) or not 1 <= len(body["package_id"]) <= 64:
            raise InvalidEvent("package_freeze.package_id must be a package id")
        for key in ("from", "until"):
            try:
                date.fromisoformat(body[key] if isinstance(body[key], str) else "")
            except ValueError:
                raise InvalidEvent(f"package_freeze.{key} must be a date (YYYY-MM-DD)") \
                    from None
    elif type_ == "package_use":
        if not isinstance(body["member_id"], str) or not body["member_id"]:
            raise InvalidEvent("package_use.member_id must be a member id")
        if not isinstance(body["package_id"], str) or not 1 <= len(body["package_id"]) <= 64:
            raise InvalidEvent("package_use.package_id must be a package id")
        if not 1 <= _need_int(type_, "units", body["units"]) <= 100:
            raise InvalidEvent("package_use.units must be 1 … 100")


def _check_bounds(type_: str, body: Mapping[str, Any]) -> None:
    """Every integer of the body, and a sale's basket total, within ±MAX_AMOUNT."""
    todo: list[Any] = list(body.values())
    while todo:
        value = todo.pop()
        if isinstance(value, int) and not isinstance(value, bool):
            if not -MAX_AMOUNT <= value <= MAX_AMOUNT:
                raise InvalidEvent(f"a {type_} event holds the number {value}, larger than "
                                   f"{MAX_AMOUNT} (2**53 - 1) that the club can read")
        elif isinstance(value, Mapping):
            todo.extend(value.values())
        elif isinstance(value, list):
            todo.extend(value)
    if type_ == "sale" and isinstance(body.get("lines"), list):
        total = 0
        for line in body["lines"]:
            if isinstance(line, Mapping):
                qty, price = line.get("qty", 1), line.get("unit_price", 0)
                if type(qty) is int and type(price) is int:
                    total += qty * price
        if total > MAX_AMOUNT:
            raise InvalidEvent(f"the basket of a sale totals {total}, larger than "
                               f"{MAX_AMOUNT} (2**53 - 1) that the club can read")


def _kind_amount(type_: str, key: str, row: object, amount_key: str) -> None:
    if not isinstance(row, Mapping) or not isinstance(row.get("kind"), str):
        raise InvalidEvent(f"{type_}.{key} rows must be objects with a 'kind'")
    _need_int(type_, f"{key}.{amount_key}", row.get(amount_key))


def wire_event(*, event_id: str, seq: int, type_: str, at: str, merchant_id: str,
               terminal_id: str, staff_id: str | None, offline: bool,
               body: Mapping[str, Any]) -> dict[str, Any]:
    """The event exactly as it goes on the wire (common keys first)."""
    event: dict[str, Any] = {
        "id": event_id, "seq": seq, "type": type_, "at": at, "merchant_id": merchant_id,
        "terminal_id": terminal_id, "staff_id": staff_id, "offline": offline,
        "recorded_by": staff_id,
    }
    for key, value in body.items():
        if key == "staff_id":
            if type_ in _OWN_STAFF_ID:
                event["staff_id"] = event["target_staff_id"] = value
            continue
        if key != "recorded_by":  # the store's
            event[key] = value
    return event


@dataclass(frozen=True)
class Effect:
    """What one event does to one member, as this terminal sees it.

    ``balance`` maps a balance kind (``points``, ``credit.club`` …) to its change.
    ``redeemed_value`` and ``credit_used`` feed the offline day counters;
    ``purchases`` and ``spend`` feed the projected ``stats``.
    """

    member_id: str | None = None
    balance: dict[str, int] = field(default_factory=dict)
    redeemed_value: int = 0
    credit_used: int = 0
    purchases: int = 0
    spend: int = 0

    def reversed(self) -> Effect:
        """The effect that undoes this one (a refund of the sale)."""
        return Effect(
            member_id=self.member_id,
            balance={k: -v for k, v in self.balance.items()},
            redeemed_value=-self.redeemed_value,
            credit_used=-self.credit_used,
            purchases=-self.purchases,
            spend=-self.spend,
        )


def refund_lines_effect(sale: Mapping[str, Any], part: Mapping[str, Any]) -> Effect:
    """What a ``refund_lines`` event (its reversal keys in ``part``) undoes of its
    sale: the reversed share of each balance change and day counter, the share of
    ``spend``; the purchase itself only when the part ``completes`` the sale."""
    share = sale_effect({**part, "member_id": sale.get("member_id"),
                         "pool_id": sale.get("pool_id")})
    return Effect(
        member_id=share.member_id,
        balance={k: -v for k, v in share.balance.items()},
        redeemed_value=-share.redeemed_value,
        credit_used=-share.credit_used,
        purchases=-1 if part.get("completes") and share.member_id is not None else 0,
        spend=-share.spend,
    )


def _add(into: dict[str, int], kind: str, amount: int) -> None:
    into[kind] = into.get(kind, 0) + amount


def sale_effect(body: Mapping[str, Any]) -> Effect:
    """Balance change of a sale: −redeemed points, +earned points (multiplier rows
    included), −credits used and +credits earned, per kind. Zero entries dropped.
    (1.3) A sale with ``pool_id`` changes the pool's balances (the Effect's member is
    the pool; its purchase and spend count there too until the club reflects them)."""
    member_id = body.get("member_id")
    if member_id is None:
        return Effect()
    pool_id = body.get("pool_id")  # (1.3) a family pool holds the member's balances
    if isinstance(pool_id, str) and pool_id:
        member_id = pool_id
    balance: dict[str, int] = {}
    _add(balance, POINTS, -int(body["redeemed_points"]))
    for row in body["points_earned"]:
        _add(balance, POINTS, int(row["points"]))
    used = 0
    for row in body["credits_used"]:
        _add(balance, row["kind"], -int(row["amount"]))
        used += int(row["amount"])
    for row in body["credits_earned"]:
        _add(balance, row["kind"], int(row["amount"]))
    for kind, amount in value_delta_of_sale(body).items():  # (1.3) top-ups, stored value
        _add(balance, kind, amount)
    return Effect(
        member_id=member_id,
        balance={k: v for k, v in balance.items() if v != 0},
        redeemed_value=int(body["redeemed_value"]),
        credit_used=used,
        purchases=1,
        spend=int(body["payable"]),
    )


def account_effect(type_: str, body: Mapping[str, Any]) -> Effect:
    """(1.3) What a house-account event does to the account (the one holder it
    affects): a charge adds to ``owed``, a refund's reversal and a payment take off."""
    amount = int(body["amount"])
    change = amount if type_ == "account_charge" else -amount
    return Effect(member_id=str(body["account_id"]),
                  balance={OWED: change} if change else {})


def account_tender(body: Mapping[str, Any]) -> tuple[str, int] | None:
    """(1.3) The house account a sale's tenders charge and the amount, or None."""
    for row in body.get("tenders") or ():
        if isinstance(row, Mapping) and row.get("method") == "account":
            account = row.get("account_id")
            if isinstance(account, str) and account and type(row.get("amount")) is int:
                return account, int(row["amount"])
    return None


def gift_card_effect(body: Mapping[str, Any]) -> Effect:
    """(1.3) A ``gift_card_redeem``: −``amount`` of ``value.gift`` on the card."""
    return Effect(member_id=str(body["card_id"]), balance={GIFT_KIND: -int(body["amount"])})


def package_use_effect(body: Mapping[str, Any]) -> Effect:
    """(1.3) A ``package_use``: −``units`` of ``visits.<package_id>`` for the member (a
    visit, not a purchase: stats and redemption counters are untouched)."""
    return Effect(member_id=str(body["member_id"]),
                  balance={"visits." + str(body["package_id"]): -int(body["units"])})


def adjust_effect(body: Mapping[str, Any]) -> Effect:
    """(1.3) A ``balance_adjust``: its signed ``amount`` on its ``kind`` for the member
    (not a purchase: stats and the offline redemption counters are untouched)."""
    return Effect(member_id=str(body["member_id"]),
                  balance={str(body["kind"]): int(body["amount"])})


def event_member(type_: str, body: Mapping[str, Any]) -> str | None:
    """The member an event is about, if any (refunds: see the sale)."""
    if type_ in ("sale", "member_enrol", "card_link", "balance_adjust", "package_use",
                 "package_freeze"):
        value = body.get("member_id")
        return value if isinstance(value, str) else None
    if type_ == "appointment":
        customer = body.get("customer")
        if isinstance(customer, str) and not customer.startswith("tel:"):
            return customer
    return None


def sum_balances(cached: Mapping[str, int], deltas: Iterable[tuple[str, int]]) -> dict[str, int]:
    """Cached balances plus own unreflected changes (the protocol's formula)."""
    out = dict(cached)
    for kind, amount in deltas:
        out[kind] = out.get(kind, 0) + amount
    return out


def batch_overhead(terminal_id: str) -> int:
    """Bytes of a batch envelope around its events (with a UUID batch id)."""
    return len(encode_batch("00000000-0000-7000-8000-000000000000", terminal_id, []))


def encode_batch(batch_id: str, terminal_id: str, events: list[dict[str, Any]]) -> bytes:
    """The batch payload, encoded the way :meth:`Store.next_batch` measured it.

    The link must publish these bytes (compact JSON, UTF-8, not ASCII-escaped) so
    that a batch cut to 256 KiB by the store is also at most 256 KiB on the wire.
    """
    return encode_json({"batch": batch_id, "terminal_id": terminal_id, "events": events})
