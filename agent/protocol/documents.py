"""Signed documents a club retains for its terminals: the rule bundle (bundle.md), the
staff list (staff.md) and the catalogue with its change sets (catalogue.md).

Each travels as the base64 ``payload`` of a :class:`agent.protocol.sync.Envelope` (or
is fetched over HTTPS after a :class:`agent.protocol.sync.Manifest`). These Structs
are the published shape; the owners keep their own compile step after the signature
is checked (``agent/rules/rule_parse.py`` for rules — it reports the ``reason`` codes of
bundle.md —, ``agent/staff/`` for staff, ``agent/catalogue/document.py``), and a key a
terminal does not know is ignored as everywhere else.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from agent.protocol.base import Amount, Id, Message, Object, Text

Sku = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
#: ``["HH:MM", "HH:MM"]`` or a list of such pairs (1.1); likewise for dates.
Ranges = Annotated[list[Any], msgspec.Meta(max_length=100)]


# ---- the rule bundle -----------------------------------------------------------------

class TierUpgrade(Message):
    """(1.3) What takes a member of the tier below into this tier (bundle.md)."""

    window_days: Annotated[int, msgspec.Meta(ge=0, le=3660)]
    min_spend: Annotated[int, msgspec.Meta(ge=1, le=2**53 - 1)] | None = None
    min_purchases: Annotated[int, msgspec.Meta(ge=1, le=2**53 - 1)] | None = None


class Tier(Message):
    id: Id
    rank: int
    upgrade: TierUpgrade | None = None


class Points(Message):
    value: Amount | None = None
    #: (1.1) a point's value per tier id (rules.md "A point value per tier").
    value_by_tier: dict[Text, Amount] | None = None
    min_redeem: Amount | None = None
    max_redeem_share_bps: Annotated[int, msgspec.Meta(ge=0, le=10_000)] | None = None


class Credits(Message):
    accepted: list[Text] = msgspec.field(default_factory=list)
    use_cap_per_invoice: Amount | None = None
    use_cap_per_day: Amount | None = None


class OfflineLimits(Message):
    max_redeem_value_per_member_day: Amount | None = None
    max_pending: Amount | None = None
    max_age_hours: Amount | None = None
    #: (1.1) rules.md "Promotions": single-use codes accepted offline.
    accept_single_use_codes: bool | None = None
    #: (1.3) bundle.md "Adjustments": added by hand per staff member and day offline.
    adjust_points_per_staff_day: Amount | None = None
    adjust_credit_per_staff_day: Amount | None = None


class PointsAdjustments(Message):
    """(1.3) ``adjustments.points``: limits and the rate of points from an amount."""

    max_add: Annotated[int, msgspec.Meta(ge=1, le=2**53 - 1)] | None = None
    max_deduct: Annotated[int, msgspec.Meta(ge=1, le=2**53 - 1)] | None = None
    max_per_member_day: Annotated[int, msgspec.Meta(ge=1, le=2**53 - 1)] | None = None
    earn_rule: Id | None = None
    per_spend: Annotated[int, msgspec.Meta(ge=1, le=2**53 - 1)] | None = None
    points: Amount | None = None


class CreditAdjustments(Message):
    """(1.3) ``adjustments.credit``: the kinds an operator may grant, and limits."""

    kinds: list[Annotated[str, msgspec.Meta(
        pattern=r"^(credit|units)\.[^\s]{1,58}$", max_length=64)]] = msgspec.field(
        default_factory=list)
    max_grant: Annotated[int, msgspec.Meta(ge=1, le=2**53 - 1)] | None = None
    max_deduct: Annotated[int, msgspec.Meta(ge=1, le=2**53 - 1)] | None = None
    max_per_member_day: Annotated[int, msgspec.Meta(ge=1, le=2**53 - 1)] | None = None


class Adjustments(Message):
    """(1.3) bundle.md "Adjustments": manual points and granted credit (absent: off)."""

    points: PointsAdjustments | None = None
    credit: CreditAdjustments | None = None
    require_note: bool | None = None


class SpendDays(Message):
    days: Annotated[int, msgspec.Meta(ge=1, le=100_000)]
    amount: Amount


class PerPeriod(Message):
    count: Amount
    period: Literal["day", "week", "month", "year", "ever"]


class Conditions(Message):
    """A rule's ``when`` (bundle.md "Conditions"): every key optional, all must hold."""

    anonymous: bool | None = None
    tiers: list[Text] | None = None
    min_tier: Text | None = None
    groups: list[Text] | None = None
    weekdays: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] | None = None
    hours: Ranges | None = None
    dates: Ranges | None = None
    birthday: Literal["day", "month"] | None = None
    min_gross: Amount | None = None
    skus: list[Text] | None = None
    categories: list[Text] | None = None
    identified_by: list[Text] | None = None
    bins: list[Text] | None = None
    min_purchase_count: Amount | None = None
    min_spend_30d: Amount | None = None
    min_days_since_last_purchase: Amount | None = None
    # (1.1) promotions (rules.md "Promotions a club can run").
    min_points: Amount | None = None
    min_spend_days: SpendDays | None = None
    bought_within_days: Amount | None = None
    first_purchase: bool | None = None
    purchase_count_every: Amount | None = None
    referred: bool | None = None
    codes: list[Text] | None = None
    single_use: bool | None = None
    coupon: bool | None = None
    once_per_member: bool | None = None
    max_per_member: PerPeriod | None = None
    max_per_store: PerPeriod | None = None
    budget: Amount | None = None


class Effects(Message):
    """A rule's ``then`` (bundle.md "Effects"): the keys of its ``kind``."""

    percent_bps: Annotated[int, msgspec.Meta(ge=0, le=10_000)] | None = None
    amount: Amount | None = None
    max_amount: Amount | None = None
    per_spend: Annotated[int, msgspec.Meta(ge=1, le=2**53 - 1)] | None = None
    points: Amount | None = None
    max_points: Amount | None = None
    bps: Annotated[int, msgspec.Meta(ge=10_000, le=2**53 - 1)] | None = None
    kind: Text | None = None
    expires_days: Amount | None = None
    entries: Amount | None = None
    # (1.1) promotions (rules.md "Kinds and effects"): a discount's ``per_unit: true``,
    # a points rule's ``per_unit`` N.
    per_unit: bool | Amount | None = None
    per_visit: Amount | None = None
    buy: Amount | None = None
    get: Amount | None = None
    cheapest: Amount | None = None
    for_rule: Text | None = None
    prefix: Text | None = None
    cost_points: Amount | None = None
    name: Text | None = None
    units: Amount | None = None


class Rule(Message):
    """One rule (bundle.md "A rule"). A ``kind`` or condition key the terminal does not
    know makes the rule not apply, never the bundle fail."""

    id: Id
    kind: Text
    priority: int = 0
    exclusive: bool = False
    name: Text | None = None
    when: Conditions = msgspec.field(default_factory=Conditions)
    then: Effects = msgspec.field(default_factory=Effects)


class Bundle(Message, kw_only=True):
    """The rule bundle: the signed payload on ``/merchants/{merchant_id}/rules``."""

    club: Id
    merchant: Id
    version: Amount
    expires_at: Text
    issued_at: Text | None = None
    currency: Text | None = None
    minor_units: Annotated[int, msgspec.Meta(ge=0, le=10)] | None = None
    timezone: Text | None = None
    tiers: list[Tier] = msgspec.field(default_factory=list)
    points: Points | None = None
    credits: Credits | None = None
    offline: OfflineLimits | None = None
    rules: list[Rule] = msgspec.field(default_factory=list)
    #: (1.3) manual points and granted credit.
    adjustments: Adjustments | None = None


# ---- the staff list ------------------------------------------------------------------

Permission = Literal["view", "add", "edit", "delete", "print"]


class Group(Message):
    permissions: dict[Text, list[Permission]] = msgspec.field(default_factory=dict)


class PinHash(Message):
    """scrypt over the PIN's UTF-8 bytes — never a PIN (staff.md)."""

    scheme: Literal["scrypt"]
    n: Annotated[int, msgspec.Meta(ge=1024, le=131_072)]
    r: Annotated[int, msgspec.Meta(ge=1, le=16)]
    p: Annotated[int, msgspec.Meta(ge=1, le=4)]
    salt: Annotated[str, msgspec.Meta(max_length=200)]
    hash: Annotated[str, msgspec.Meta(max_length=200)]


class StaffMember(Message, kw_only=True):
    staff_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^\S+$")]
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    active: bool = True
    pin: PinHash | None = None
    badges: Annotated[list[Annotated[str, msgspec.Meta(pattern="^(nfc|pan):")]],
                      msgspec.Meta(max_length=16)] = msgspec.field(default_factory=list)
    groups: Annotated[list[Text], msgspec.Meta(min_length=1, max_length=32)]


class StaffList(Message):
    """The staff list: the signed payload on ``/merchants/{merchant_id}/staff``."""

    kind: Literal["staff_list"]
    club_id: Id
    merchant_id: Id
    version: Amount
    groups: dict[Text, Group] = msgspec.field(default_factory=dict)
    staff: list[StaffMember] = msgspec.field(default_factory=list)


# ---- the catalogue -------------------------------------------------------------------

class MemberPrice(Message):
    price: Amount
    tier: Text | None = None
    group: Text | None = None


class Product(Message):
    sku: Sku
    names: Annotated[dict[Annotated[str, msgspec.Meta(min_length=1, max_length=35)],
                          Annotated[str, msgspec.Meta(min_length=1, max_length=120)]],
                     msgspec.Meta(min_length=1, max_length=8)]
    price: Amount
    category: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None
    unit: Literal["piece", "weight"] = "piece"
    barcodes: Annotated[list[Annotated[str, msgspec.Meta(min_length=1, max_length=256)]],
                        msgspec.Meta(max_length=16)] = msgspec.field(default_factory=list)
    active_from: Text | None = None
    active_to: Text | None = None
    member_prices: Annotated[list[MemberPrice], msgspec.Meta(max_length=16)] = \
        msgspec.field(default_factory=list)
    #: (1.3) Stored value the product sells, or the units that may pay it
    #: (catalogue.md "Stored value").
    topup: Object | None = None
    gift_card: Object | None = None
    price_units: Object | None = None
    #: (1.3) A visit package or membership the product sells: ``{visits (null:
    #: unlimited), valid_days, grace_days, freezable_days}`` (catalogue.md "Packages").
    package: Object | None = None


class Catalogue(Message):
    """A whole catalogue: the signed payload on ``/merchants/{merchant_id}/catalogue``."""

    club: Id
    merchant: Id
    version: Amount
    issued_at: Text | None = None
    languages: list[Text] = msgspec.field(default_factory=list)
    currency: Text | None = None
    minor_units: Annotated[int, msgspec.Meta(ge=0, le=10)] | None = None
    products: Annotated[list[Product], msgspec.Meta(max_length=50_000)] = \
        msgspec.field(default_factory=list)


class CatalogueChanges(Message, kw_only=True):
    """A catalogue change set (``…/catalogue/changes``): ``from_version`` → ``version``."""

    club: Id
    merchant: Id
    version: Amount
    from_version: Amount
    issued_at: Text | None = None
    products: Annotated[list[Product], msgspec.Meta(max_length=50_000)] = \
        msgspec.field(default_factory=list)
    removed: Annotated[list[Sku], msgspec.Meta(max_length=50_000)] = \
        msgspec.field(default_factory=list)
