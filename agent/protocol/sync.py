"""The club link's other messages: ack, member records, change sets, commands, status."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from agent.protocol.base import Amount, Id, Message, Object, Seq, SignedAmount, Text

IdList = Annotated[list[Id], msgspec.Meta(max_length=10_000)]
RejectedList = Annotated[list["Rejected"], msgspec.Meta(max_length=10_000)]
TextList = Annotated[list[Text], msgspec.Meta(max_length=100)]


class Rejected(Message):
    id: Id
    reason: Text | None = None


class Ack(Message):
    """``/acks``: the club's answer to a batch."""

    batch: Text | None = None
    accepted: IdList = msgspec.field(default_factory=list)
    rejected: RejectedList = msgspec.field(default_factory=list)
    applied_seq: Seq | None = None


class TierWindow(Message):
    """(1.3) The member's unrefunded sales in the last ``days`` days (bundle.md, "Tier
    progress"): what the next tier's ``upgrade`` is measured against."""

    days: Annotated[int, msgspec.Meta(ge=0, le=3660)]
    spend: Amount
    purchases: Amount


class MemberStats(Message):
    purchase_count: Amount | None = None
    last_purchase: Text | None = None
    spend_30d: Amount | None = None
    tier_window: TierWindow | None = None


class Referrals(Message):
    """(1.3) Members this member referred, and what their purchases credited by kind."""

    count: Amount
    earned: dict[str, Amount] = msgspec.field(default_factory=dict)


class MemberRecord(Message):
    """A cached member (club.md "Member cache"); one snapshot line is one record."""

    member_id: Id
    version: Amount | None = None
    name: Text | None = None
    status: Text | None = None
    tier: Text | None = None
    groups: list[Text] = msgspec.field(default_factory=list)
    birthday: Text | None = None
    joined: Text | None = None
    identifiers: TextList = msgspec.field(default_factory=list)
    balances: dict[str, SignedAmount] = msgspec.field(default_factory=dict)
    stats: MemberStats | None = None
    applied: dict[str, Seq] = msgspec.field(default_factory=dict)
    # (1.1) optional keys (club.md "Member cache", bundle.md "Promotions").
    replaces: list[Text] | None = None
    referred_by: Text | None = None
    balance_lots: dict[str, list[Object]] | None = None
    rule_uses: Object | None = None
    used_codes: list[Text] | None = None
    coupons: list[Object] | None = None
    # (1.2) the member scopes whose terminals hold this record (club.md "Member scopes").
    scopes: list[Text] | None = None
    # (1.3) cards reported lost (blocked, refused as lost) and referrals (club.md).
    lost_identifiers: list[Text] | None = None
    referrals: Referrals | None = None
    #: (1.1) A tombstone ``{member_id, version?, removed: true}``: the club deleted the member.
    removed: bool | None = None


class ChangeSet(Message):
    """``/members/changes``: ``from_version`` → ``to_version``."""

    from_version: Seq
    to_version: Seq
    members: list[MemberRecord] = msgspec.field(default_factory=list)
    removed: list[Id] = msgspec.field(default_factory=list)


class Command(Message):
    """``/commands``: ``{id, type, args}``."""

    id: Id
    type: Text
    args: Object | None = None


class CommandResult(Message):
    """``/command-results``."""

    id: Id
    ok: bool
    state: Literal["done", "failed", "interrupted"] | None = None
    detail: Text | None = None


class QueueStatus(Message):
    pending: Amount
    oldest_at: Text | None
    rejected: Amount
    recent_rejections: list[Object] = msgspec.field(default_factory=list)


class LinkStatus(Message):
    in_flight: Amount
    last_ack_at: Text | None
    ack_timeouts: Amount
    #: (1.1) The broker connected to (URL, the address in brackets), or null.
    broker: Text | None = None


class PrinterStatus(Message):
    """(1.2) The receipt printer (docs/receipts.md)."""

    kind: Text | None = None
    #: ``unknown``, ``ready``, ``paper_low``, ``paper_out``, ``cover_open``, ``offline``, ``error``.
    state: Text | None = None
    detail: Text | None = None
    failed: Amount = 0


class Status(Message):
    """``/status`` (retained; also the will with ``state: offline``)."""

    state: Literal["online", "offline"]
    at: Text | None = None
    agent_version: Text | None = None
    rules_version: Amount | Text | None = None
    rules_problem: Text | None = None
    members_version: Amount | None = None
    members_problem: Text | None = None
    staff_version: Text | Amount | None = None
    staff_problem: Text | None = None
    catalogue_version: Amount | None = None
    catalogue_problem: Text | None = None
    queue: QueueStatus | None = None
    readers: list[Object] = msgspec.field(default_factory=list)
    printer: PrinterStatus | None = None
    link: LinkStatus | None = None


class Envelope(Message, kw_only=True):
    """A signed retained document (rule bundle, staff list): checked further by its owner."""

    #: (1.1) ``"manifest"``: the payload is a :class:`Manifest`, the document is fetched
    #: over HTTPS (club.md "Large documents"); absent: the payload is the document.
    type: Literal["manifest"] | None = None
    key_id: Id
    payload: Annotated[str, msgspec.Meta(max_length=4 * 1024 * 1024)]
    sig: Annotated[str, msgspec.Meta(max_length=200)]


class Manifest(Message, kw_only=True):
    """(1.1) A manifest envelope's signed payload: where to fetch the document."""

    kind: Literal["bundle", "catalogue"]
    club: Id
    merchant: Id
    version: Amount
    sha256: Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{64}$")]
    size: Amount
    path: Annotated[str, msgspec.Meta(min_length=1, max_length=2000, pattern="^/")]
    content_encoding: Literal["identity", "gzip"] = "identity"


class LookupRequest(Message):
    """(1.2) ``POST …/members/lookup``: a card the cache does not hold."""

    token: Text
    terminal_id: Id


class LookupAnswer(Message):
    """(1.2) The lookup's ``200`` answer."""

    member: MemberRecord
