"""What every family of local-API methods shares: the agent's view, the store's
parts, recording a fact durably, the caller's session, time zone and members.

:class:`ServiceCore` holds the state; each family (``quotes``, ``sales``,
``staff``, …) is a subclass adding its methods, and :class:`Services` joins them.
Store failures become :class:`ApiError` here, with a message a cashier can act on
and the store's exception kept as the cause.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any, ParamSpec, Protocol, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from agent import rules
from agent.errors import (
    ApiError,
    CardReportedLost,
    ClubtermError,
    LimitExceeded,
    LinkError,
    StorageError,
)
from agent.localapi import (
    CONFLICT,
    INVALID_PARAMS,
    LIMIT,
    MEMBER_NOT_ACTIVE,
    NOT_ALLOWED,
    NOT_FOUND,
    QUOTE_TTL_SECONDS,
    STORAGE,
    UNKNOWN_MEMBER,
)
from agent.localapi.ports import (
    Catalogue,
    DbThread,
    Members,
    Outbox,
    QuoteFn,
    Records,
    event_dict,
)
from agent.localapi.services.params import (
    CARD_AS_PHONE,
    Params,
    _checked_token,
    _iso,
    _sentence,
    tel_token,
    upper_ascii,
)
from agent.localapi.sessions import BadgeTaps, PinAttempts, Session, SessionTable
from agent.offline_queue import (
    AccountRefused,
    AlreadyRefunded,
    AppointmentConflict,
    CardNotLinkable,
    QuoteAlreadyRecorded,
    RefundNotPossible,
    ValueNotAvailable,
)
from agent.offline_queue.adjustments import AdjustmentRefused
from agent.offline_queue.members import LOOKED_UP_KEY, looked_up_age_s
from agent.offline_queue.package_uses import PackageRefused
from agent.rules.tiers import tier_progress
from agent.staff import permissions as perm

if TYPE_CHECKING:
    from agent.localapi.services.quotes import StoredQuote
    from agent.offline_queue import QueueStats, StoredEvent
    from agent.printer import ReceiptPrinterPort
    from agent.rules import Bundle

log = logging.getLogger("agent.localapi.services")
P = ParamSpec("P")
T = TypeVar("T")

#: How long a member record answered by the club's online lookup counts as current:
#: within it the member is served like one of the terminal's scope, after it (the
#: club not answering again) earn only (docs/fleet.md, "Scoped member changes").
LOOKUP_FRESH_S = 120.0
LOOKUP_FAILED = ("This card is not on this terminal and the club could not be asked just now. "
                 "Sell without member benefits, or try again in a minute.")

STORAGE_MESSAGE = ("This could not be saved on the terminal (storage problem); nothing was "
                   "recorded. Please try again or call a technician.")
# What a cashier reads when the store refuses a commit's redemption (LimitExceeded).
_FUNDS_MESSAGES = {
    "points_balance": "The member no longer has enough points; please compute the sale again.",
    "credit_balance": "The member no longer has enough credit; please compute the sale again.",
    "balance_bound": "The member's balance would become too large to record; please call a "
                     "technician.",
}

# What a manager reads when the store refuses a refund (RefundNotPossible).
_REFUND_MESSAGES = {
    "partly_refunded": "Some lines of this sale were refunded already; refund the lines "
                       "that are left.",
    "over_refund": "That is more than is left to refund of this line (another refund may "
                   "have just been recorded); look at the sale again.",
    "unknown_sale": "There is no such sale on this terminal.",
}


# What a manager reads when the store refuses a card link (CardNotLinkable).
_LINK_MESSAGES = {
    "card_taken": "This card already belongs to {name}; it cannot be linked to another member.",
    "card_lost": "This card was reported lost; it cannot be linked. Keep it and give the "
                 "member a new card.",
    "card_linked": "This card is already this member's.",
    "not_members_card": "The card to replace is not this member's.",
    "unknown_member": "No member has this id.",
}
CARD_LOST = ("This card was reported lost and replaced by a new one; no benefits. Keep it, "
             "and ask the member for their new card.")
# (1.3) The answer's code of a refused check-in or freeze (PackageRefused); LIMIT else.
_PACKAGE_CODES = {"package_unknown": NOT_FOUND, "package_frozen": CONFLICT,
                  "package_not_started": CONFLICT, "package_expired": CONFLICT,
                  "bad_freeze": INVALID_PARAMS}
# (1.3) What a cashier reads when the store refuses stored value (ValueNotAvailable).
_VALUE_MESSAGES = {
    "insufficient_value": "There is not enough stored value left (it may have just been "
                          "spent at another till); please compute the sale again.",
    "gift_card_empty": "This gift card has no value left.",
    "gift_card_expired": "This gift card has expired.",
    "gift_card_unknown": "This gift card is not known here.",
    "gift_card_spent": "The gift card sold with this sale has been spent; the sale cannot be "
                       "refunded whole.",
    "gift_card_token_taken": "This card already belongs to a member or gift card; use a new "
                             "card.",
    "offline_value_limit": "The terminal is offline and this card or member has reached "
                           "today's offline limit for stored value; take another payment.",
}


def _store_error(exc: ClubtermError) -> ApiError:
    """The API error for a store exception other than StorageError."""
    if isinstance(exc, AdjustmentRefused):  # (1.3) before LimitExceeded, its base class
        return ApiError(LIMIT, exc.args[0] if exc.args else str(exc),
                        {"reason": "limit", "limit": exc.limit, **exc.params})
    if isinstance(exc, PackageRefused):  # (1.3) a check-in or freeze refused
        return ApiError(_PACKAGE_CODES.get(exc.reason, LIMIT),
                        exc.args[0] if exc.args else str(exc),
                        {"reason": exc.reason, **exc.params})
    if isinstance(exc, LimitExceeded):  # Store.append(check_funds=True)
        return ApiError(LIMIT, _FUNDS_MESSAGES.get(exc.limit, _sentence(str(exc))),
                        {"limit": exc.limit})
    if isinstance(exc, AccountRefused):  # (1.3) house accounts
        code = {"account_unknown": NOT_FOUND, "account_limit": LIMIT,
                "account_offline_limit": LIMIT, "account_overpaid": INVALID_PARAMS,
                }.get(exc.reason, NOT_ALLOWED)
        return ApiError(code, exc.args[0], {"reason": exc.reason, **exc.params})
    if isinstance(exc, QuoteAlreadyRecorded):
        return ApiError(CONFLICT, "This sale was already recorded.",
                        {"reason": "already_recorded", "sale_id": exc.sale_id})
    if isinstance(exc, AlreadyRefunded):
        return ApiError(CONFLICT, "This sale has already been refunded.",
                        {"reason": "refunded"})
    if isinstance(exc, RefundNotPossible):
        code = {"bad_lines": INVALID_PARAMS, "no_such_line": INVALID_PARAMS,
                "unknown_sale": NOT_FOUND}.get(exc.reason, CONFLICT)
        return ApiError(code, _REFUND_MESSAGES.get(exc.reason, _sentence(str(exc))),
                        {"reason": exc.reason, **exc.params})
    if isinstance(exc, CardNotLinkable):
        code = {"not_members_card": INVALID_PARAMS,
                "unknown_member": UNKNOWN_MEMBER}.get(exc.reason, CONFLICT)
        message = _LINK_MESSAGES.get(exc.reason, _sentence(str(exc)))
        return ApiError(code, message.format(name=exc.params.get("name") or "another member"),
                        {"reason": exc.reason, **exc.params,
                         **({"param": "replaces"} if exc.reason == "not_members_card" else {})})
    if isinstance(exc, ValueNotAvailable):  # (1.3) stored value checked in the write
        return ApiError(LIMIT, _VALUE_MESSAGES.get(exc.reason, _sentence(str(exc))),
                        {"reason": exc.reason, **exc.params})
    if isinstance(exc, LookupError):  # RecordNotFound
        return ApiError(NOT_FOUND, "That record does not exist (any more).")
    if isinstance(exc, ValueError):  # InvalidEvent
        return ApiError(INVALID_PARAMS, _sentence(f"This cannot be recorded: {exc}"))
    log.error("unexpected store error: %s", exc)
    return ApiError(STORAGE, STORAGE_MESSAGE, {"detail": str(exc)})


def balance_holder(member: Mapping[str, Any]) -> str:
    """(1.3) Whose balances a member spends and earns: their family pool's (``pool``),
    else their own."""
    pool = member.get("pool")
    return pool if isinstance(pool, str) and pool else str(member["member_id"])


class Caller(Protocol):
    """The connection a request came on (the server's ``Connection``)."""

    id: int
    subscribed: bool


@dataclass
class AgentView:
    """What the services read about the running agent (filled in by the daemon)."""

    terminal_id: str
    merchant_id: str
    default_country_code: str = "1"
    bundle: Callable[[], Bundle | None] = lambda: None
    rules_problem: Callable[[], str | None] = lambda: None
    online: Callable[[], bool] = lambda: False
    link_since: Callable[[], datetime | None] = lambda: None
    # The broker the link is connected to (URL, and address when the name has several).
    link_broker: Callable[[], str | None] = lambda: None
    readers: Callable[[], list[dict[str, Any]]] = lambda: []
    # Called after an event is durable, so the club link sends it soon.
    on_recorded: Callable[[], None] = lambda: None
    # Sends an ``event`` notification to every subscribed client.
    broadcast: Callable[[dict[str, Any]], None] = lambda _e: None
    # Asks the club for a member the cache does not hold (blocking, bounded; run off
    # the loop): the record, None (no such member), or a LinkError. None: no lookup.
    lookup_member: Callable[[str], dict[str, Any] | None] | None = None
    started: float = field(default_factory=time.monotonic)
    # The receipt printer of the terminal profile (docs/receipts.md), or None.
    printer: ReceiptPrinterPort | None = None
    # (1.3) Turns a checked national id's digits into its ``nid:`` token (keyed by the
    # club's pan_key, which stays inside the closure); None: national ids not available.
    nid_token: Callable[[str], str] | None = None


def _referrals(raw: object) -> dict[str, Any] | None:
    """(1.3) The record's ``referrals`` {count, earned: {kind: amount}} kept by the club,
    as whole numbers (anything else left out), or None."""
    if not isinstance(raw, Mapping):
        return None
    count = raw.get("count")
    found = raw.get("earned")
    earned: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    return {"count": count if type(count) is int and count >= 0 else 0,
            "earned": {str(k): v for k, v in earned.items()
                       if type(v) is int and 0 <= v <= 2**53 - 1 and len(str(k)) <= 100}}


def _granted(staff: Mapping[str, Any]) -> frozenset[str]:
    """A staff record's permissions (a store without them: its role's default group)."""
    granted = staff.get("permissions")
    if isinstance(granted, list | tuple | set | frozenset):
        return frozenset(str(p) for p in granted)
    return perm.union([str(staff.get("role"))], perm.DEFAULT_GROUPS)


class ServiceCore:
    """The state and plumbing every family of methods uses; one instance per agent."""

    def __init__(self, view: AgentView, db: DbThread, *, outbox: Outbox, members: Members,
                 records: Records, quote_fn: QuoteFn = rules.quote,
                 sessions: SessionTable | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 monotonic: Callable[[], float] = time.monotonic,
                 quote_ttl_s: float = QUOTE_TTL_SECONDS, offline_only: bool = False,
                 catalogue: Catalogue | None = None):
        self.view = view
        # The club's product catalogue (None: a store without one; lookups find nothing).
        self.catalogue = catalogue
        # [terminal] offline_only: staff may be created here while a club list is in force.
        self.offline_only = offline_only
        self.outbox = outbox
        self.members = members
        self.records = records
        self.db = db
        self.quote_fn = quote_fn
        self.sessions = sessions or SessionTable(clock=monotonic)
        self.clock = clock
        self.monotonic = monotonic
        self.quote_ttl_s = quote_ttl_s
        self._quotes: OrderedDict[str, StoredQuote] = OrderedDict()
        self._committed: OrderedDict[str, tuple[float, dict[str, Any]]] = OrderedDict()
        # The commit being written for a quote: a second commit of it waits for
        # this one and answers its result (one sale per quote, whatever the timing).
        self._commits: dict[str, asyncio.Task[dict[str, Any]]] = {}
        # token → (masked, bin6) of recent card reads, so a quote by token knows the
        # BIN and a member summary can show the masked number. Never the PAN.
        self._recent_cards: OrderedDict[str, tuple[str | None, str | None]] = OrderedDict()
        self.accepting = True
        self.pin_attempts = PinAttempts()
        self.taps = BadgeTaps()
        # staff id → (lock, holders): one PIN check at a time per staff id.
        self._pin_locks: dict[str, tuple[asyncio.Lock, list[int]]] = {}
        self._close_lock = asyncio.Lock()

    def note_card(self, token: str, masked: str | None, bin6: str | None) -> None:
        """Remember the masked form and BIN of a token just read (for quotes/summaries)."""
        self._recent_cards[token] = (masked, bin6)
        self._recent_cards.move_to_end(token)
        while len(self._recent_cards) > 256:
            self._recent_cards.popitem(last=False)

    async def _record(self, what: str, fn: Callable[P, T], *args: P.args,
                      **kwargs: P.kwargs) -> T:
        """Run a store call that records a fact; map its errors to API errors.

        Returns only after the store call returned, i.e. after the fact is durable.
        An AppointmentConflict passes through: the caller names the other booking.
        """
        try:
            result = await self.db.call(fn, *args, **kwargs)
        except (StorageError, OSError) as exc:  # OSError: a store that did not convert it
            log.error("could not record %s: %s", what, exc)
            raise ApiError(STORAGE, STORAGE_MESSAGE, {"detail": str(exc)}) from exc
        except AppointmentConflict:
            raise
        except ClubtermError as exc:
            raise _store_error(exc) from exc
        try:
            self.view.on_recorded()
            self.broadcast_queue(await self.db.read(self.outbox.queue_stats))
        except Exception:  # waking the link is best effort; the event is safe
            log.exception("could not wake the club link")
        return result

    async def _append(self, type_: str, body: dict[str, Any],
                      staff_id: str | None) -> StoredEvent:
        """Record one outbox event durably (``Outbox.append``)."""
        return await self._record(f"a {type_}", self.outbox.append, type_, body,
                                  at=self.clock(), staff_id=staff_id,
                                  offline=not self.view.online())

    def _money_info(self, bundle: Bundle | None) -> dict[str, Any]:
        """Currency facts for clients that format money (None without a bundle)."""
        return {"currency": bundle.currency if bundle is not None else None,
                "minor_units": bundle.minor_units if bundle is not None else None,
                "timezone": str(self._tz())}

    def broadcast_queue(self, stats: QueueStats) -> None:
        """Tell subscribers the outbox changed (``queue`` event)."""
        self.view.broadcast({"type": "queue", "pending": stats.pending,
                             "oldest_at": _iso(stats.oldest_at), "rejected": stats.rejected})

    def _tz(self) -> tzinfo:
        bundle = self.view.bundle()
        if bundle is not None:
            try:
                return ZoneInfo(bundle.timezone)
            except (ZoneInfoNotFoundError, ValueError):
                log.warning("unknown time zone %r in the rule bundle", bundle.timezone)
        local = datetime.now().astimezone().tzinfo
        return local if local is not None else UTC

    def _day_bounds(self, day: date) -> tuple[datetime, datetime]:
        tz = self._tz()
        start = datetime.combine(day, datetime.min.time(), tzinfo=tz)
        end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=tz)
        return start, end

    def _today(self) -> date:
        return self.clock().astimezone(self._tz()).date()

    async def _summary(self, member: Mapping[str, Any], token: str | None) -> dict[str, Any]:
        holder = balance_holder(member)
        view = await self.db.read(self.members.member_view, member["member_id"])
        if view is not None:  # usable balances and stats projected over own sales
            balances = view["balances"] if holder == member["member_id"] else \
                await self.db.read(self.members.usable_balances, holder)  # (1.3) the pool's
            return self._summary_from({**member, "balances": balances,
                                       "stats": view.get("stats") or {}}, token)
        balances = await self.db.read(self.members.usable_balances, holder)
        return self._summary_from({**member, "balances": balances}, token)

    def _summary_from(self, member: Mapping[str, Any], token: str | None) -> dict[str, Any]:
        """The member summary of a record whose balances are already the usable ones."""
        balances = member["balances"]
        masked = self._recent_cards.get(token, (None, None))[0] if token else None
        return {
            "member_id": member["member_id"],
            "name": member.get("name"),
            "tier": member.get("tier"),
            "status": member.get("status"),
            "balances": dict(balances),
            "masked": masked,
            **self._lookup_keys(member),
            # (1.3) the family pool whose balances these are
            **({"pool_id": member["pool"]} if balance_holder(member) != member["member_id"]
               else {}),
            **self._lifecycle_keys(member),
        }

    def _lifecycle_keys(self, member: Mapping[str, Any]) -> dict[str, Any]:
        """(1.3) ``tier_progress`` (the bundle's thresholds) and ``referrals`` (the
        club's count and credit), each only when there is one."""
        out: dict[str, Any] = {}
        progress = self._tier_progress(member)
        if progress is not None:
            out["tier_progress"] = progress
        referrals = _referrals(member.get("referrals"))
        if referrals is not None:
            out["referrals"] = referrals
        return out

    def _tier_progress(self, member: Mapping[str, Any]) -> dict[str, Any] | None:
        bundle = self.view.bundle()
        if bundle is None or not bundle.tier_upgrades:
            return None
        stats = member.get("stats")
        progress = tier_progress(bundle.tier_ranks, bundle.tier_upgrades, member.get("tier"),
                                 stats if isinstance(stats, Mapping) else {})
        return None if progress is None else progress.as_dict()

    def _lookup_keys(self, member: Mapping[str, Any]) -> dict[str, Any]:
        """``looked_up`` and ``earn_only`` for a member kept from an online lookup
        (another merchant's member: docs/fleet.md); nothing for the terminal's own."""
        age = looked_up_age_s(dict(member), self.clock().timestamp())
        if age is None:
            return {}
        return {"looked_up": True, "earn_only": age > LOOKUP_FRESH_S}

    def earn_only(self, member: Mapping[str, Any] | None) -> bool:
        """Whether this member may only earn here: kept from an online lookup the club
        has not confirmed for ``LOOKUP_FRESH_S`` (its balances may be spent elsewhere)."""
        if member is None:
            return False
        age = looked_up_age_s(dict(member), self.clock().timestamp())
        return age is not None and age > LOOKUP_FRESH_S

    async def _looked_up(self, token: str, cached: dict[str, Any] | None
                         ) -> dict[str, Any] | None:
        """Ask the club for the member holding ``token`` (the cache has none, or only
        an old lookup); the answer is cached. The club unreachable: the old lookup
        (earn only), else :class:`ApiError` ``lookup_failed`` at once."""
        ask = self.view.lookup_member
        if ask is None:
            return cached
        try:
            record = await asyncio.to_thread(ask, token)
        except CardReportedLost as lost:  # (1.3) the club says so: not an unknown card
            raise ApiError(MEMBER_NOT_ACTIVE, CARD_LOST,
                           {"reason": "card_lost", "member_id": lost.member_id}) from None
        except LinkError as exc:
            log.warning("member lookup failed: %s", exc)
            if cached is not None:
                return cached  # earn only: self.earn_only(cached)
            raise ApiError(UNKNOWN_MEMBER, LOOKUP_FAILED,
                           {"reason": "lookup_failed",
                            "detail": getattr(exc, "reason", "network")}) from exc
        if record is None:
            return None
        now = self.clock().timestamp()
        try:
            await self.db.call(self.members.cache_looked_up, record, now)
        except (ClubtermError, OSError) as exc:  # served from memory this once
            log.error("could not cache a looked-up member: %s", exc)
            return {**record, LOOKED_UP_KEY: now}
        return await self.db.read(self.members.lookup, token) or {**record, LOOKED_UP_KEY: now}

    async def _refuse_if_lost(self, token: str) -> None:
        """A card reported lost (and replaced) is refused as lost, not as unknown."""
        owner = await self.lost_card(token)
        if owner is not None:
            raise ApiError(MEMBER_NOT_ACTIVE, CARD_LOST,
                           {"reason": "card_lost", "member_id": owner["member_id"]})

    async def lost_card(self, token: str) -> dict[str, Any] | None:
        """``{member_id, name}`` of the member who reported this card lost, or None."""
        if token.startswith(("tel:", "nid:")):
            return None
        owner = await self.db.read(self.members.lost_holder, token)
        if owner is None:
            return None
        return {"member_id": owner["member_id"], "name": owner.get("name")}

    async def member_summary(self, token: str) -> dict[str, Any] | None:
        """The summary of the member holding ``token`` (any status), or None."""
        member = await self.db.read(self.members.lookup, token)
        if member is None:
            return None
        return await self._summary(member, token)

    def _identifier_of(self, params: Params) -> str:
        token = params.get("token")
        phone = params.get("phone")
        code = params.get("code")
        nid = params.get("nid")
        given = [k for k, v in (("token", token), ("phone", phone), ("code", code),
                                ("nid", nid)) if v]
        if len(given) != 1:
            raise ApiError(INVALID_PARAMS, "Give exactly one of token, phone, code or nid.")
        if token is not None:
            return _checked_token(token)
        if nid is not None:
            return self._nid_token_of(nid)
        if phone is not None:
            if not isinstance(phone, str) or sum(c.isdigit() for c in phone) < 5:
                raise ApiError(INVALID_PARAMS, "That does not look like a phone number.",
                               {"param": "phone"})
            try:
                return tel_token(phone, self.view.default_country_code)
            except ClubtermError as exc:  # CardDataError
                from agent.carddata import tokens

                if str(exc) == tokens.CARD_IN_PHONE_MESSAGE:
                    raise ApiError(INVALID_PARAMS, CARD_AS_PHONE, {"param": "phone"}) from exc
                raise ApiError(INVALID_PARAMS, f"That phone number cannot be used: {exc}",
                               {"param": "phone"}) from exc
        if not isinstance(code, str) or not code.strip() or len(code) > 500:
            raise ApiError(INVALID_PARAMS, "The code is empty or too long.", {"param": "code"})
        return _checked_token("code:" + code.strip(), "code")

    def _nid_token_of(self, nid: object, param: str = "nid") -> str:
        """The ``nid:`` token of a national id typed at the till, checked by the
        country's rule (``agent.carddata.nid``); the number itself is kept nowhere."""
        from agent.carddata.nid import clean_national_id

        if not isinstance(nid, str):
            raise ApiError(INVALID_PARAMS, "The national id must be text.",
                           {"param": param, "reason": "wrong_type", "expected": "string"})
        if self.view.nid_token is None:
            raise ApiError(INVALID_PARAMS, "This terminal cannot use national ids (it has no "
                           "club key yet); find the member by phone or card.",
                           {"param": param, "reason": "nid_unavailable"})
        try:
            digits = clean_national_id(nid, self.view.default_country_code)
            return self.view.nid_token(digits)
        except ClubtermError as exc:  # CardDataError
            raise ApiError(INVALID_PARAMS, _sentence(f"That national id cannot be used: {exc}"),
                           {"param": param, "reason": "bad_nid"}) from exc

    async def _code_as_stored(self, token: str) -> str:
        """A ``code:`` token as the club stores it (#15 item 13): codes are matched
        case-insensitively, the club keeps them upper-cased. The exact token wins
        (QR and GS1 payloads are case-sensitive), else its ASCII upper-case form."""
        upper = "code:" + upper_ascii(token[5:])
        if upper == token or await self.db.read(self.members.lookup, token) is not None:
            return token
        return upper

    async def _member_for(self, token: str) -> dict[str, Any]:
        member = await self.db.read(self.members.lookup, token)
        if member is None or self.earn_only(member):
            member = await self._looked_up(token, member)
        if member is None:
            await self._refuse_if_lost(token)
            raise ApiError(UNKNOWN_MEMBER, "No member is registered with this card or number.")
        if member.get("holder") == "account":  # (1.3) a house account's card: no person
            raise ApiError(UNKNOWN_MEMBER, f"This is the card of the house account "
                           f"{member.get('name')}; use it to pay on account.",
                           {"reason": "account_card", "account_id": member["member_id"]})
        pool = member.get("pool")
        if isinstance(pool, str) and pool:
            # (1.3) A pool this terminal does not hold: the member's own balances (the
            # sale then names no pool and the club books it on the member too).
            found = await self.db.read(self.members.member, pool)
            if found is None or found.get("holder") != "pool":
                member = {k: v for k, v in member.items() if k != "pool"}
        if member.get("holder") == "gift_card":  # (1.3) a gift card is no member
            raise ApiError(UNKNOWN_MEMBER, "This is a gift card: use it to pay (Pay, gift "
                           "card), or look at its balance.",
                           {"reason": "gift_card", "card_id": member["member_id"]})
        if member.get("status") != "active":
            summary = await self._summary(member, token)
            what = "lost" if member.get("status") == "lost_card" else "blocked"
            raise ApiError(MEMBER_NOT_ACTIVE,
                           f"This member's card is {what}; no club benefits can be given.",
                           {"member_id": member["member_id"], "status": member.get("status"),
                            "member": summary})
        return dict(member)

    async def _session(self, params: Params, need: str) -> Session:
        """The caller's live session if its staff member may ``need`` (a permission).

        The one way a method checks its caller. The staff member is read again on
        every use: whoever the club's staff list (or a technician) removed or
        deactivated is signed out at once, and changed groups count from the next call.
        """
        session = self.sessions.check(params.get("session"))
        staff = await self.db.read(self.records.staff, session.staff_id)
        if staff is None or not staff.get("active", True):
            self.sessions.close(session.token)
            raise ApiError(NOT_ALLOWED, "You are no longer on this terminal's staff list, so "
                           "your sign-in has ended. Please ask a manager.",
                           {"reason": "staff_removed"})
        session.role, session.permissions = staff["role"], _granted(staff)
        if need not in session.permissions:
            needs = [r for r, g in perm.DEFAULT_GROUPS.items() if need in g]
            raise ApiError(
                NOT_ALLOWED,
                f"A {session.role} may not do this ({perm.describe(need)}); ask a "
                f"{' or '.join(needs) or 'manager'}.",
                {"reason": "role", "role": session.role, "needs": needs, "permission": need})
        return session

    def staff_removed(self, staff_ids: Iterable[str]) -> int:
        """The club's staff list deactivated these staff: end their sessions now."""
        ended = self.sessions.end_staff(staff_ids)
        if ended:
            log.info("ended %d session(s) of staff no longer on the staff list", ended)
        return ended

    async def _day_events(self, day: date) -> tuple[list[dict[str, Any]], datetime]:
        start, end = self._day_bounds(day)
        rows = await self.db.read(self.outbox.events_between, start, end)
        return [event_dict(e) for e in rows if e.get("_state") != "rejected"], end

    async def _staff_names(self, ids: Iterable[object]) -> dict[str, str]:
        names = {}
        for staff_id in ids:
            if isinstance(staff_id, str):
                staff = await self.db.read(self.records.staff, staff_id)
                names[staff_id] = str((staff or {}).get("name") or staff_id)
        return names
