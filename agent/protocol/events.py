"""Events (terminal → club) and the batch that carries them (docs/protocol/club.md).

The envelope holds the common keys; each type's body keys sit beside them on the
wire (flat), so each event type is one Struct tagged by ``type``.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from agent.protocol.base import Amount, Id, Message, Object, Seq, SignedAmount, Text

MAX_BATCH_EVENTS = 500


class Line(Message):
    """One basket line; keys beyond these are carried through."""

    sku: Text | None = None
    qty: Annotated[int, msgspec.Meta(ge=-1_000_000, le=1_000_000)] = 1
    unit_price: Amount = 0


class KindAmount(Message):
    kind: Text
    amount: SignedAmount


class PointsRow(Message):
    points: SignedAmount


class Event(Message, tag_field="type", tag=True):
    """Common keys of every event (filled in by the store)."""

    id: Id
    seq: Seq
    at: Text
    merchant_id: Id
    terminal_id: Id
    staff_id: Text | None
    offline: bool


class Sale(Event, tag="sale"):
    member_id: Text | None
    identified_by: Text | None
    lines: Annotated[list[Line], msgspec.Meta(max_length=1000)]
    gross: Amount
    discounts: list[Object]
    redeemed_points: Amount
    redeemed_value: Amount
    credits_used: list[KindAmount]
    payable: Amount
    points_earned: list[PointsRow]
    credits_earned: list[KindAmount]
    lottery_entries: Amount
    rules_version: Amount | Text | None
    payment: Object | list[Object] | Text | None


class Refund(Event, tag="refund"):
    sale_id: Id
    reason: Text | None


class Attendance(Event, tag="attendance"):
    action: Literal["in", "out"]
    identified_by: Text | None


class Expense(Event, tag="expense"):
    amount: Amount
    category: Text | None
    note: Text | None


class CashReceipt(Event, tag="cash_receipt"):
    amount: Amount
    category: Text | None
    note: Text | None


class Appointment(Event, tag="appointment"):
    appointment_id: Id
    action: Literal["create", "update", "cancel"]
    customer: Text | None
    service: Text | None
    start: Text | None
    minutes: Annotated[int, msgspec.Meta(ge=0, le=100_000)] | None
    note: Text | None


class MemberEnrol(Event, tag="member_enrol"):
    member_id: Id
    name: Text | None
    identifiers: Annotated[list[Text], msgspec.Meta(max_length=100)]
    referred_by: Text | None


class CardLink(Event, tag="card_link"):
    member_id: Id
    identifier: Text


class StaffChange(Event, tag="staff_change"):
    action: Literal["create", "update"]
    target_staff_id: Id
    name: Text | None
    groups: list[Text]
    pin: Object | None
    badges: list[Text]
    active: bool | None


class Correction(Event, tag="correction"):
    ref_id: Id
    ref_type: Literal["expense", "cash_receipt", "member_enrol"]
    action: Literal["void", "amend"]
    reason: Text | None
    changes: Object


class DayClose(Event, tag="day_close"):
    date: Text
    close_no: Amount
    totals: Object


AnyEvent = (Sale | Refund | Attendance | Expense | CashReceipt | Appointment | MemberEnrol
            | CardLink | StaffChange | Correction | DayClose)

#: Every event Struct by its ``type``.
EVENT_STRUCTS: dict[str, type[Event]] = {
    cls.__struct_config__.tag: cls  # type: ignore[misc]
    for cls in (Sale, Refund, Attendance, Expense, CashReceipt, Appointment, MemberEnrol,
                CardLink, StaffChange, Correction, DayClose)
}


class Batch(Message):
    """``/events``: up to 500 events, at most 256 KiB."""

    batch: Id
    terminal_id: Id
    events: Annotated[list[AnyEvent], msgspec.Meta(max_length=MAX_BATCH_EVENTS)]
