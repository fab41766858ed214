"""The local JSON-RPC API (docs/protocol/local-api.md): params and result of each method.

These are the *published* shapes (``docs/protocol/schemas/localapi.<method>.schema.json``).
The services keep checking params with ``agent/localapi/services/params.py``, whose
errors carry the ``data.reason`` codes of local-api.md (``missing_param``,
``wrong_type``, ``card_number``, …) that a Struct decode does not give; a test runs a
real agent and validates what it asks and answers against these schemas. A result
key not listed is allowed (newer agents add keys; a client ignores unknown keys).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from agent.protocol.base import Amount, Id, Message, Object, SignedAmount, Text

Session = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Method = Literal["cash", "card", "credit", "voucher", "other", "account"]
#: (1.3) Tender methods: the money ones, a house account, stored value / gift card.
TenderMethod = Literal["cash", "card", "credit", "voucher", "other", "account", "stored_value",
                      "gift_card"]


class NoParams(Message, kw_only=True):
    """A method without params (``{}`` or none)."""


class Authed(Message, kw_only=True):
    session: Session | None = None


# ---- params ------------------------------------------------------------------------

class IdentifyParams(Message, kw_only=True):
    token: Text | None = None
    phone: Text | None = None
    code: Text | None = None
    #: (1.3) A national id as typed (at most 40 characters); only its nid: token is kept.
    nid: Annotated[str, msgspec.Meta(max_length=40)] | None = None


class QuoteLine(Message, kw_only=True):
    sku: Text | None = None
    category: Text | None = None
    qty: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] | None = None
    unit_price: Amount | None = None
    #: (1.1) a catalogue line by barcode, and a weighed product's grams.
    barcode: Annotated[str, msgspec.Meta(min_length=1, max_length=256)] | None = None
    weight_g: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] | None = None
    #: (1.3) the amount of an open-amount top-up or gift card product (minor units),
    #: and the token of a blank card tapped to be loaded as the gift card sold.
    amount: Annotated[int, msgspec.Meta(ge=1, le=10**12)] | None = None
    card_token: Annotated[str, msgspec.Meta(min_length=3, max_length=600)] | None = None
    #: (1.3) pay this product in the member's units (its ``price_units``), not money.
    units: bool | None = None


class QuoteParams(Message, kw_only=True):
    lines: list[QuoteLine] | None = None
    amount: Amount | None = None
    token: Text | None = None
    redeem_points: Amount | Literal["max"] | None = None
    use_credit: list[Text] | None = None
    codes: list[Text] | None = None
    rewards: list[Text] | None = None


class TenderParam(Message, kw_only=True):
    method: TenderMethod
    amount: Annotated[int, msgspec.Meta(ge=1, le=2**53 - 1)]
    #: (1.3) ``account``: the house account, by id or by its card's token.
    account_id: Annotated[str, msgspec.Meta(min_length=1, max_length=100)] | None = None
    account_token: Text | None = None
    #: (1.3) ``stored_value``: the member's balance kind (``value.<x>``).
    kind: Annotated[str, msgspec.Meta(pattern=r"^value\.[a-z0-9_]{1,32}$")] | None = None
    #: (1.3) ``gift_card``: the card's token (tapped, scanned, or ``code:`` typed).
    token: Annotated[str, msgspec.Meta(min_length=3, max_length=300)] | None = None


class CommitParams(Message, kw_only=True):
    quote_id: Id
    payment: Method | None = None
    tenders: Annotated[list[TenderParam], msgspec.Meta(min_length=1, max_length=12)] | None = None
    session: Session


class RefundLineParam(Message, kw_only=True):
    line: Annotated[int, msgspec.Meta(ge=0, le=999)]
    qty: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)]


class RefundParams(Message, kw_only=True):
    sale_id: Id
    reason: Text | None = None
    lines: Annotated[list[RefundLineParam],
                     msgspec.Meta(min_length=1, max_length=500)] | None = None
    session: Session


class LoginParams(Message, kw_only=True):
    staff_id: Text | None = None
    pin: Text | None = None
    token: Text | None = None


class LogoutParams(Message, kw_only=True):
    session: Session


class ClockParams(Message, kw_only=True):
    action: Literal["in", "out"]
    staff_id: Text | None = None
    pin: Text | None = None
    token: Text | None = None
    reason: Text | None = None
    session: Session | None = None


class StaffCreateParams(Message, kw_only=True):
    session: Session
    staff_id: Text
    name: Text
    role: Text | None = None
    pin: Text | None = None
    badges: list[Text] | None = None


class CashParams(Message, kw_only=True):
    amount: Annotated[int, msgspec.Meta(ge=1, le=10**12)]
    category: Text | None = None
    note: Text | None = None
    session: Session


class DateParams(Message, kw_only=True):
    date: Text | None = None
    session: Session | None = None


class AppointmentParams(Message, kw_only=True):
    appointment_id: Id | None = None
    service: Text | None = None
    staff_id: Text | None = None
    start: Text | None = None
    minutes: Annotated[int, msgspec.Meta(ge=1, le=100_000)] | None = None
    note: Text | None = None
    customer: Text | None = None
    member_id: Text | None = None
    phone: Text | None = None
    token: Text | None = None
    customer_name: Text | None = None
    session: Session | None = None


class EnrolParams(Message, kw_only=True):
    name: Text
    phone: Text
    token: Text | None = None
    referred_by: Text | None = None
    #: (1.3) Optional national id (as ``member.identify``).
    nid: Annotated[str, msgspec.Meta(max_length=40)] | None = None
    session: Session


class ListParams(Message, kw_only=True):
    limit: Annotated[int, msgspec.Meta(ge=1, le=1000)] | None = None
    before: Text | None = None
    session: Session | None = None


class SaleIdParams(Message, kw_only=True):
    sale_id: Id
    reason: Text | None = None
    session: Session


class SearchParams(Message, kw_only=True):
    query: Text
    limit: Annotated[int, msgspec.Meta(ge=1, le=1000)] | None = None
    session: Session | None = None


class MemberParams(Message, kw_only=True):
    member_id: Id
    token: Text | None = None
    replaces: Text | None = None
    session: Session | None = None


class CorrectParams(Message, kw_only=True):
    event_id: Id
    reason: Text
    void: bool | None = None
    amount: Amount | None = None
    category: Text | None = None
    note: Text | None = None
    name: Text | None = None
    phone: Text | None = None
    session: Session


class PrintParams(Message, kw_only=True):
    sale_id: Id | None = None
    lines: Annotated[list[Annotated[str, msgspec.Meta(max_length=200)]],
                     msgspec.Meta(max_length=60)] | None = None
    title: Text | None = None
    session: Session | None = None


class BarcodeParams(Message, kw_only=True):
    barcode: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]


class CatalogueSearchParams(Message, kw_only=True):
    text: Annotated[str, msgspec.Meta(max_length=120)]
    limit: Annotated[int, msgspec.Meta(ge=1, le=50)] | None = None


# ---- results -----------------------------------------------------------------------

class AccountStatusParams(Message, kw_only=True):
    """(1.3) Exactly one of ``token``, ``account_id``, ``member_id``."""

    session: Session
    token: Text | None = None
    account_id: Annotated[str, msgspec.Meta(min_length=1, max_length=100)] | None = None
    member_id: Annotated[str, msgspec.Meta(min_length=1, max_length=100)] | None = None


class AccountPayParams(Message, kw_only=True):
    session: Session
    account_id: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    amount: Annotated[int, msgspec.Meta(ge=1, le=2**53 - 1)]
    method: Literal["cash", "card", "other"] | None = None
    note: Annotated[str, msgspec.Meta(max_length=500)] | None = None
    #: The till's key of this payment: a retry with it records nothing more.
    payment_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None


class AccountBuyer(Message, kw_only=True):
    member_id: Text
    name: Text | None


class AccountView(Message, kw_only=True):
    """(1.3) One house account as the till shows it (minor units)."""

    account_id: Text
    name: Text | None
    status: Text
    owed: SignedAmount
    credit_limit: Amount
    available: Amount
    authorised: list[AccountBuyer]
    offline_max: Amount | None = None


class AccountStatusResult(Message, kw_only=True):
    accounts: list[AccountView]


class AccountPayResult(Message, kw_only=True):
    event_id: Id
    account: AccountView
    repeated: bool | None = None


class QueueSummary(Message, kw_only=True):
    pending: Amount
    oldest_at: Text | None
    rejected: Amount


class StatusResult(Message, kw_only=True):
    terminal_id: Id
    merchant_id: Id
    online: bool
    rules_version: Amount | Text | None
    rules_problem: Text | None
    members_version: Amount | None
    queue: QueueSummary
    readers: list[Object]
    broker: Text | None = None
    catalogue_version: Amount | None = None
    catalogue_products: Amount | None = None
    catalogue_problem: Text | None = None
    printer: Object | None = None
    #: (1.3) the manual adjustments the bundle allows, or null (off).
    adjustments: Object | None = None


class TierProgress(Message, kw_only=True):
    """(1.3) The way to the next tier (docs/rules.md, "Tier progress")."""

    next_tier: Text
    spend_needed: Amount | None
    purchases_needed: Amount | None
    window_days: Annotated[int, msgspec.Meta(ge=0, le=3660)]
    met: bool


class Referrals(Message, kw_only=True):
    """(1.3) Members this member referred and what their purchases credited, by kind."""

    count: Amount
    earned: dict[str, Amount]


class MemberSummary(Message, kw_only=True):
    member_id: Id
    name: Text | None
    tier: Text | None
    status: Text | None
    balances: dict[str, SignedAmount]
    masked: Text | None
    token: Text | None = None
    looked_up: bool | None = None
    earn_only: bool | None = None
    #: (1.3) the family pool whose balances ``balances`` are
    pool_id: Text | None = None
    tier_progress: TierProgress | None = None
    referrals: Referrals | None = None


class Row(Message, kw_only=True):
    rule: Text | None = None
    amount: SignedAmount | None = None
    points: SignedAmount | None = None
    kind: Text | None = None


class Explanation(Message, kw_only=True):
    """One row of a quote's ``explain``: ``why`` a machine code, ``text`` the words."""

    why: Text
    text: Text
    rule: Text | None = None
    step: Text | None = None


class QuoteResult(Message, kw_only=True):
    quote_id: Id
    expires_at: Text
    lines: list[Object]
    gross: Amount
    discounts: list[Row]
    net: Amount
    redeemed_points: Amount
    redeemed_value: Amount
    credits_used: list[Row]
    payable: Amount
    points_earned: list[Row]
    credits_earned: list[Row]
    lottery_entries: Amount
    rules_version: Amount | Text | None
    explain: list[Explanation]
    line_details: list[Object]
    member: MemberSummary | None = None
    offline: bool | None = None
    #: (1.3) what the sale will credit (``{line, kind, amount, expires}``) and the gift
    #: cards it will issue (``{line, amount, expires}``).
    topups: list[Object] | None = None
    gift_cards: list[Object] | None = None
    units_used: list[Object] | None = None


class TenderRow(Message, kw_only=True):
    method: TenderMethod
    amount: Amount
    account_id: Text | None = None
    identified_by: Text | None = None
    kind: Text | None = None
    card_id: Text | None = None


class Receipt(Message, kw_only=True):
    sale_id: Id
    seq: Amount
    at: Text
    lines: list[Object]
    gross: Amount
    payable: Amount
    payment: Text | None = None
    tenders: list[TenderRow] | None = None
    tendered: Amount | None = None
    change_due: Amount | None = None
    #: (1.3) top-ups credited, and gift cards sold (their codes are printed).
    topups: list[Object] | None = None
    gift_cards_issued: list[Object] | None = None
    units_used: list[Object] | None = None


class CommitResult(Message, kw_only=True):
    sale_id: Id
    seq: Amount
    receipt: Receipt


class RefundResult(Message, kw_only=True):
    refund_id: Id
    sale_id: Id | None = None
    whole: bool | None = None
    lines: list[RefundLineParam] | None = None
    gross: Amount | None = None
    payable: Amount | None = None
    completes: bool | None = None


class LoginResult(Message, kw_only=True):
    session: Session
    staff_id: Id
    name: Text
    role: Text | None
    groups: list[Text] | None = None
    permissions: dict[str, list[Text]] | None = None
    idle_s: Amount | None = None
    max_s: Amount | None = None


class ClockResult(Message, kw_only=True):
    event_id: Id
    at: Text
    staff_id: Id | None = None
    name: Text | None = None


class EventIdResult(Message, kw_only=True):
    event_id: Id
    ref_id: Id | None = None


class AppointmentResult(Message, kw_only=True):
    appointment_id: Id


class EnrolResult(Message, kw_only=True):
    member_id: Id


class LookupResult(Message, kw_only=True):
    barcode: Text
    product: Object | None


class CatalogueSearchResult(Message, kw_only=True):
    products: list[Object]
    more: bool


class ValueBalanceParams(Message, kw_only=True):
    """(1.3) ``value.balance``: the member's or gift card's token."""

    token: Annotated[str, msgspec.Meta(min_length=3, max_length=600)]
    session: Session


class ValueLot(Message, kw_only=True):
    amount: SignedAmount
    expires: Text
    expired: bool


class ValueBalanceRow(Message, kw_only=True):
    kind: Text
    name: Text
    unit: Text | None
    amount: SignedAmount
    spendable: Amount
    tender: bool
    lots: list[ValueLot]


class ValueBalanceResult(Message, kw_only=True):
    holder: Literal["member", "gift_card"]
    id: Id
    name: Text | None
    status: Text
    expires: Text | None
    expired: bool
    points: SignedAmount | None
    balances: list[ValueBalanceRow]


# ---- (1.3) manual balance adjustments ---------------------------------------------

AdjustKind = Annotated[str, msgspec.Meta(pattern=r"^(points|(credit|units)\.[^\s]{1,58})$",
                                         max_length=64)]
AdjustReason = Literal["purchase_not_recorded", "goodwill", "correction", "gift", "complaint",
                       "other"]
AdjustAmount = Annotated[int, msgspec.Meta(ge=-(10**12), le=10**12)]


class AdjustParams(Message, kw_only=True):
    """``balance.adjust``: exactly one of ``token``/``member_id`` and of
    ``amount``/``points_from_amount`` (points only)."""

    session: Session
    token: Text | None = None
    member_id: Id | None = None
    kind: AdjustKind
    amount: AdjustAmount | None = None
    points_from_amount: Annotated[int, msgspec.Meta(ge=1, le=10**12)] | None = None
    reason: AdjustReason
    note: Annotated[str, msgspec.Meta(max_length=500)] | None = None
    preview: bool = False
    #: The client's idempotency key: a retry with it answers the adjustment recorded.
    request_id: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{1,64}$")] | None = None


class AdjustResult(Message, kw_only=True):
    """``balance.adjust``: the event and the member's usable balances after it (with
    ``preview``: ``preview``, ``balance`` and ``balance_after``, no event)."""

    member_id: Id
    kind: AdjustKind
    amount: AdjustAmount
    basis_amount: Amount | None = None
    event_id: Id | None = None
    at: Text | None = None
    balances: dict[str, SignedAmount] | None = None
    offline: bool | None = None
    preview: bool | None = None
    balance: SignedAmount | None = None
    balance_after: SignedAmount | None = None


class AdjustmentsParams(Message, kw_only=True):
    session: Session
    date: Text | None = None
    staff_id: Id | None = None


class AdjustmentStaffRow(Message, kw_only=True):
    staff_id: Text | None
    name: Text | None
    points_added: Amount
    points_deducted: Amount
    count: Amount
    #: Other kinds by kind: ``{"added": n, "deducted": n}``.
    other: dict[str, dict[str, Amount]]


class AdjustmentRow(Message, kw_only=True):
    event_id: Id
    at: Text
    staff_id: Text | None
    member_id: Id
    member_name: Text | None = None
    kind: AdjustKind
    amount: AdjustAmount
    reason: Text | None
    note: Text | None = None
    basis_amount: Amount | None = None
    offline: bool


class AdjustmentsResult(Message, kw_only=True):
    """``balance.adjustments``: the day's points added and deducted per user."""

    date: Text
    points_added: Amount
    points_deducted: Amount
    count: Amount
    per_staff: list[AdjustmentStaffRow]
    rows: Annotated[list[AdjustmentRow], msgspec.Meta(max_length=200)]
    truncated: bool


#: method → (params, result). ``Any`` where the result is a report whose rows are
#: described in local-api.md and not yet typed here.

# ---- (1.3) visit packages and memberships -------------------------------------------

class PackageFreeze(Message, kw_only=True):
    from_: Text = msgspec.field(name="from")
    until: Text


class PackageSummary(Message, kw_only=True):
    """One package of a member as the till shows it."""

    package_id: Text
    sku: Text | None
    name: Text | None
    state: Literal["not_started", "active", "in_grace", "frozen", "expired"]
    usable: bool
    starts: Text | None
    #: The last day, later by every frozen day.
    expires: Text
    grace_left: Amount
    visits_total: Amount | None
    visits_left: Amount | None
    frozen: list[PackageFreeze]


class MemberProfileResult(MemberSummary, kw_only=True):
    """``member.profile``: the member summary and the keys local-api.md describes
    (stats, cards, last sales here, lost cards, enrolment); (1.3) ``packages``, the
    member's packages as ``package.list`` shows them."""

    stats: Object | None = None
    cards: list[Object] | None = None
    recent_sales: list[Object] | None = None
    lost_cards: list[Object] | None = None
    has_nid: bool | None = None
    enrolment: Object | None = None
    packages: Annotated[list[PackageSummary], msgspec.Meta(max_length=50)] = \
        msgspec.field(default_factory=list)


class PackageListParams(Message, kw_only=True):
    """``package.list``: exactly one of ``token`` / ``member_id``."""

    session: Session
    token: Text | None = None
    member_id: Id | None = None


class PackageListResult(Message, kw_only=True):
    member_id: Id
    name: Text | None
    packages: Annotated[list[PackageSummary], msgspec.Meta(max_length=50)]


class PackageCheckinParams(Message, kw_only=True):
    """``package.checkin``: the member (one of ``token`` / ``member_id``), the package
    (optional when the member has one usable), ``units`` (1 … 100, default 1)."""

    session: Session
    token: Text | None = None
    member_id: Id | None = None
    package_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None
    units: Annotated[int, msgspec.Meta(ge=1, le=100)] = 1
    #: The client's idempotency key: a retry with it answers the check-in recorded.
    request_id: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{1,64}$")] | None = None


class PackageCheckinResult(Message, kw_only=True):
    event_id: Id
    at: Text
    member_id: Id
    name: Text | None
    package_id: Text
    package_name: Text | None
    units: Amount
    #: null: an unlimited membership.
    visits_left: SignedAmount | None
    state: Text | None
    grace_left: Amount | None
    expires: Text | None
    offline: bool


class PackageFreezeParams(Message, kw_only=True):
    """``package.freeze`` (manager): one of ``token`` / ``member_id``; the period,
    club-local dates, both included."""

    session: Session
    token: Text | None = None
    member_id: Id | None = None
    package_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    from_: Text = msgspec.field(name="from")
    until: Text
    reason: Annotated[str, msgspec.Meta(max_length=200)] | None = None


class PackageFreezeResult(Message, kw_only=True):
    event_id: Id
    at: Text
    member_id: Id
    #: The package as it is now (its ``expires`` moved, the freeze listed).
    package: PackageSummary | None

METHODS: dict[str, tuple[Any, Any]] = {
    "agent.status": (NoParams, StatusResult),
    "events.subscribe": (NoParams, bool),
    "member.identify": (IdentifyParams, MemberSummary),
    "member.enrol": (EnrolParams, EnrolResult),
    "sale.quote": (QuoteParams, QuoteResult),
    "sale.commit": (CommitParams, CommitResult),
    "sale.refund": (RefundParams, RefundResult),
    "staff.login": (LoginParams, LoginResult),
    "staff.logout": (LogoutParams, bool),
    "staff.clock": (ClockParams, ClockResult),
    "staff.create": (StaffCreateParams, Object),
    "expense.add": (CashParams, EventIdResult),
    "cash_receipt.add": (CashParams, EventIdResult),
    "day.summary": (DateParams, Object),
    "appointment.create": (AppointmentParams, AppointmentResult),
    "appointment.update": (AppointmentParams, AppointmentResult),
    "appointment.cancel": (AppointmentParams, AppointmentResult),
    "appointment.list": (DateParams, Any),
    "sale.list": (ListParams, Any),
    "sale.void": (SaleIdParams, Object),
    "member.search": (SearchParams, Any),
    "member.profile": (MemberParams, MemberProfileResult),
    "member.card_link": (MemberParams, Object),
    "event.correct": (CorrectParams, EventIdResult),
    "day.close": (Authed, Object),
    "receipt.print": (PrintParams, Object),
    "printer.status": (NoParams, Object),
    "catalogue.lookup": (BarcodeParams, LookupResult),
    "catalogue.search": (CatalogueSearchParams, CatalogueSearchResult),
    # (1.3) house accounts
    "account.status": (AccountStatusParams, AccountStatusResult),
    "account.pay": (AccountPayParams, AccountPayResult),
    "value.balance": (ValueBalanceParams, ValueBalanceResult),
    "balance.adjust": (AdjustParams, AdjustResult),
    "balance.adjustments": (AdjustmentsParams, AdjustmentsResult),
    "package.list": (PackageListParams, PackageListResult),
    "package.checkin": (PackageCheckinParams, PackageCheckinResult),
    "package.freeze": (PackageFreezeParams, PackageFreezeResult),
}
