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


class Tender(Message):
    """(1.1) One row of a sale's ``tenders``: how part of ``payable`` was paid."""

    method: Literal["cash", "card", "credit", "voucher", "other", "account", "stored_value",
                    "gift_card"]
    amount: Amount
    #: (1.3) The house account a tender of method ``account`` is charged to, and the
    #: account card's token when the card was shown.
    account_id: Text | None = None
    identified_by: Text | None = None
    #: (1.3) ``stored_value``: the member's balance kind spent (``value.<x>``).
    kind: Text | None = None
    #: (1.3) ``gift_card``: the card that paid (its ``gift_card_redeem`` event names
    #: this sale).
    card_id: Text | None = None


class Topup(Message):
    """(1.3) One row of a sale's ``topups``: stored value bought on its line ``line``
    for the sale's member, valid until ``expires`` (a local date) or for ever (null)."""

    line: Annotated[int, msgspec.Meta(ge=0, le=999)]
    kind: Annotated[str, msgspec.Meta(pattern=r"^(value|units)\.[a-z0-9_]{1,32}$")]
    amount: Annotated[int, msgspec.Meta(ge=1, le=2**53 - 1)]
    expires: Text | None = None


class UnitsUsed(Message):
    """(1.3) One row of a sale's ``units_used``: its line ``line`` paid with ``units`` of
    the member's non-money balance ``kind`` (the line's price is 0)."""

    line: Annotated[int, msgspec.Meta(ge=0, le=999)]
    kind: Annotated[str, msgspec.Meta(pattern=r"^units\.[a-z0-9_]{1,32}$")]
    units: Annotated[int, msgspec.Meta(ge=1, le=2**53 - 1)]


class GiftCardIssued(Message):
    """(1.3) One row of a sale's ``gift_cards_issued``: a gift card sold on line
    ``line``, found by ``token``, holding ``amount`` of ``value.gift``."""

    line: Annotated[int, msgspec.Meta(ge=0, le=999)]
    card_id: Annotated[str, msgspec.Meta(pattern="^gc-", max_length=64)]
    token: Annotated[str, msgspec.Meta(max_length=300)]
    amount: Annotated[int, msgspec.Meta(ge=1, le=2**53 - 1)]
    expires: Text | None = None


class RefundedLine(Message):
    """(1.1) One row of a ``refund_lines`` event: units of the sale's line ``line``."""

    line: Annotated[int, msgspec.Meta(ge=0, le=999)]
    qty: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)]


class CorrectionChanges(Message):
    """What a ``correction`` changes (sync.md "Corrections and day closes"): an expense's
    or cash receipt's ``amount``, ``category``, ``note``; an enrolment's ``name`` and
    ``phone`` (a ``tel:`` token)."""

    amount: Annotated[int, msgspec.Meta(ge=1, le=2**53 - 1)] | None = None
    category: Text | None = None
    note: Text | None = None
    name: Text | None = None
    phone: Annotated[str, msgspec.Meta(pattern="^tel:", max_length=200)] | None = None


class Event(Message, tag_field="type", tag=True, kw_only=True):
    """Common keys of every event (filled in by the store)."""

    id: Id
    seq: Seq
    at: Text
    merchant_id: Id
    terminal_id: Id
    staff_id: Text | None
    offline: bool
    #: (1.1) Who recorded it (the staff signed in), or null; on every event.
    recorded_by: Text | None = None


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
    #: (1.1) How ``payable`` was paid, one row per method, summing to it.
    tenders: list[Tender] | None = None
    # (1.1) Promotions' keys, sent only with rows (bundle.md "Sale keys of promotions").
    rewards: list[Object] | None = None
    codes_used: list[Object] | None = None
    fees: list[Object] | None = None
    referral_rewards: list[Object] | None = None
    coupons_issued: list[Object] | None = None
    uses: list[Object] | None = None
    #: (1.3) The family pool whose points and credit this sale earned and spent.
    pool_id: Text | None = None
    # (1.3) Stored value (club.md "Stored value and gift cards"), sent only with rows.
    topups: Annotated[list[Topup], msgspec.Meta(max_length=1000)] | None = None
    gift_cards_issued: Annotated[list[GiftCardIssued], msgspec.Meta(max_length=50)] | None = None
    units_used: Annotated[list[UnitsUsed], msgspec.Meta(max_length=1000)] | None = None


class Refund(Event, tag="refund"):
    sale_id: Id
    reason: Text | None


class RefundLines(Event, tag="refund_lines"):
    """(1.1) A refund of some units of some lines, with the reversal the terminal computed
    (rows of 0 left out; club.md "Refunds by line")."""

    sale_id: Id
    reason: Text | None
    lines: Annotated[list[RefundedLine], msgspec.Meta(min_length=1, max_length=1000)]
    gross: Amount = 0
    discounts: list[Object] = msgspec.field(default_factory=list)
    redeemed_points: Amount = 0
    redeemed_value: Amount = 0
    credits_used: list[KindAmount] = msgspec.field(default_factory=list)
    payable: Amount = 0
    points_earned: list[PointsRow] = msgspec.field(default_factory=list)
    credits_earned: list[KindAmount] = msgspec.field(default_factory=list)
    lottery_entries: Amount = 0
    completes: bool = False


class Attendance(Event, tag="attendance"):
    action: Literal["in", "out"]
    identified_by: Text | None
    #: (1.1) Who clocks (= ``staff_id``); ``corrected_by``/``reason`` when a manager
    #: recorded it for someone else.
    target_staff_id: Text | None = None
    corrected_by: Text | None = None
    reason: Text | None = None


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
    #: (1.1) Who serves (= ``staff_id``); the name of a customer who is not a member.
    target_staff_id: Text | None = None
    customer_name: Text | None = None


class MemberEnrol(Event, tag="member_enrol"):
    member_id: Id
    name: Text | None
    identifiers: Annotated[list[Text], msgspec.Meta(max_length=100)]
    referred_by: Text | None


class CardLink(Event, tag="card_link"):
    member_id: Id
    identifier: Text
    #: (1.1) The lost card's token, blocked.
    replaces: Text | None = None


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
    changes: CorrectionChanges
    #: (1.1) The enrolment's member, for a correction of a ``member_enrol``.
    member_id: Text | None = None


class DayClose(Event, tag="day_close"):
    date: Text
    close_no: Amount
    totals: Object
    currency: Text | None = None
    minor_units: Annotated[int, msgspec.Meta(ge=0, le=10)] | None = None


class AccountCharge(Event, tag="account_charge"):
    """(1.3) A sale paid (partly) on a house account: companion of the sale ``sale_id``,
    recorded in the same transaction (club.md "House accounts")."""

    account_id: Id
    sale_id: Id
    #: The buyer (an authorised member), or null when the account card was shown.
    member_id: Text | None
    amount: Amount
    #: The account card's token when it was shown.
    identified_by: Text | None = None


class AccountRefund(Event, tag="account_refund"):
    """(1.3) A refund of a sale paid on account gives the account back ``amount``."""

    account_id: Id
    sale_id: Id
    refund_id: Id
    amount: Amount


class AccountPayment(Event, tag="account_payment"):
    """(1.3) The customer paid ``amount`` of what the account owes, by ``method``."""

    account_id: Id
    amount: Annotated[int, msgspec.Meta(ge=1, le=2**53 - 1)]
    method: Literal["cash", "card", "other"]
    note: Text | None = None
    #: The till's key of this payment: the terminal records one payment per key.
    payment_id: Text | None = None


class GiftCardRedeem(Event, tag="gift_card_redeem"):
    """(1.3) A gift card paid ``amount`` of the sale ``sale_id`` (recorded with the sale,
    in its write transaction). With ``refund_id``: the refund of that sale, and
    ``amount`` negative puts value back on the card (or positive takes back the
    value of a card the refunded sale issued)."""

    card_id: Annotated[str, msgspec.Meta(pattern="^gc-", max_length=64)]
    sale_id: Id
    amount: SignedAmount
    refund_id: Id | None = None


class BalanceAdjust(Event, tag="balance_adjust"):
    """(1.3) A manual change of one member's balance by a permitted staff member
    (club.md "Manual balance adjustments"): points added or deducted by hand, or
    credit/units granted. ``amount`` is signed, never 0."""

    member_id: Id
    kind: Annotated[str, msgspec.Meta(
        pattern=r"^(points|(credit|units)\.[^\s]{1,58})$", max_length=64)]
    amount: Annotated[int, msgspec.Meta(ge=-(2**53 - 1), le=2**53 - 1)]
    reason: Literal["purchase_not_recorded", "goodwill", "correction", "gift", "complaint",
                    "other"]
    note: Annotated[str, msgspec.Meta(max_length=500)] | None = None
    #: The purchase amount (minor units) the points were computed from, if they were.
    basis_amount: Annotated[int, msgspec.Meta(ge=0, le=2**53 - 1)] | None = None
    #: The terminal's idempotency key of the request (a retry records nothing more);
    #: the club needs nothing of it.
    request_id: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{1,64}$")] | None = None


class PackageUse(Event, tag="package_use"):
    """(1.3) A check-in: ``units`` visits of the member's package ``package_id`` used
    (club.md "Visit packages"). The club applies it even past zero (the visit
    happened); the bundle's ``offline.max_package_uses_per_member_day`` bounds that."""

    member_id: Id
    package_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    units: Annotated[int, msgspec.Meta(ge=1, le=100)]
    identified_by: Text | None
    #: The terminal's idempotency key of the request (a retry records nothing more).
    request_id: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{1,64}$")] | None = None


class PackageFreeze(Event, tag="package_freeze", kw_only=True):
    """(1.3) A manager froze the member's package ``package_id`` from ``from`` to
    ``until`` (club-local dates, both included): no check-in then, the expiry moves
    later by those days (club.md "Visit packages")."""

    member_id: Id
    package_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    from_: Annotated[str, msgspec.Meta(pattern=r"^\d{4}-\d{2}-\d{2}$")] = \
        msgspec.field(name="from")
    until: Annotated[str, msgspec.Meta(pattern=r"^\d{4}-\d{2}-\d{2}$")]
    reason: Text | None = None


AnyEvent = (Sale | Refund | RefundLines | Attendance | Expense | CashReceipt | Appointment
            | MemberEnrol | CardLink | StaffChange | Correction | DayClose
            | AccountCharge | AccountRefund | AccountPayment | GiftCardRedeem
            | BalanceAdjust | PackageUse | PackageFreeze)

#: Every event Struct by its ``type``.
EVENT_STRUCTS: dict[str, type[Event]] = {
    cls.__struct_config__.tag: cls  # type: ignore[misc]
    for cls in (Sale, Refund, RefundLines, Attendance, Expense, CashReceipt, Appointment,
                MemberEnrol, CardLink, StaffChange, Correction, DayClose,
                AccountCharge, AccountRefund, AccountPayment, GiftCardRedeem,
                BalanceAdjust, PackageUse, PackageFreeze)
}


class Batch(Message):
    """``/events``: up to 500 events, at most 256 KiB."""

    batch: Id
    terminal_id: Id
    events: Annotated[list[AnyEvent], msgspec.Meta(max_length=MAX_BATCH_EVENTS)]
