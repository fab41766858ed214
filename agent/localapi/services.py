"""The local API's methods (``local-api.md``): the business behind each JSON-RPC call.

:class:`Services` validates parameters, enforces staff roles, asks the rules engine
for quotes, records facts through the store (answering only once they are durable)
and turns every failure into an :class:`ApiError` whose message a cashier can read.
Decisions the spec leaves open are written down in ``docs/local-api.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from agent import __version__
from agent.carddata.detect import find_card_data
from agent.errors import ApiError, ClubtermError, LimitExceeded, RulesError, StorageError
from agent.localapi import (
    CONFLICT,
    INVALID_PARAMS,
    LIMIT,
    MEMBER_NOT_ACTIVE,
    METHOD_NOT_FOUND,
    NOT_ALLOWED,
    NOT_FOUND,
    QUOTE_EXPIRED,
    QUOTE_TTL_SECONDS,
    STORAGE,
    UNKNOWN_MEMBER,
    receipt_number,
)
from agent.localapi.ports import DbThread, QuoteFn, event_dict, field_of, rules_quote
from agent.localapi.sessions import BadgeTap, BadgeTaps, PinAttempts, Session, SessionTable
from agent.offline_queue.events import MAX_AMOUNT, QuoteAlreadyRecorded
from agent.offline_queue.local_data import StaffManagedByClub
from agent.safe_text import describe, unsafe_char
from agent.staff import permissions as perm
from agent.staff.staff_list import check_badge

log = logging.getLogger(__name__)

# The roles of old, for readers of the code: each call now needs a permission
# (agent.staff.permissions), and these roles' default groups hold them.
SELLERS = ("cashier", "manager")
MANAGERS = ("manager",)
ANY_STAFF = ("cashier", "manager", "technician")

SALE_KEYS = (
    "gross", "discounts", "redeemed_points", "redeemed_value", "credits_used", "payable",
    "points_earned", "credits_earned", "lottery_entries", "rules_version",
)
# Issue 21's sale keys: recorded only when the quote has them (docs/rules.md).
PROMOTION_KEYS = ("rewards", "codes_used", "fees", "referral_rewards", "coupons_issued",
                  "uses")
PAYMENTS = ("cash", "card", "other")
# Quotes are kept in memory only (documented in docs/local-api.md, "Limits").
# Open quotes of one connection: its oldest one goes to make room for a new one.
MAX_QUOTES_PER_CONNECTION = 100
# Open quotes of all connections, and basket lines held by them: a new quote is
# refused (-32003, limit "open_quotes") rather than taking another client's away.
MAX_QUOTES = 1_000
MAX_QUOTE_LINES = 20_000
# A basket line's sku and category, in characters.
MAX_LINE_TEXT = 64
# Results of commits kept to answer a retry exactly (older ones come from the store),
# also at most MAX_QUOTE_LINES basket lines together.
# sale.list: most sales per answer, and most sales looked at per call while
# searching (the rest is reached with ``before``). A void is a refund with this
# reason, of this terminal's newest sale, within VOID_WINDOW_S of recording it.
SALE_LIST_MAX = 50
SALE_LIST_SCAN = 2000
VOID_REASON = "void"
VOID_WINDOW_S = 300.0
MEMBER_SEARCH_MAX = 20
PROFILE_SALES = 5
COMMITTED_KEEP_S = 600.0
MAX_COMMITTED = 1_000
# PIN attempts per staff id and badge taps: limits in agent.localapi.sessions.
STORAGE_MESSAGE = ("This could not be saved on the terminal (storage problem); nothing was "
                   "recorded. Please try again or call a technician.")


def _p(params: Mapping[str, Any], name: str, kind: type | tuple[type, ...], *,
       required: bool = True, default: Any = None) -> Any:
    """One parameter of the right type, or an invalid-params error naming it."""
    if name not in params or params[name] is None:
        if required:
            raise ApiError(INVALID_PARAMS, f"The parameter {name!r} is missing.", {"param": name})
        return default
    value = params[name]
    ints = kind is int or (isinstance(kind, tuple) and int in kind)
    if isinstance(value, bool) and ints and not (isinstance(kind, tuple) and bool in kind):
        raise ApiError(INVALID_PARAMS, f"The parameter {name!r} must be a whole number.",
                       {"param": name})
    if not isinstance(value, kind):
        raise ApiError(INVALID_PARAMS, f"The parameter {name!r} has the wrong type.",
                       {"param": name})
    return value


# Free text that may span lines (line feeds and tabs allowed).
_MULTILINE_PARAMS = ("note", "reason")
# Ids the agent issued or looks up before use, and the phone number (checked with
# its own, longer, card-number rule in tel_token): not scanned for card numbers,
# since a random id may hold digit groups.
_NO_CARD_SCAN = ("phone", "referred_by")
CARD_IN_TEXT = ("The {what} looks like it holds a bank card number; card numbers must not be "
                "written down here. Please remove it.")


def _text(params: Mapping[str, Any], name: str, *, required: bool = True, max_len: int = 200,
          default: str | None = None) -> str | None:
    """A text parameter, trimmed; refused when empty (if required), too long, holding
    control characters or direction overrides (a terminal would obey them; ``note``
    and ``reason`` may hold line feeds and tabs) or a bank card number."""
    value: str | None = _p(params, name, str, required=required, default=default)
    if value is None:
        return None
    value = value.strip()
    if required and not value:
        raise ApiError(INVALID_PARAMS, f"The parameter {name!r} is empty.", {"param": name})
    if len(value) > max_len:
        raise ApiError(INVALID_PARAMS, f"The parameter {name!r} is too long (at most {max_len}).",
                       {"param": name})
    bad = unsafe_char(value, multiline=name in _MULTILINE_PARAMS)
    if bad is not None:
        raise ApiError(INVALID_PARAMS, f"The parameter {name!r} holds a control character "
                       f"({describe(bad)}); please type plain text.",
                       {"param": name, "reason": "control_character"})
    if name not in _NO_CARD_SCAN and not name.endswith("_id") \
            and find_card_data(value) is not None:
        raise ApiError(INVALID_PARAMS, CARD_IN_TEXT.format(what=name.replace("_", " ")),
                       {"param": name, "reason": "card_number"})
    return value


def _amount(params: Mapping[str, Any], name: str = "amount", *, allow_zero: bool = False) -> int:
    value = _p(params, name, int)
    if value < 0 or (value == 0 and not allow_zero) or value > 10**12:
        raise ApiError(INVALID_PARAMS, f"The {name} must be a positive whole number of minor "
                       "units.", {"param": name})
    return int(value)


def _parse_time(value: Any, name: str) -> datetime:
    if not isinstance(value, str):
        raise ApiError(INVALID_PARAMS, f"The parameter {name!r} must be a time (RFC 3339).",
                       {"param": name})
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(INVALID_PARAMS, f"The parameter {name!r} is not a valid time.",
                       {"param": name}) from None
    if at.tzinfo is None:
        raise ApiError(INVALID_PARAMS, f"The time {name!r} needs an offset (e.g. +01:00).",
                       {"param": name})
    return at


def _parse_date(value: Any, name: str = "date") -> date:
    if not isinstance(value, str):
        raise ApiError(INVALID_PARAMS, f"The parameter {name!r} must be a date (YYYY-MM-DD).",
                       {"param": name})
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ApiError(INVALID_PARAMS, f"The parameter {name!r} is not a valid date.",
                       {"param": name}) from None


def _sentence(text: str) -> str:
    """A message as a sentence: capital first letter, full stop at the end."""
    text = text.strip()
    if text and text[0].islower():
        text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


_ASCII_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def code_token(text: str) -> str:
    """``code:`` + the scanned text, trimmed (protocol.md): ``agent.carddata.tokens``.

    Raises CardDataError for text a code may not hold (control characters, a bank
    card number or track data).
    """
    from agent.carddata import tokens

    return tokens.code_token(text)


def tel_token(phone: str, country: str) -> str:
    """``tel:`` + E.164 form (``agent.carddata.tokens``; a card number is refused)."""
    from agent.carddata import tokens

    return tokens.tel_token(phone, country)


CARD_AS_CODE = ("This looks like a bank card number; it cannot be used as a code. Tap or "
                "swipe the card instead.")
CARD_AS_PHONE = "This looks like a bank card number, not a phone number."
CARD_AS_IDENTIFIER = ("This looks like a bank card number; it cannot be used as an identifier. "
                 "Tap or swipe the card instead.")


def _checked_token(token: Any, param: str = "token") -> str:
    """An identifier token a client sends, refused when malformed or holding card data.

    ``pan:``/``nid:`` are keyed hashes; ``code:``, ``nfc:`` and ``tel:`` carry what
    was typed or read, so they are scanned for card numbers and track data.
    """
    from agent.carddata import tokens

    if not isinstance(token, str) or ":" not in token or len(token) > 600:
        raise ApiError(INVALID_PARAMS, "The token is not a valid identifier token.",
                       {"param": param})
    kind, _, rest = token.partition(":")
    if kind == "code":
        try:
            return code_token(rest)
        except ClubtermError as exc:  # CardDataError
            message = CARD_AS_CODE if str(exc) == tokens.CARD_IN_CODE_MESSAGE else \
                _sentence(f"The code cannot be used: {exc}")
            raise ApiError(INVALID_PARAMS, message, {"param": param}) from None
    try:
        tokens.token_kind(token)
    except ClubtermError:  # CardDataError
        raise ApiError(INVALID_PARAMS, "The token is not a valid identifier token.",
                       {"param": param}) from None
    if kind == "tel" and find_card_data(rest, min_digits=tokens.PHONE_CARD_MIN_DIGITS):
        raise ApiError(INVALID_PARAMS, CARD_AS_PHONE, {"param": param})
    if kind == "nfc" and find_card_data(rest):
        raise ApiError(INVALID_PARAMS, CARD_AS_IDENTIFIER, {"param": param})
    return token
# What a cashier reads when the store refuses a commit's redemption (LimitExceeded).
_FUNDS_MESSAGES = {
    "points_balance": "The member no longer has enough points; please compute the sale again.",
    "credit_balance": "The member no longer has enough credit; please compute the sale again.",
    "balance_bound": "The member's balance would become too large to record; please call a "
                     "technician.",
}


def _store_error(exc: ClubtermError) -> ApiError:
    """The API error for a store exception other than StorageError."""
    if isinstance(exc, LimitExceeded):  # Store.append(check_funds=True)
        return ApiError(LIMIT, _FUNDS_MESSAGES.get(exc.limit, _sentence(str(exc))),
                        {"limit": exc.limit})
    if isinstance(exc, QuoteAlreadyRecorded):
        return ApiError(CONFLICT, "This sale was already recorded.",
                        {"reason": "already_recorded", "sale_id": exc.sale_id})
    other_id = getattr(exc, "other_id", None)
    if other_id is not None:  # AppointmentConflict
        return ApiError(CONFLICT, "This overlaps another appointment of the same staff member.",
                        {"other_id": other_id, "appointment_id": other_id})
    if type(exc).__name__ == "AlreadyRefunded":
        return ApiError(CONFLICT, "This sale has already been refunded.")
    if isinstance(exc, LookupError):  # RecordNotFound
        return ApiError(NOT_FOUND, "That record does not exist (any more).")
    if isinstance(exc, ValueError):  # InvalidEvent
        return ApiError(INVALID_PARAMS, _sentence(f"This cannot be recorded: {exc}"))
    log.error("unexpected store error: %s", exc)
    return ApiError(STORAGE, STORAGE_MESSAGE, {"detail": str(exc)})


_TOO_LARGE = ("This sale is too large for the terminal (a total over 9,007,199,254,740,991 "
              "minor units); split it into several sales.")


def _within_bounds(value: Any) -> bool:
    """Every integer in a (quote) value within ±MAX_AMOUNT (JSON readers agree)."""
    todo = [value]
    while todo:
        item = todo.pop()
        if isinstance(item, int) and not isinstance(item, bool):
            if not -MAX_AMOUNT <= item <= MAX_AMOUNT:
                return False
        elif isinstance(item, Mapping):
            todo.extend(item.values())
        elif isinstance(item, list | tuple):
            todo.extend(item)
    return True


def _retrieve(task: asyncio.Task[Any]) -> None:
    """Mark a commit's failure as seen: every waiter may have hung up."""
    if not task.cancelled():
        task.exception()


@dataclass
class StoredQuote:
    """A quote waiting to be committed."""

    quote_id: str
    created: float
    quote: dict[str, Any]
    lines: list[dict[str, Any]]
    member: dict[str, Any] | None
    token: str | None
    masked: str | None
    # The connection that asked for it (the per-connection cap); any may commit it.
    conn_id: int | None = None


@dataclass
class AgentView:
    """What the services read about the running agent (filled in by the daemon)."""

    terminal_id: str
    merchant_id: str
    default_country_code: str = "1"
    bundle: Callable[[], Any] = lambda: None
    rules_problem: Callable[[], str | None] = lambda: None
    online: Callable[[], bool] = lambda: False
    link_since: Callable[[], datetime | None] = lambda: None
    readers: Callable[[], list[dict[str, Any]]] = lambda: []
    # Called after an event is durable, so the club link sends it soon.
    on_recorded: Callable[[], None] = lambda: None
    # Sends an ``event`` notification to every subscribed client.
    broadcast: Callable[[dict[str, Any]], None] = lambda _e: None
    started: float = field(default_factory=time.monotonic)


class Services:
    """Every local-API method; one instance per agent."""

    def __init__(self, view: AgentView, store: Any, db: DbThread, *,
                 quote_fn: QuoteFn = rules_quote,
                 sessions: SessionTable | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 monotonic: Callable[[], float] = time.monotonic,
                 quote_ttl_s: float = QUOTE_TTL_SECONDS, offline_only: bool = False):
        self.view = view
        # [terminal] offline_only: staff may be created here while a club list is in force.
        self.offline_only = offline_only
        self.store = store
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
        self._methods: dict[str, Callable[[dict[str, Any], Any], Any]] = {
            "agent.status": self.agent_status,
            "events.subscribe": self.events_subscribe,
            "member.identify": self.member_identify,
            "member.enrol": self.member_enrol,
            "sale.quote": self.sale_quote,
            "sale.commit": self.sale_commit,
            "sale.refund": self.sale_refund,
            "staff.login": self.staff_login,
            "staff.logout": self.staff_logout,
            "staff.clock": self.staff_clock,
            "staff.create": self.staff_create,
            "expense.add": self.expense_add,
            "cash_receipt.add": self.cash_receipt_add,
            "day.summary": self.day_summary,
            "appointment.create": self.appointment_create,
            "appointment.update": self.appointment_update,
            "appointment.cancel": self.appointment_cancel,
            "appointment.list": self.appointment_list,
            "sale.list": self.sale_list,
            "sale.void": self.sale_void,
            "member.search": self.member_search,
            "member.profile": self.member_profile,
            "member.card_link": self.member_card_link,
            "event.correct": self.event_correct,
            "day.close": self.day_close,
        }

    # ------------------------------------------------------------------ plumbing

    async def dispatch(self, method: str, params: dict[str, Any], conn: Any) -> Any:
        """Run one method (the server's :class:`Dispatcher`)."""
        handler = self._methods.get(method)
        if handler is None:
            raise ApiError(METHOD_NOT_FOUND, f"The agent does not know the method {method!r}.")
        if not self.accepting and method not in ("agent.status", "events.subscribe"):
            raise ApiError(NOT_ALLOWED, "The agent is shutting down; please try again in a moment.",
                           {"reason": "shutting_down"})
        return await handler(params, conn)

    def note_card(self, token: str, masked: str | None, bin6: str | None) -> None:
        """Remember the masked form and BIN of a token just read (for quotes/summaries)."""
        self._recent_cards[token] = (masked, bin6)
        self._recent_cards.move_to_end(token)
        while len(self._recent_cards) > 256:
            self._recent_cards.popitem(last=False)

    async def _record(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run a store call that records a fact; map its errors to API errors.

        Returns only after the store call returned, i.e. after the fact is durable.
        """
        try:
            result = await self.db.call(fn, *args, **kwargs)
        except StorageError as exc:
            log.error("could not record %s: %s", what, exc)
            raise ApiError(STORAGE, STORAGE_MESSAGE, {"detail": str(exc)}) from None
        except OSError as exc:  # a store that did not convert its own error
            log.error("could not record %s: %s", what, exc)
            raise ApiError(STORAGE, STORAGE_MESSAGE, {"detail": str(exc)}) from None
        except ClubtermError as exc:
            raise _store_error(exc) from None
        try:
            self.view.on_recorded()
            self.broadcast_queue(await self.db.read(self.store.outbox.queue_stats))
        except Exception:  # waking the link is best effort; the event is safe
            log.exception("could not wake the club link")
        return result

    async def _append(self, type_: str, body: dict[str, Any], staff_id: str | None) -> Any:
        """Record one outbox event durably (``Store.append``)."""
        return await self._record(f"a {type_}", self.store.outbox.append, type_, body,
                                  at=self.clock(), staff_id=staff_id,
                                  offline=not self.view.online())

    def _money_info(self, bundle: Any) -> dict[str, Any]:
        """Currency facts for clients that format money (None without a bundle)."""
        return {"currency": field_of(bundle, "currency") if bundle is not None else None,
                "minor_units": field_of(bundle, "minor_units") if bundle is not None else None,
                "timezone": str(self._tz())}

    def broadcast_queue(self, stats: Any) -> None:
        """Tell subscribers the outbox changed (``queue`` event)."""
        oldest = field_of(stats, "oldest_at")
        self.view.broadcast({"type": "queue", "pending": int(field_of(stats, "pending", 0)),
                             "oldest_at": _iso(oldest) if isinstance(oldest, datetime) else oldest,
                             "rejected": int(field_of(stats, "rejected", 0))})

    def _tz(self) -> tzinfo:
        bundle = self.view.bundle()
        name = field_of(bundle, "timezone") if bundle is not None else None
        if isinstance(name, str):
            try:
                return ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                log.warning("unknown time zone %r in the rule bundle", name)
        local = datetime.now().astimezone().tzinfo
        return local if local is not None else UTC

    def _day_bounds(self, day: date) -> tuple[datetime, datetime]:
        tz = self._tz()
        start = datetime.combine(day, datetime.min.time(), tzinfo=tz)
        end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=tz)
        return start, end

    def _today(self) -> date:
        return self.clock().astimezone(self._tz()).date()

    async def _summary(self, member: dict[str, Any], token: str | None) -> dict[str, Any]:
        balances = await self.db.read(self.store.members.usable_balances, member["member_id"])
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
        }

    async def member_summary(self, token: str) -> dict[str, Any] | None:
        """The summary of the member holding ``token`` (any status), or None."""
        member = await self.db.read(self.store.members.lookup, token)
        if member is None:
            return None
        return await self._summary(member, token)

    def _identifier_of(self, params: Mapping[str, Any]) -> str:
        token = params.get("token")
        phone = params.get("phone")
        code = params.get("code")
        given = [k for k, v in (("token", token), ("phone", phone), ("code", code)) if v]
        if len(given) != 1:
            raise ApiError(INVALID_PARAMS, "Give exactly one of token, phone or code.")
        if token is not None:
            return _checked_token(token)
        if phone is not None:
            if not isinstance(phone, str) or sum(c.isdigit() for c in phone) < 5:
                raise ApiError(INVALID_PARAMS, "That does not look like a phone number.",
                               {"param": "phone"})
            try:
                return tel_token(phone, self.view.default_country_code)
            except ClubtermError as exc:  # CardDataError
                from agent.carddata import tokens

                if str(exc) == tokens.CARD_IN_PHONE_MESSAGE:
                    raise ApiError(INVALID_PARAMS, CARD_AS_PHONE, {"param": "phone"}) from None
                raise ApiError(INVALID_PARAMS, f"That phone number cannot be used: {exc}",
                               {"param": "phone"}) from None
        if not isinstance(code, str) or not code.strip() or len(code) > 500:
            raise ApiError(INVALID_PARAMS, "The code is empty or too long.", {"param": "code"})
        return _checked_token("code:" + code.strip(), "code")

    async def _code_as_stored(self, token: str) -> str:
        """A ``code:`` token as the club stores it (#15 item 13): codes are matched
        case-insensitively, the club keeps them upper-cased. The exact token wins
        (QR and GS1 payloads are case-sensitive), else its ASCII upper-case form."""
        upper = "code:" + token[5:].translate(_ASCII_UPPER)
        if upper == token or await self.db.read(self.store.members.lookup, token) is not None:
            return token
        return upper

    async def _member_for(self, token: str) -> dict[str, Any]:
        member = await self.db.read(self.store.members.lookup, token)
        if member is None:
            raise ApiError(UNKNOWN_MEMBER, "No member is registered with this card or number.")
        if member.get("status") != "active":
            summary = await self._summary(member, token)
            what = "lost" if member.get("status") == "lost_card" else "blocked"
            raise ApiError(MEMBER_NOT_ACTIVE,
                           f"This member's card is {what}; no club benefits can be given.",
                           {"member_id": member["member_id"], "status": member.get("status"),
                            "member": summary})
        return dict(member)

    # ------------------------------------------------------------------ methods

    async def agent_status(self, params: dict[str, Any], conn: Any) -> dict[str, Any]:
        """``agent.status``."""
        bundle = self.view.bundle()
        stats = await self.db.read(self.store.outbox.queue_stats)
        members_version = await self.db.read(self.store.members.members_version)
        oldest = field_of(stats, "oldest_at")
        return {
            "terminal_id": self.view.terminal_id,
            "merchant_id": self.view.merchant_id,
            "online": bool(self.view.online()),
            "rules_version": field_of(bundle, "version") if bundle is not None else None,
            "rules_problem": self.view.rules_problem(),
            "members_version": members_version,
            "queue": {
                "pending": int(field_of(stats, "pending", 0)),
                "oldest_at": _iso(oldest) if isinstance(oldest, datetime) else oldest,
                "rejected": int(field_of(stats, "rejected", 0)),
            },
            "readers": [
                {"name": r.get("name"), "kind": r.get("kind"), "state": r.get("state")}
                for r in self.view.readers()
            ],
            "agent_version": __version__,
            "link_since": _iso(self.view.link_since()),
            **self._money_info(bundle),
            "uptime_s": round(time.monotonic() - self.view.started, 1),
        }

    async def events_subscribe(self, params: dict[str, Any], conn: Any) -> bool:
        """``events.subscribe``: this connection gets ``event`` notifications from now on."""
        conn.subscribed = True
        return True

    async def member_identify(self, params: dict[str, Any], conn: Any) -> dict[str, Any]:
        """``member.identify`` by token, phone or code."""
        token = self._identifier_of(params)
        if token.startswith("code:"):
            token = await self._code_as_stored(token)
        member = await self._member_for(token)
        # The token too: a phone or code becomes a token only here, and the client
        # quotes with it.
        return {**(await self._summary(member, token)), "token": token}

    async def staff_login(self, params: dict[str, Any], conn: Any) -> dict[str, Any]:
        """``staff.login`` with a badge tap reference, or staff_id and PIN."""
        staff, _tap = await self._staff_from(params, need_pin=True)
        granted = _granted(staff)
        session = self.sessions.open(staff["staff_id"], staff.get("name") or "", staff["role"],
                                     granted)
        log.info("staff %s signed in as %s", session.staff_id, session.role)
        return {"session": session.token, "staff_id": session.staff_id, "name": session.name,
                "role": session.role, "groups": list(staff.get("groups") or [staff["role"]]),
                "permissions": perm.as_table(granted), "idle_s": self.sessions.idle_s,
                "max_s": self.sessions.max_s}

    async def _session(self, params: Mapping[str, Any], need: str) -> Session:
        """The caller's live session if its staff member may ``need`` (a permission).

        The staff member is read again on every use: whoever the club's staff list
        (or a technician) removed or deactivated is signed out at once, and changed
        groups count from the next call.
        """
        session = self.sessions.check(params.get("session"))
        staff = await self.db.read(self.store.records.staff, session.staff_id)
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

    async def staff_create(self, params: dict[str, Any], conn: Any) -> dict[str, Any]:
        """``staff.create`` (extension): a manager adds a local staff member.

        Recorded with a ``staff_change`` event so the club learns of it. Refused
        while the club's staff list is in force, unless ``[terminal] offline_only``.
        """
        session = await self._session(params, perm.STAFF_ADD)
        staff_id = _text(params, "staff_id", max_len=32) or ""
        if any(ch.isspace() for ch in staff_id):
            raise ApiError(INVALID_PARAMS, "The staff id must not contain spaces.",
                           {"param": "staff_id"})
        name = _text(params, "name", max_len=100) or ""
        role = _p(params, "role", str, required=False, default="cashier")
        if role not in perm.ROLES:
            raise ApiError(INVALID_PARAMS, f"The role must be one of {', '.join(perm.ROLES)}.",
                           {"param": "role"})
        pin = params.get("pin")
        if pin is not None and (not isinstance(pin, str) or not pin.isascii()
                                or not pin.isdigit() or not 4 <= len(pin) <= 12):
            raise ApiError(INVALID_PARAMS, "The PIN must be 4 to 12 digits.", {"param": "pin"})
        raw_badges = params.get("badges", [])
        if not isinstance(raw_badges, list) or len(raw_badges) > 16:
            raise ApiError(INVALID_PARAMS, "Badges must be a list of at most 16 badge tokens.",
                           {"param": "badges"})
        badges: list[str] = []
        for item in raw_badges:
            try:
                badges.append(check_badge(item, "badge"))
            except ClubtermError:
                raise ApiError(INVALID_PARAMS, "A badge is not a badge token (tap the badge "
                               "on the reader and use the token shown).",
                               {"param": "badges"}) from None
        if pin is None and not badges:
            raise ApiError(INVALID_PARAMS, "Give a PIN or a badge, or the person could not "
                           "sign in.", {"param": "pin"})
        try:
            staff, stored = await self.db.call(
                self.store.records.create_local_staff, staff_id, name, role, pin=pin,
                badges=list(dict.fromkeys(badges)), by=session.staff_id, at=self.clock(),
                offline=not self.view.online(), offline_only=self.offline_only)
        except StaffManagedByClub as exc:
            raise ApiError(NOT_ALLOWED, _sentence(str(exc)),
                           {"reason": "club_manages_staff"}) from None
        except ValueError as exc:
            raise ApiError(CONFLICT, _sentence(str(exc))) from None
        except StorageError as exc:
            log.error("could not record a staff member: %s", exc)
            raise ApiError(STORAGE, STORAGE_MESSAGE, {"detail": str(exc)}) from None
        log.info("staff %s created staff member %s (%s)", session.staff_id, staff_id, role)
        self.view.on_recorded()
        return {"staff_id": staff["staff_id"], "name": staff["name"], "role": staff["role"],
                "permissions": perm.as_table(_granted(staff)),
                "event_id": field_of(stored, "id")}

    async def staff_logout(self, params: dict[str, Any], conn: Any) -> bool:
        """``staff.logout`` (extension): end a session."""
        token = _p(params, "session", str)
        return self.sessions.close(token)

    async def badge_tapped(self, token: str, reader: str) -> dict[str, Any] | None:
        """The ``card`` event for a staff badge read on this terminal, or None if
        ``token`` is no active staff member's badge.

        The event carries a fresh single-use tap reference in ``token``, never the
        badge token itself: every subscriber sees it. Raises ClubtermError if the
        store cannot say (the caller must then not broadcast the token either).
        """
        staff = await self.db.read(self.store.records.staff_by_badge, token)
        if staff is None:
            return None
        tap = self.taps.issue(staff["staff_id"], token, reader, self.monotonic())
        return {"type": "card", "kind": "staff_badge", "reader": reader, "token": tap.ref,
                "token_kind": "tap", "expires_s": self.taps.ttl_s, "masked": None,
                "info": None, "member": None,
                "staff": {"staff_id": staff["staff_id"], "name": staff.get("name")}}

    @contextlib.asynccontextmanager
    async def _pin_lock(self, staff_id: str) -> AsyncIterator[None]:
        """Serialise PIN checks of one staff id; the entry goes when nobody holds it."""
        lock, holders = self._pin_locks.setdefault(staff_id, (asyncio.Lock(), [0]))
        holders[0] += 1
        try:
            async with lock:
                yield
        finally:
            holders[0] -= 1
            if holders[0] == 0:
                self._pin_locks.pop(staff_id, None)

    async def _staff_from(self, params: Mapping[str, Any], *, need_pin: bool
                          ) -> tuple[dict[str, Any], BadgeTap | None]:
        token = params.get("token")
        staff_id = params.get("staff_id")
        if token is not None:
            if not isinstance(token, str) or not token or len(token) > 200:
                raise ApiError(INVALID_PARAMS, "The badge token is not valid.", {"param": "token"})
            # Only a reference the agent handed out for a tap on its own reader, once,
            # within seconds: a badge token alone (seen, logged, copied) is no credential.
            tap = self.taps.take(token, self.monotonic())
            staff = await self.db.read(self.store.records.staff, tap.staff_id)
            if staff is None or not staff.get("active", True) or \
                    tap.badge not in (staff.get("badges") or []):
                raise ApiError(NOT_FOUND, "This badge does not belong to any staff member.")
            return dict(staff), tap
        if staff_id is None:
            raise ApiError(INVALID_PARAMS, "Give a badge token, or a staff id and PIN.")
        if not isinstance(staff_id, str) or not staff_id or len(staff_id) > 200:
            raise ApiError(INVALID_PARAMS, "The staff id is not valid.", {"param": "staff_id"})
        pin = params.get("pin")
        if pin is None and not need_pin:
            # Only a manager's correction (checked by the caller) gets here.
            staff = await self.db.read(self.store.records.staff, staff_id)
            if staff is None or not staff.get("active", True):
                raise ApiError(NOT_FOUND, "There is no staff member with this id.")
            return dict(staff), None
        if not isinstance(pin, str) or not pin or len(pin) > 64:
            raise ApiError(INVALID_PARAMS, "Please enter your PIN.", {"param": "pin"})
        # Counted before the check: concurrent guesses cannot all pass the limit.
        self.pin_attempts.reserve(staff_id, self.monotonic())
        async with self._pin_lock(staff_id):
            # scrypt takes tens of milliseconds: not on the store thread, where it would
            # hold up sales, and not on the loop. An unknown id is hashed as long
            # (against a dummy), so the answer's time does not tell which ids exist.
            ok = await asyncio.to_thread(self.store.records.verify_staff_pin, staff_id, pin)
            staff = await self.db.read(self.store.records.staff, staff_id) if ok else None
        if staff is None or not staff.get("active", True):
            # Same answer for an unknown id and a wrong PIN: no guessing of ids.
            raise ApiError(NOT_ALLOWED, "The staff id or PIN is not right.",
                           {"reason": "bad_credentials"})
        self.pin_attempts.succeeded(staff_id)
        return dict(staff), None

    async def staff_clock(self, params: dict[str, Any], conn: Any) -> dict[str, Any]:
        """``staff.clock``: record an attendance event."""
        action = _p(params, "action", str)
        if action not in ("in", "out"):
            raise ApiError(INVALID_PARAMS, 'The action must be "in" or "out".',
                           {"param": "action"})
        # Clocking needs the person: their badge tap or their PIN. Without either,
        # only a manager's correction with a reason (recorded as such) is taken.
        correction: tuple[str, str] | None = None
        if params.get("token") is None and params.get("pin") is None:
            if params.get("session") is None:
                raise ApiError(INVALID_PARAMS, "Tap your badge or enter your PIN to clock "
                               "in or out.", {"param": "pin", "reason": "pin_or_badge"})
            session = await self._session(params, perm.CLOCK_OTHERS)
            reason = _text(params, "reason", required=False, max_len=200)
            if not reason or not reason.strip():
                raise ApiError(INVALID_PARAMS, "A manager's correction needs a reason.",
                               {"param": "reason"})
            correction = (session.staff_id, reason.strip())
        staff, tap = await self._staff_from(params, need_pin=correction is None)
        try:
            if perm.CLOCK not in _granted(staff):
                raise ApiError(NOT_ALLOWED, f"{staff.get('name') or staff['staff_id']} may not "
                               "clock in or out at this terminal.",
                               {"reason": "role", "permission": perm.CLOCK})
            return await self._clock(staff, action, tap, correction)
        except ApiError:
            # Nothing was recorded (already in, storage): the tap may still be used
            # once, e.g. for "out" after "in" was refused, until it expires.
            if tap is not None:
                self.taps.give_back(tap, self.monotonic())
            raise

    async def _clock(self, staff: Mapping[str, Any], action: str, tap: BadgeTap | None,
                     correction: tuple[str, str] | None = None) -> dict[str, Any]:
        events, end = await self._day_events(self._today())
        rows = _attendance_rows(events, {}, self.clock(), end)
        present = {r["staff_id"] for r in rows if r["present"]}
        name = staff.get("name") or staff["staff_id"]
        if action == "in" and staff["staff_id"] in present:
            raise ApiError(CONFLICT, f"{name} is already clocked in.")
        if action == "out" and staff["staff_id"] not in present:
            raise ApiError(CONFLICT, f"{name} is not clocked in.")
        # identified_by is the badge token itself: it goes to the club in the event,
        # never to the local API's subscribers.
        extra = ({"corrected_by": correction[0], "reason": correction[1]}
                 if correction is not None else {})
        stored = await self._record("an attendance", self.store.records.clock_staff,
                                    staff["staff_id"],
                                    action, at=self.clock(),
                                    by=correction[0] if correction else staff["staff_id"],
                                    identified_by=tap.badge if tap is not None else None,
                                    offline=not self.view.online(), **extra)
        at = field_of(stored, "at") or self.clock()
        at_s = _iso(at) if isinstance(at, datetime) else at
        self.view.broadcast({"type": "attendance", "staff_id": staff["staff_id"],
                             "name": name, "action": action, "at": at_s, **extra})
        return {"event_id": field_of(stored, "id"), "at": at_s, "staff_id": staff["staff_id"],
                "name": name, **extra}

    async def _money_event(self, type_: str, params: dict[str, Any]) -> dict[str, Any]:
        session = await self._session(params, perm.EXPENSE if type_ == "expense"
                                      else perm.CASH_RECEIPT)
        amount = _amount(params)
        category = _text(params, "category", max_len=64)
        note = _text(params, "note", required=False, max_len=500, default="") or ""
        stored = await self._record(f"an {type_}", self.store.records.add_cash_entry, type_, amount,
                                    category, note, by=session.staff_id, at=self.clock(),
                                    offline=not self.view.online())
        return {"event_id": field_of(stored, "id")}

    async def expense_add(self, params: dict[str, Any], conn: Any) -> dict[str, Any]:
        """``expense.add`` (cashier or manager)."""
        return await self._money_event("expense", params)

    async def cash_receipt_add(self, params: dict[str, Any], conn: Any) -> dict[str, Any]:
        """``cash_receipt.add`` (cashier or manager)."""
        return await self._money_event("cash_receipt", params)

    # ------------------------------------------------------------------ sales

    def _lines(self, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        if params.get("lines") is not None and params.get("amount") is not None:
            raise ApiError(INVALID_PARAMS, "Give either lines or amount, not both.")
        if params.get("amount") is not None:
            return [{"sku": None, "category": None, "qty": 1, "unit_price": _amount(params)}]
        raw = params.get("lines")
        if not isinstance(raw, list) or not raw:
            raise ApiError(INVALID_PARAMS, "Give the basket lines or an amount.",
                           {"param": "lines"})
        if len(raw) > 500:
            raise ApiError(INVALID_PARAMS, "A sale may have at most 500 lines.", {"param": "lines"})
        lines = []
        total = 0
        for i, line in enumerate(raw):
            if not isinstance(line, dict):
                raise ApiError(INVALID_PARAMS, f"Basket line {i + 1} is not an object.",
                               {"param": "lines"})
            qty = line.get("qty", 1)
            price = line.get("unit_price")
            if (isinstance(qty, bool) or not isinstance(qty, int) or not 1 <= qty <= 100000
                    or isinstance(price, bool) or not isinstance(price, int)
                    or not 0 <= price <= 10**12):
                raise ApiError(INVALID_PARAMS, f"Basket line {i + 1} needs a whole quantity and "
                               "a unit price in minor units.", {"param": "lines", "line": i})
            sku, category = line.get("sku"), line.get("category")
            if not (sku is None or isinstance(sku, str)) or not (
                    category is None or isinstance(category, str)):
                raise ApiError(INVALID_PARAMS, f"Basket line {i + 1}: sku and category must be "
                               "text.", {"param": "lines", "line": i})
            if len(sku or "") > MAX_LINE_TEXT or len(category or "") > MAX_LINE_TEXT:
                raise ApiError(INVALID_PARAMS, f"Basket line {i + 1}: sku and category may have "
                               f"at most {MAX_LINE_TEXT} characters.",
                               {"param": "lines", "line": i, "max_chars": MAX_LINE_TEXT})
            lines.append({"sku": sku, "category": category, "qty": qty, "unit_price": price})
            total += qty * price
        if total > MAX_AMOUNT:
            raise ApiError(INVALID_PARAMS, _TOO_LARGE, {"param": "lines",
                                                        "reason": "amount_too_large",
                                                        "max": MAX_AMOUNT})
        return lines

    def _purge_quotes(self) -> None:
        """Forget expired quotes and old commit results (a quote being committed
        is held by its commit, not by this table)."""
        now = self.monotonic()
        while self._quotes:
            first = next(iter(self._quotes.values()))
            if now - first.created <= self.quote_ttl_s:
                break
            self._quotes.popitem(last=False)
        lines = sum(len(r["receipt"]["lines"] or ()) for _, r in self._committed.values())
        while self._committed:
            at, oldest = next(iter(self._committed.values()))
            if now - at <= COMMITTED_KEEP_S and len(self._committed) <= MAX_COMMITTED \
                    and lines <= MAX_QUOTE_LINES:
                break
            lines -= len(oldest["receipt"]["lines"] or ())
            self._committed.popitem(last=False)

    def _keep_quote(self, stored: StoredQuote) -> None:
        """Hold a new quote within the caps (see the constants at the top)."""
        self._purge_quotes()
        if stored.conn_id is not None:
            mine = [q.quote_id for q in self._quotes.values() if q.conn_id == stored.conn_id]
            # A till re-quotes as the basket changes: its oldest quotes are stale.
            for quote_id in mine[:max(0, len(mine) - MAX_QUOTES_PER_CONNECTION + 1)]:
                del self._quotes[quote_id]
        held = sum(len(q.lines) for q in self._quotes.values())
        if len(self._quotes) >= MAX_QUOTES or held + len(stored.lines) > MAX_QUOTE_LINES:
            raise ApiError(LIMIT, "The terminal holds too many open prices; please try again "
                           "in a minute.", {"limit": "open_quotes", "max_quotes": MAX_QUOTES,
                                            "max_lines": MAX_QUOTE_LINES})
        self._quotes[stored.quote_id] = stored

    async def sale_quote(self, params: dict[str, Any], conn: Any) -> dict[str, Any]:
        """``sale.quote``: compute the benefit; keep it 120 s under a ``quote_id``."""
        lines = self._lines(params)
        token = params.get("token")
        if token is not None and (not isinstance(token, str) or ":" not in token
                                  or len(token) > 600):
            raise ApiError(INVALID_PARAMS, "The token is not a valid identifier token.",
                           {"param": "token"})
        if token is not None and token.partition(":")[0] in ("code", "nfc", "tel") \
                and find_card_data(token.partition(":")[2]):
            # A card number typed or scanned as a code never reaches a quote (or
            # the sale event the quote becomes).
            raise ApiError(INVALID_PARAMS, CARD_AS_IDENTIFIER, {"param": "token"})
        redeem = params.get("redeem_points")
        if redeem == 0:
            redeem = None
        if redeem is not None and redeem != "max" and (
                isinstance(redeem, bool) or not isinstance(redeem, int) or redeem < 0):
            raise ApiError(INVALID_PARAMS, 'redeem_points must be a whole number or "max".',
                           {"param": "redeem_points"})
        use_credit = params.get("use_credit") or []
        if not isinstance(use_credit, list) or not all(isinstance(k, str) for k in use_credit):
            raise ApiError(INVALID_PARAMS, "use_credit must be a list of balance kinds.",
                           {"param": "use_credit"})
        member = await self._member_for(token) if token else None
        if member is None and (redeem or use_credit):
            raise ApiError(LIMIT, "Points and credit can only be used by an identified member.",
                           {"limit": "member"})
        quote, member_view, limits = await self._compute(lines, token, member, redeem,
                                                         use_credit, **_promotion_params(params))
        if not _within_bounds(quote):
            raise ApiError(INVALID_PARAMS, _TOO_LARGE, {"param": "lines",
                                                        "reason": "amount_too_large",
                                                        "max": MAX_AMOUNT})
        quote_id = "q-" + uuid.uuid4().hex
        masked = self._recent_cards.get(token, (None, None))[0] if token else None
        self._keep_quote(StoredQuote(quote_id, self.monotonic(), quote, lines, member_view,
                                     token, masked, getattr(conn, "id", None)))
        result = dict(quote)
        result.pop("limits_held", None)
        bundle = self.view.bundle()
        result.update({
            "quote_id": quote_id,
            "expires_at": _iso(self.clock() + timedelta(seconds=self.quote_ttl_s)),
            "lines": lines,
            "offline": not self.view.online(),
            "member": (self._summary_from(member_view, token)
                       if member_view is not None else None),
            "redeem_limits": limits,
            "currency": field_of(bundle, "currency") if bundle is not None else None,
            "minor_units": field_of(bundle, "minor_units") if bundle is not None else None,
        })
        return result

    async def _compute(self, lines: list[dict[str, Any]], token: str | None,
                       member: dict[str, Any] | None, redeem: Any, use_credit: list[str],
                       codes: Sequence[str] = (), rewards: Sequence[str] = (),
                       ) -> tuple[dict[str, Any], dict[str, Any] | None, dict[str, Any]]:
        bundle = self.view.bundle()
        promo = await self._promotion_counts(bundle, member)
        now = self.clock()
        start, end = self._day_bounds(now.astimezone(self._tz()).date())
        member_id = member["member_id"] if member is not None else None

        def inputs() -> tuple[Any, dict[str, int] | None, tuple[int, int]]:
            # One hop to the store thread for everything a quote reads.
            stats = self.store.outbox.queue_stats()
            if member_id is None:
                return stats, None, (0, 0)
            return (stats, self.store.members.usable_balances(member_id),
                    self.store.members.offline_counters(member_id, start, end))

        stats, balances, (redeemed_today, credit_today) = await self.db.read(inputs)
        oldest = field_of(stats, "oldest_at")
        if isinstance(oldest, str):
            oldest = datetime.fromisoformat(oldest.replace("Z", "+00:00"))
        oldest_age = (now - oldest).total_seconds() if isinstance(oldest, datetime) else None
        member_view = None
        if member is not None and balances is not None:
            member_view = dict(member)
            member_view["balances"] = dict(balances)
        bin6 = self._recent_cards.get(token, (None, None))[1] if token else None
        request = {"lines": lines, "token_kind": token.split(":", 1)[0] if token else None,
                   "bin6": bin6, "redeem_points": redeem, "use_credit": use_credit}
        ctx = {"at": now, "offline": not self.view.online(), "redeemed_today": redeemed_today,
               "credit_used_today": credit_today,
               "pending_count": int(field_of(stats, "pending", 0)),
               "oldest_pending_age_s": oldest_age, **promo}
        if codes or rewards:
            request.update({"codes": list(codes), "rewards": list(rewards)})
        try:
            quote = self.quote_fn(bundle, request, member_view, ctx)
        except LimitExceeded as exc:
            raise ApiError(LIMIT, _sentence(str(exc)), {"limit": exc.limit}) from None
        except RulesError as exc:
            raise ApiError(INVALID_PARAMS, _sentence(f"This sale cannot be computed: {exc}")) \
                from None
        limits = self._redeem_limits(bundle, request, member_view, ctx, quote)
        return quote, member_view, limits

    async def _promotion_counts(self, bundle: Any, member: dict[str, Any] | None,
                                ) -> dict[str, Any]:
        """Issue 21: the store's counts for limits, budgets, codes and coupons, only
        when a rule reads them; and a seed for coupon codes (unique per quote)."""
        if bundle is None or not getattr(bundle, "needs_counts", False):
            return {}
        member_id = member["member_id"] if member is not None else None
        counts: dict[str, Any] = await self.db.read(self.store.outbox.promotion_counts, member_id,
                                                    self._tz())
        counts["coupon_seed"] = uuid.uuid4().hex
        return counts

    def _redeem_limits(self, bundle: Any, request: dict[str, Any],
                       member: dict[str, Any] | None, ctx: dict[str, Any],
                       quote: dict[str, Any]) -> dict[str, Any]:
        """How much this member could redeem on this basket (for the till's buttons).

        The maximum comes from the rules engine itself (a second quote asking
        for "max"), so the button never offers what a commit would refuse.
        """
        if member is None:
            return {"points": None, "credits": [], "held_by": "no member"}
        balances = member["balances"]
        try:
            best = self.quote_fn(bundle, {**request, "redeem_points": "max", "use_credit": []},
                                 member, ctx)
            points_max = int(best.get("redeemed_points") or 0)
            held = best.get("limits_held") or []
        except RulesError:
            points_max, held = 0, []
        points_cfg = field_of(bundle, "points") if bundle is not None else None
        credits_cfg = field_of(bundle, "credits") if bundle is not None else None
        credits = []
        for kind in (field_of(credits_cfg, "accepted", ()) or ()):
            available = int(balances.get(kind, 0))
            if available > 0:
                # Also by the engine, after the points asked for (#15 item 5: the
                # offline day limit, the caps and redeemed points shrink it), and
                # with the limit that held it back.
                try:
                    trial = self.quote_fn(bundle, {**request, "use_credit": [kind]}, member, ctx)
                except RulesError:
                    trial = {}
                usable = sum(int(c.get("amount") or 0) for c in trial.get("credits_used") or []
                             if c.get("kind") == kind)
                why = next((x.get("limit") for x in trial.get("explain") or []
                            if x.get("step") == "credit" and x.get("credit_kind") == kind), None)
                credits.append({"kind": kind, "available": available, "max": usable,
                                "held_by": None if why in (None, "balance") else why})
        return {
            "points": {"available": int(balances.get("points", 0)),
                       "min": int(field_of(points_cfg, "min_redeem", 0) or 0),
                       "max": points_max,
                       "value": int(field_of(points_cfg, "value", 0) or 0)},
            "credits": credits,
            "held_by": held[0] if held else ("balance" if points_max else None),
        }

    async def sale_commit(self, params: dict[str, Any], conn: Any) -> dict[str, Any]:
        """``sale.commit``: record the quoted sale; answer once it is durable.

        A quote is committed at most once. Committing the same ``quote_id`` again
        answers the first result: while the first commit is being written the
        retry waits for it (on any connection); afterwards it is answered from
        memory, and after an agent restart from the sale event (which keeps the
        ``quote_id``, found through an index). A failed commit (storage, balance)
        leaves the quote usable; a retry waiting for it gets the same error.
        """
        quote_id = _p(params, "quote_id", str)
        session = await self._session(params, perm.SELL)
        payment = _p(params, "payment", str, required=False, default="cash")
        if payment not in PAYMENTS:
            raise ApiError(INVALID_PARAMS, f"The payment must be one of {', '.join(PAYMENTS)}.",
                           {"param": "payment"})
        # From here to the task being registered nothing awaits: two commits of one
        # quote cannot both find it free.
        self._purge_quotes()
        done = self._committed.get(quote_id)
        if done is not None:
            return done[1]
        running = self._commits.get(quote_id)
        if running is None:
            stored_quote = self._quotes.get(quote_id)
            if stored_quote is None or self.monotonic() - stored_quote.created > self.quote_ttl_s:
                self._quotes.pop(quote_id, None)
                earlier = await self._find_committed(quote_id) if len(quote_id) <= 64 else None
                if earlier is not None:
                    return earlier
                raise ApiError(QUOTE_EXPIRED, "This price is no longer valid (older than 2 "
                               "minutes). Please compute the sale again.")
            running = asyncio.ensure_future(self._commit_once(stored_quote, payment, session))
            self._commits[quote_id] = running
            running.add_done_callback(_retrieve)
        # Shielded: a client hanging up does not stop the commit; its retry gets it.
        return await asyncio.shield(running)

    async def _commit_once(self, stored_quote: StoredQuote, payment: str,
                           session: Any) -> dict[str, Any]:
        """Record the sale of one quote (the only commit of it running)."""
        quote_id = stored_quote.quote_id
        try:
            return await self._write_sale(stored_quote, payment, session)
        finally:
            if self._commits.get(quote_id) is asyncio.current_task():
                del self._commits[quote_id]

    async def _write_sale(self, stored_quote: StoredQuote, payment: str,
                          session: Any) -> dict[str, Any]:
        quote_id = stored_quote.quote_id
        quote = stored_quote.quote
        member = stored_quote.member
        body: dict[str, Any] = {
            "member_id": member["member_id"] if member else None,
            "identified_by": stored_quote.token,
            "lines": stored_quote.lines,
        }
        body.update({k: quote.get(k) for k in SALE_KEYS})
        body.update({k: quote[k] for k in PROMOTION_KEYS if quote.get(k)})
        body["payment"] = payment
        # Not a protocol key (the club ignores unknown keys): it makes a retried
        # commit idempotent across an agent restart (an indexed column in the store).
        body["quote_id"] = quote_id
        try:
            # check_funds: the store re-reads the usable balances inside the write
            # transaction and refuses a redemption that no longer fits (another
            # till spent the points meanwhile): check and append are one step.
            stored = await self._record("a sale", self.store.outbox.append, "sale", body,
                                        at=self.clock(), staff_id=session.staff_id,
                                        offline=not self.view.online(),
                                        check_funds=member is not None)
        except ApiError as exc:
            if isinstance(exc.data, dict) and exc.data.get("reason") == "already_recorded":
                # Recorded by an earlier agent run: answer that sale.
                earlier = await self._find_committed(quote_id)
                if earlier is not None:
                    self._quotes.pop(quote_id, None)
                    return earlier
            raise  # nothing recorded; the quote stays usable
        self._quotes.pop(quote_id, None)
        summary = (await self._summary(member, stored_quote.token)) if member else None
        at = field_of(stored, "at") or self.clock()
        labels = {x.get("rule"): x.get("label") or x.get("rule")
                  for x in quote.get("explain") or [] if x.get("rule")}
        bundle = self.view.bundle()
        receipt = {
            "sale_id": field_of(stored, "id"),
            "seq": field_of(stored, "seq"),
            "at": _iso(at) if isinstance(at, datetime) else at,
            "terminal_id": self.view.terminal_id,
            "merchant_id": self.view.merchant_id,
            "staff_id": session.staff_id,
            "staff_name": session.name,
            "offline": not self.view.online(),
            "member": summary,
            "lines": stored_quote.lines,
            "gross": quote.get("gross"),
            "discounts": [{**d, "label": labels.get(d.get("rule"), d.get("rule"))}
                          for d in quote.get("discounts") or []],
            "net": quote.get("net"),
            "redeemed_points": quote.get("redeemed_points"),
            "redeemed_value": quote.get("redeemed_value"),
            "credits_used": quote.get("credits_used"),
            "payable": quote.get("payable"),
            "payment": payment,
            "points_earned": sum(int(p.get("points", 0))
                                 for p in quote.get("points_earned") or []),
            "credits_earned": quote.get("credits_earned"),
            "lottery_entries": quote.get("lottery_entries"),
            "rules_version": quote.get("rules_version"),
            # Issue 21: vouchers to print (coupons_issued), rewards, fees … when present.
            **{k: quote[k] for k in PROMOTION_KEYS if quote.get(k)},
            "balances_after": summary["balances"] if summary else None,
            "currency": field_of(bundle, "currency") if bundle is not None else None,
            "minor_units": field_of(bundle, "minor_units") if bundle is not None else None,
        }
        result = {"sale_id": receipt["sale_id"], "seq": receipt["seq"], "receipt": receipt}
        self._committed[quote_id] = (self.monotonic(), result)
        self._purge_quotes()
        self.view.broadcast({"type": "sale", "sale_id": receipt["sale_id"], "seq": receipt["seq"],
                             "member_id": body["member_id"], "payable": body["payable"],
                             "staff_id": session.staff_id})
        return result

    async def _find_committed(self, quote_id: str) -> dict[str, Any] | None:
        """The sale recorded for ``quote_id`` before a restart, as a commit result
        (``Store.sale_for_quote``: one index probe, however long the outbox)."""
        entry = await self.db.read(self.store.outbox.sale_for_quote, quote_id)
        if entry is None:
            return None
        event = dict(field_of(entry, "event"))
        receipt = {k: event.get(k) for k in (*SALE_KEYS, "member_id", "lines", "payment")}
        receipt.update({"sale_id": event["id"], "seq": event["seq"], "at": event.get("at"),
                        "terminal_id": self.view.terminal_id,
                        "merchant_id": self.view.merchant_id,
                        "staff_id": event.get("staff_id"), "restored": True})
        return {"sale_id": event["id"], "seq": event["seq"], "receipt": receipt}

    async def sale_refund(self, params: dict[str, Any], conn: Any) -> dict[str, Any]:
        """``sale.refund`` (manager): record a refund of a sale this terminal holds."""
        session = await self._session(params, perm.REFUND)
        sale_id = _text(params, "sale_id", max_len=64)
        reason = _text(params, "reason", max_len=500)
        entry = await self.db.read(self.store.outbox.event, sale_id)
        if entry is None or entry.type != "sale":
            raise ApiError(NOT_FOUND, "There is no such sale on this terminal.")
        stored = await self._append("refund", {"sale_id": sale_id, "reason": reason},
                                    session.staff_id)
        return {"refund_id": field_of(stored, "id")}

    # ------------------------------------------------------------------ members

    async def member_enrol(self, params: dict[str, Any], conn: Any) -> dict[str, Any]:
        """``member.enrol``: a new member ``local:<uuid>`` until the club answers."""
        session = await self._session(params, perm.ENROL)
        name = _text(params, "name", max_len=100)
        phone = _text(params, "phone", max_len=40)
        assert phone is not None
        tel = self._identifier_of({"phone": phone})
        identifiers = [tel]
        token = params.get("token")
        if token is not None:
            identifiers.append(_checked_token(token))
        for ident in identifiers:
            holder = await self.db.read(self.store.members.lookup, ident)
            if holder is not None:
                what = "phone number" if ident.startswith("tel:") else "card"
                raise ApiError(CONFLICT, f"This {what} already belongs to {holder.get('name')}.",
                               {"member_id": holder.get("member_id"),
                                "identifier_kind": ident.split(":", 1)[0]})
        referred_by = _text(params, "referred_by", required=False, max_len=100)
        if referred_by and referred_by.startswith("local:"):
            # A member enrolled here: "local:" and a UUID, nothing else is kept.
            try:
                uuid.UUID(referred_by.removeprefix("local:"))
            except ValueError:
                raise ApiError(UNKNOWN_MEMBER, "The referring member was not found.") from None
        elif referred_by and await self.db.read(self.store.members.member, referred_by) is None:
            raise ApiError(UNKNOWN_MEMBER, "The referring member was not found.")
        member_id = f"local:{uuid.uuid4()}"
        body = {"member_id": member_id, "name": name, "identifiers": identifiers,
                "referred_by": referred_by}
        await self._append("member_enrol", body, session.staff_id)
        return {"member_id": member_id}

    # ------------------------------------------------------------------ recent sales

    def _void_refusal(self, entry: Any, newest_id: str | None, refunded: bool,
                      session: Any) -> tuple[str, str] | None:
        """Why ``session`` may not void the sale ``entry`` (reason code, sentence), or None."""
        if refunded:
            return "refunded", "This sale has already been refunded or voided."
        if entry.id != newest_id:
            return ("void_not_last", "Only the last sale of this terminal can be voided; "
                    "a manager can refund this one.")
        if perm.VOID not in session.permissions \
                and entry.event.get("staff_id") != session.staff_id:
            return ("void_other_staff", "Only the cashier who recorded the sale, or a "
                    "manager, can void it.")
        at = datetime.fromisoformat(str(entry.at).replace("Z", "+00:00"))
        if (self.clock() - at).total_seconds() > VOID_WINDOW_S:
            return ("void_too_late", f"A sale can be voided only within "
                    f"{int(VOID_WINDOW_S // 60)} minutes; a manager can refund it.")
        return None

    def _amount_query(self, text: str) -> int | None:
        """``12.50`` / ``12,50`` / ``1250`` as minor units, or None if not an amount."""
        bundle = self.view.bundle()
        given = field_of(bundle, "minor_units") if bundle is not None else None
        minor: int = given if isinstance(given, int) else 2
        whole, sep, frac = text.replace(",", ".").partition(".")
        if not whole.isdigit() or len(whole) > 12 or (sep and (not frac.isdigit()
                                                                or len(frac) > minor)):
            return None
        return int(whole) * int(10**minor) + int((frac or "0").ljust(minor, "0")[:minor])

    def _sale_item(self, entry: Any, member_name: str | None, staff_name: str | None,
                   refund: Any, voidable: tuple[str, str] | None) -> dict[str, Any]:
        e = entry.event
        return {
            "sale_id": entry.id, "seq": entry.seq, "receipt_no": receipt_number(entry.id),
            "at": entry.at, "state": entry.state, "offline": e.get("offline"),
            "staff_id": e.get("staff_id"), "staff_name": staff_name,
            "member_id": e.get("member_id"), "member_name": member_name,
            "lines": e.get("lines"), "gross": e.get("gross"),
            "discounts": e.get("discounts"), "redeemed_points": e.get("redeemed_points"),
            "redeemed_value": e.get("redeemed_value"), "credits_used": e.get("credits_used"),
            "payable": e.get("payable"), "payment": e.get("payment"),
            "points_earned": sum(int(p.get("points", 0)) for p in e.get("points_earned") or []),
            "credits_earned": e.get("credits_earned"),
            "lottery_entries": e.get("lottery_entries"),
            "refund": None if refund is None else {
                "refund_id": refund.id, "at": refund.at, "reason": refund.event.get("reason"),
                "staff_id": refund.event.get("staff_id"),
                "void": refund.event.get("reason") == VOID_REASON},
            "voidable": voidable is None,
            "void_refusal": None if voidable is None else voidable[0],
        }

    async def _recent_sales(self, session: Any, before: int | None, limit: int,
                            query: str, member_id: str | None
                            ) -> tuple[list[dict[str, Any]], int | None]:
        """Sales of this terminal newest first matching ``query``/``member_id``, at
        most ``limit``, looking at most SALE_LIST_SCAN; and where to go on from."""
        needle = query.casefold()
        amount = self._amount_query(query) if query else None
        bare = needle.replace("-", "")

        def scan() -> tuple[list[Any], dict[str, str | None], int | None, Any, dict[str, Any]]:
            found: list[Any] = []
            names: dict[str, str | None] = {}
            cursor, scanned, more = before, 0, True
            while len(found) < limit and scanned < SALE_LIST_SCAN and more:
                page = self.store.outbox.sales_before(cursor, min(200, SALE_LIST_SCAN - scanned))
                more = bool(page)
                for entry in page:
                    scanned += 1
                    cursor = entry.seq
                    mid = entry.event.get("member_id")
                    if isinstance(mid, str) and mid not in names:
                        record = self.store.members.member(mid)
                        names[mid] = (record or {}).get("name")
                    if member_id is not None and mid != member_id:
                        continue
                    if needle and not (
                            bare in entry.id.replace("-", "").casefold()
                            or bare in receipt_number(entry.id).replace("-", "").casefold()
                            or (isinstance(mid, str)
                                and needle in str(names.get(mid) or "").casefold())
                            or (amount is not None and amount in (entry.event.get("payable"),
                                                                  entry.event.get("gross")))):
                        continue
                    found.append(entry)
                    if len(found) >= limit:
                        break
            newest = self.store.outbox.sales_before(None, 1)
            refunds = self.store.outbox.refunds_of([e.id for e in found])
            go_on = cursor if (more and (len(found) >= limit or scanned >= SALE_LIST_SCAN)) \
                else None
            return found, names, go_on, newest[0].id if newest else None, refunds

        found, names, go_on, newest_id, refunds = await self.db.read(scan)
        staff = await self._staff_names({e.event.get("staff_id") for e in found})
        items = []
        for entry in found:
            mid = entry.event.get("member_id")
            refund = refunds.get(entry.id)
            items.append(self._sale_item(
                entry, names.get(mid) if isinstance(mid, str) else None,
                staff.get(str(entry.event.get("staff_id"))), refund,
                self._void_refusal(entry, newest_id, refund is not None, session)))
        return items, go_on

    async def sale_list(self, params: dict[str, Any], conn: Any) -> dict[str, Any]:
        """``sale.list`` (cashier, manager): this terminal's sales, newest first.

        ``limit`` (1–50, default 20), ``before`` (a ``seq``: older ones), ``query``
        (receipt number, sale id, member name or amount), ``member_id``. Answers
        ``{sales, next_before}``; ``next_before`` is null when nothing older is left.
        """
        session = await self._session(params, perm.SALE_VIEW)
        limit = _p(params, "limit", int, required=False, default=20)
        if not 1 <= limit <= SALE_LIST_MAX:
            raise ApiError(INVALID_PARAMS, f"The limit must be 1 to {SALE_LIST_MAX}.",
                           {"param": "limit"})
        before = _p(params, "before", int, required=False)
        if before is not None and before < 1:
            raise ApiError(INVALID_PARAMS, "before must be a positive seq.", {"param": "before"})
        query = _text(params, "query", required=False, max_len=64) or ""
        member_id = _text(params, "member_id", required=False, max_len=100)
        items, go_on = await self._recent_sales(session, before, limit, query, member_id)
        return {"sales": items, "next_before": go_on}

    async def sale_void(self, params: dict[str, Any], conn: Any) -> dict[str, Any]:
        """``sale.void``: undo this terminal's newest sale within VOID_WINDOW_S, by the
        cashier who recorded it or a manager. On the wire: a ``refund`` with reason
        ``"void"``."""
        session = await self._session(params, perm.SELL)
        sale_id = _text(params, "sale_id", max_len=64)
        assert sale_id is not None

        def read() -> tuple[Any, str | None, bool]:
            newest = self.store.outbox.sales_before(None, 1)
            return (self.store.outbox.event(sale_id), newest[0].id if newest else None,
                    bool(self.store.outbox.refunds_of([sale_id])))

        entry, newest_id, refunded = await self.db.read(read)
        if entry is None or entry.type != "sale":
            raise ApiError(NOT_FOUND, "There is no such sale on this terminal.")
        refusal = self._void_refusal(entry, newest_id, refunded, session)
        if refusal is not None:
            code = CONFLICT if refusal[0] == "refunded" else NOT_ALLOWED
            raise ApiError(code, refusal[1], {"reason": refusal[0]})
        stored = await self._append("refund", {"sale_id": sale_id, "reason": VOID_REASON},
                                    session.staff_id)
        return {"refund_id": field_of(stored, "id"), "sale_id": sale_id,
                "receipt_no": receipt_number(sale_id)}

    # ------------------------------------------------------------------ member search

    async def member_search(self, params: dict[str, Any], conn: Any) -> list[dict[str, Any]]:
        """``member.search`` (cashier, manager): members by phone, club code or a part
        of the name, at most ``limit`` (1–20, default 10)."""
        await self._session(params, perm.SALE_VIEW)
        query = _text(params, "query", max_len=80)
        assert query is not None
        limit = _p(params, "limit", int, required=False, default=10)
        if not 1 <= limit <= MEMBER_SEARCH_MAX:
            raise ApiError(INVALID_PARAMS, f"The limit must be 1 to {MEMBER_SEARCH_MAX}.",
                           {"param": "limit"})
        found: dict[str, dict[str, Any]] = {}
        keys = ["code"] + (["phone"] if sum(c.isdigit() for c in query) >= 5 else [])
        for key in keys:
            try:
                token = self._identifier_of({key: query})
            except ApiError:
                continue
            holder = await self.db.read(self.store.members.lookup, token)
            if holder is not None:
                found.setdefault(str(holder["member_id"]), holder)
        if len(query) >= 2:
            for record in await self.db.read(self.store.members.find_members, query, limit):
                found.setdefault(str(record["member_id"]), record)
        return [{"member_id": r["member_id"], "name": r.get("name"), "tier": r.get("tier"),
                 "status": r.get("status")} for r in list(found.values())[:limit]]

    async def member_profile(self, params: dict[str, Any], conn: Any) -> dict[str, Any]:
        """``member.profile`` (cashier, manager): the member summary with usable
        balances, stats, linked cards and the last sales at this terminal."""
        session = await self._session(params, perm.SALE_VIEW)
        member_id = _text(params, "member_id", max_len=100)
        assert member_id is not None
        record = await self.db.read(self.store.members.member_view, member_id)
        if record is None:
            raise ApiError(UNKNOWN_MEMBER, "No member has this id.")
        cards = []
        for token in record.get("identifiers") or []:
            kind = str(token).split(":", 1)[0]
            if kind in ("tel", "nid"):
                continue
            masked = self._recent_cards.get(token, (None, None))[0]
            cards.append({"token": token, "kind": kind,
                          "label": masked or f"{kind.upper()} …{str(token)[-6:]}"})
        sales, _ = await self._recent_sales(session, None, PROFILE_SALES, "", member_id)
        return {**self._summary_from(record, None), "stats": record.get("stats") or {},
                "cards": cards, "recent_sales": sales}

    async def member_card_link(self, params: dict[str, Any], conn: Any) -> dict[str, Any]:
        """``member.card_link`` (manager): link a card to a member (protocol
        ``card_link``); with ``replaces`` (a lost card's token) the old card stops
        finding the member at this terminal at once."""
        session = await self._session(params, perm.CARD_LINK)
        member_id = _text(params, "member_id", max_len=100)
        assert member_id is not None
        token = _checked_token(params.get("token"))
        replaces = params.get("replaces")
        member = await self.db.read(self.store.members.member, member_id)
        if member is None:
            raise ApiError(UNKNOWN_MEMBER, "No member has this id.")
        holder = await self.db.read(self.store.members.lookup, token)
        if holder is not None:
            raise ApiError(CONFLICT, f"This card already belongs to {holder.get('name')}.",
                           {"member_id": holder.get("member_id")})
        body: dict[str, Any] = {"member_id": member_id, "identifier": token}
        if replaces is not None:
            replaces = _checked_token(replaces, "replaces")
            old = await self.db.read(self.store.members.lookup, replaces)
            if old is None or old.get("member_id") != member_id:
                raise ApiError(INVALID_PARAMS, "The card to replace is not this member's.",
                               {"param": "replaces"})
            # Not a protocol key (the club ignores unknown keys): docs/local-api.md.
            body["replaces"] = replaces
        stored = await self._append("card_link", body, session.staff_id)
        return {"event_id": field_of(stored, "id"), "member_id": member_id}

    # ------------------------------------------------------------------ corrections

    async def event_correct(self, params: dict[str, Any], conn: Any) -> dict[str, Any]:
        """``event.correct`` (manager): a ``correction`` event referring to an expense,
        cash receipt or enrolment; the corrected event itself is never changed."""
        from agent.offline_queue.events import CORRECTABLE

        session = await self._session(params, perm.REPORT)
        event_id = _text(params, "event_id", max_len=100)
        reason = _text(params, "reason", max_len=200)
        if not reason or not reason.strip():
            raise ApiError(INVALID_PARAMS, "A correction needs a reason.", {"param": "reason"})
        entry = await self.db.read(self.store.outbox.event, event_id)
        if entry is None or entry.type not in CORRECTABLE or entry.state == "rejected":
            raise ApiError(NOT_FOUND, "There is no expense, cash receipt or enrolment with "
                           "this id on this terminal.", {"param": "event_id"})
        need = perm.permission(entry.type, "edit")  # expense, cash_receipt, member_enrol
        if need not in session.permissions:
            raise ApiError(NOT_ALLOWED, f"A {session.role} may not correct this "
                           f"({perm.describe(need)}); ask a manager.",
                           {"reason": "role", "permission": need})
        void = params.get("void", False)
        if not isinstance(void, bool):
            raise ApiError(INVALID_PARAMS, "void must be true or false.", {"param": "void"})
        foreign = sorted(({k for keys in CORRECTABLE.values() for k in keys}
                          - set(CORRECTABLE[entry.type])) & params.keys())
        if foreign:
            raise ApiError(INVALID_PARAMS, f"A {entry.type.replace('_', ' ')} has no "
                           f"{foreign[0]} to correct.", {"param": foreign[0]})
        changes: dict[str, Any] = {}
        for key in CORRECTABLE[entry.type]:
            if params.get(key) is None:
                continue
            if key == "amount":
                changes[key] = _amount(params)
            else:
                changes[key] = _text(params, key, max_len={"name": 100, "category": 64}
                                     .get(key, 500))
        if void == bool(changes):
            raise ApiError(INVALID_PARAMS, "Give either void, or what to change ("
                           f"{', '.join(CORRECTABLE[entry.type])}).")
        body: dict[str, Any] = {"ref_id": entry.id, "ref_type": entry.type,
                                "action": "void" if void else "amend",
                                "reason": reason.strip(), "changes": changes}
        if entry.type == "member_enrol":
            body["member_id"] = entry.event.get("member_id")
        stored = await self._append("correction", body, session.staff_id)
        return {"event_id": field_of(stored, "id"), "ref_id": entry.id}

    # ------------------------------------------------------------------ reports

    async def _day_events(self, day: date) -> tuple[list[dict[str, Any]], datetime]:
        start, end = self._day_bounds(day)
        rows = await self.db.read(self.store.outbox.events_between, start, end)
        return [event_dict(e) for e in rows if e.get("_state") != "rejected"], end

    async def day_summary(self, params: dict[str, Any], conn: Any) -> dict[str, Any]:
        """``day.summary``: the terminal's totals of one local day (shape in docs).

        Open without a session (as local-api.md has it); with a session that is
        not a manager's, the per-staff figures are left out.
        """
        day = _parse_date(params["date"]) if params.get("date") else self._today()
        session = None
        if params.get("session") is not None:
            session = await self._session(params, perm.REPORT)
        events, end = await self._day_events(day)
        # A correction made on a later day still corrects this day's entry.
        later = await self.db.read(self.store.outbox.events_between, end,
                                   max(end, self.clock()) + timedelta(days=1), ("correction",))
        events += [event_dict(e) for e in later if e.get("_state") != "rejected"]
        refunded = await self._refunded_sales(events)
        bundle = self.view.bundle()
        summary = summarise_day(
            day, events, await self._staff_names(
                {e.get("staff_id") for e in [*events, *refunded.values()]}),
            now=self.clock(), day_end=end, tz_name=str(self._tz()),
            currency=field_of(bundle, "currency") if bundle is not None else None,
            minor_units=field_of(bundle, "minor_units") if bundle is not None else None,
            refunded_sales=refunded)
        if session is not None and perm.STAFF_FIGURES not in session.permissions:
            summary["per_staff"] = None
        return summary

    async def _refunded_sales(self, events: Iterable[Mapping[str, Any]]
                              ) -> dict[str, dict[str, Any]]:
        """The sales the day's refunds name, by id (from any day, while this terminal
        still holds them; rejected sales left out)."""
        ids = [str(e["sale_id"]) for e in events
               if e.get("type") == "refund" and isinstance(e.get("sale_id"), str)]

        def read() -> dict[str, dict[str, Any]]:
            out = {}
            for sale_id in ids:
                entry = self.store.outbox.event(sale_id)
                if entry is not None and entry.type == "sale" and entry.state != "rejected":
                    out[sale_id] = dict(entry.event)
            return out

        return await self.db.read(read) if ids else {}

    async def day_close(self, params: dict[str, Any], conn: Any) -> dict[str, Any]:
        """``day.close`` (manager): the Z report. Records a ``day_close`` event with the
        day's totals and answers them; each close of a date gets the next number."""
        session = await self._session(params, perm.DAY_CLOSE)
        # One close at a time: two tills closing at once must not both be number 1.
        async with self._close_lock:
            return await self._day_close(params, conn, session.staff_id)

    async def _day_close(self, params: dict[str, Any], conn: Any,
                         manager: str) -> dict[str, Any]:
        summary = await self.day_summary({k: v for k, v in params.items() if k != "session"},
                                         conn)
        events, _end = await self._day_events(_parse_date(summary["date"]))
        close_no = 1 + sum(1 for e in events if e.get("type") == "day_close"
                           and e.get("date") == summary["date"])
        totals = {"sales": summary["sales"], "by_tender": summary["by_tender"],
                  "cash": summary["cash"], "refunds": summary["refunds"],
                  "expenses": len(summary["expenses"]),
                  "cash_receipts": len(summary["cash_receipts"])}
        body = {"date": summary["date"], "close_no": close_no, "totals": totals,
                "currency": summary["currency"], "minor_units": summary["minor_units"]}
        stored = await self._append("day_close", body, manager)
        at = field_of(stored, "at") or self.clock()
        return {"event_id": field_of(stored, "id"),
                "at": _iso(at) if isinstance(at, datetime) else at,
                "closed_by": manager, **body}

    async def _staff_names(self, ids: Iterable[Any]) -> dict[str, str]:
        names = {}
        for staff_id in ids:
            if isinstance(staff_id, str):
                staff = await self.db.read(self.store.records.staff, staff_id)
                names[staff_id] = (staff or {}).get("name") or staff_id
        return names

    # ------------------------------------------------------------------ appointments

    async def _appointment_fields(self, params: Mapping[str, Any],
                                  base: Mapping[str, Any] | None) -> dict[str, Any]:
        base = dict(base or {})
        out: dict[str, Any] = {}
        customer = params.get("customer")
        if customer is None and isinstance(params.get("phone"), str):
            customer = params["phone"]
        if customer is None:
            customer = base.get("customer")
        if not isinstance(customer, str) or not customer.strip():
            raise ApiError(INVALID_PARAMS, "Say who the appointment is for (a member or a phone).",
                           {"param": "customer"})
        if not customer.startswith(("tel:", "local:")) and customer[:1] not in ("+", "0") \
                and not (await self.db.read(self.store.members.member, customer)):
            raise ApiError(UNKNOWN_MEMBER, "No member has this id.")
        if customer[:1] in ("+", "0") or customer.replace(" ", "").isdigit():
            customer = self._identifier_of({"phone": customer})
        if customer.startswith("tel:"):
            # A phone that belongs to a member books the member.
            holder = await self.db.read(self.store.members.lookup, customer)
            if holder is not None:
                customer = holder["member_id"]
        out["customer"] = customer
        service = params.get("service", base.get("service"))
        if not isinstance(service, str) or not service.strip() or len(service) > 100:
            raise ApiError(INVALID_PARAMS, "Say which service is booked.", {"param": "service"})
        out["service"] = service.strip()
        staff_id = params.get("staff_id", base.get("staff_id"))
        if not isinstance(staff_id, str) or not staff_id:
            raise ApiError(INVALID_PARAMS, "Say which staff member gives the service.",
                           {"param": "staff_id"})
        if await self.db.read(self.store.records.staff, staff_id) is None:
            raise ApiError(NOT_FOUND, "There is no staff member with this id.")
        out["staff_id"] = staff_id
        start = _parse_time(params.get("start", base.get("start")), "start")
        out["start"] = start.isoformat()
        minutes = params.get("minutes", base.get("minutes"))
        if isinstance(minutes, bool) or not isinstance(minutes, int) or not 1 <= minutes <= 1440:
            raise ApiError(INVALID_PARAMS, "The length must be 1 to 1440 minutes.",
                           {"param": "minutes"})
        out["minutes"] = minutes
        note = params.get("note", base.get("note", ""))
        if note is not None and (not isinstance(note, str) or len(note) > 500):
            raise ApiError(INVALID_PARAMS, "The note is too long.", {"param": "note"})
        out["note"] = note or ""
        return out

    async def _conflict(self, other_id: str) -> ApiError:
        other = await self.db.read(self.store.records.appointment, other_id) or {}
        names = await self._staff_names([other.get("staff_id")])
        start = other.get("start")
        when = ""
        if isinstance(start, str):
            begin = datetime.fromisoformat(start).astimezone(self._tz())
            end = begin + timedelta(minutes=int(other.get("minutes") or 0))
            when = f" {begin:%H:%M}–{end:%H:%M}"
        who = names.get(str(other.get("staff_id")), "This staff member")
        return ApiError(CONFLICT, f"{who} is already booked{when} ({other.get('service')}).",
                        {"appointment_id": other_id})

    async def _appointment_call(self, what: str, fn: Callable[..., Any], *args: Any,
                                **kwargs: Any) -> Any:
        try:
            return await self._record(what, fn, *args, **kwargs)
        except ApiError as exc:
            if exc.code == CONFLICT and isinstance(exc.data, dict) and exc.data.get("other_id"):
                raise await self._conflict(str(exc.data["other_id"])) from None
            raise

    async def appointment_create(self, params: dict[str, Any], conn: Any) -> dict[str, Any]:
        """``appointment.create``; an overlap with the same staff is -32008."""
        session = await self._session(params, perm.APPOINTMENT_ADD)
        appt = await self._appointment_fields(params, None)
        found, _stored = await self._appointment_call(
            "an appointment", self.store.records.create_appointment, customer=appt["customer"],
            service=appt["service"], staff_id=appt["staff_id"],
            start=datetime.fromisoformat(appt["start"]), minutes=appt["minutes"],
            note=appt["note"], by=session.staff_id, at=self.clock(),
            offline=not self.view.online())
        return {"appointment_id": found["appointment_id"]}

    async def _existing_appointment(self, params: Mapping[str, Any]) -> dict[str, Any]:
        appointment_id = _p(params, "appointment_id", str)
        appt = await self.db.read(self.store.records.appointment, appointment_id)
        if appt is None or appt.get("status") == "cancelled":
            raise ApiError(NOT_FOUND, "There is no such appointment (it may have been "
                           "cancelled).")
        return dict(appt)

    async def appointment_update(self, params: dict[str, Any], conn: Any) -> dict[str, Any]:
        """``appointment.update``: move or change an appointment (given keys change)."""
        session = await self._session(params, perm.APPOINTMENT_EDIT)
        old = await self._existing_appointment(params)
        appt = await self._appointment_fields(params, old)
        found, _stored = await self._appointment_call(
            "an appointment change", self.store.records.update_appointment, old["appointment_id"],
            by=session.staff_id, at=self.clock(), offline=not self.view.online(),
            customer=appt["customer"], service=appt["service"], staff_id=appt["staff_id"],
            start=datetime.fromisoformat(appt["start"]), minutes=appt["minutes"],
            note=appt["note"])
        return {"appointment_id": found["appointment_id"]}

    async def appointment_cancel(self, params: dict[str, Any], conn: Any) -> dict[str, Any]:
        """``appointment.cancel``."""
        session = await self._session(params, perm.APPOINTMENT_DELETE)
        appt = await self._existing_appointment(params)
        await self._appointment_call("a cancellation", self.store.records.cancel_appointment,
                                     appt["appointment_id"], by=session.staff_id,
                                     at=self.clock(), offline=not self.view.online())
        return {"appointment_id": appt["appointment_id"]}

    async def appointment_list(self, params: dict[str, Any], conn: Any) -> list[dict[str, Any]]:
        """``appointment.list``: the booked appointments starting on that local day.

        A list sorted by start, each with ``customer_name`` and ``staff_name``.
        """
        day = _parse_date(params.get("date")) if params.get("date") else self._today()
        staff_filter = params.get("staff_id")
        start, end = self._day_bounds(day)
        rows = await self.db.read(self.store.records.appointments_between, start, end)
        names = await self._staff_names({r.get("staff_id") for r in rows})
        items = []
        for row in rows:
            if row.get("status") not in (None, "active", "booked"):
                continue
            if staff_filter and row.get("staff_id") != staff_filter:
                continue
            if not start <= datetime.fromisoformat(row["start"]) < end:
                continue
            item = {k: row.get(k) for k in ("appointment_id", "customer", "service",
                                           "staff_id", "start", "minutes", "note")}
            item["staff_name"] = names.get(str(row.get("staff_id")), row.get("staff_id"))
            item["customer_name"] = await self._customer_name(str(row.get("customer")))
            items.append(item)
        items.sort(key=lambda a: (datetime.fromisoformat(a["start"]), str(a["staff_name"])))
        return items

    async def _customer_name(self, customer: str) -> str:
        if customer.startswith("tel:"):
            holder = await self.db.read(self.store.members.lookup, customer)
            return str(holder.get("name")) if holder else customer[4:]
        member = await self.db.read(self.store.members.member, customer)
        return str(member.get("name")) if member else customer


def _promotion_params(params: Mapping[str, Any]) -> dict[str, list[str]]:
    """``codes`` and ``rewards`` of a quote request (issue 21), checked."""
    out: dict[str, list[str]] = {}
    for name in ("codes", "rewards"):
        value = params.get(name)
        if value is None:
            continue
        if (not isinstance(value, list) or len(value) > 10
                or not all(isinstance(v, str) and 0 < len(v) <= 64 for v in value)):
            raise ApiError(INVALID_PARAMS, f"{name} must be a list of at most 10 texts of up "
                           "to 64 characters.", {"param": name})
        out[name] = list(value)
    return out


def _granted(staff: Mapping[str, Any]) -> frozenset[str]:
    """A staff record's permissions (a store without them: its role's default group)."""
    granted = staff.get("permissions")
    if isinstance(granted, list | tuple | set | frozenset):
        return frozenset(str(p) for p in granted)
    return perm.union([str(staff.get("role"))], perm.DEFAULT_GROUPS)


def _attendance_rows(events: Iterable[Mapping[str, Any]], staff_names: Mapping[str, str],
                     now: datetime, day_end: datetime) -> list[dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    for e in events:
        if e.get("type") != "attendance":
            continue
        sid = str(e.get("staff_id"))
        at = e["at"]
        row = rows.setdefault(sid, {"staff_id": sid, "name": staff_names.get(sid, sid),
                                    "entries": [], "present": False, "minutes": 0})
        row["entries"].append({"action": e.get("action"), "at": at.isoformat()})
        row["present"] = e.get("action") == "in"
    for row in rows.values():
        seconds = 0.0
        opened: datetime | None = None
        for entry in row["entries"]:
            at = datetime.fromisoformat(entry["at"])
            if entry["action"] == "in":
                opened = opened or at
            elif opened is not None:
                seconds += (at - opened).total_seconds()
                opened = None
        if opened is not None:
            seconds += max(0.0, (min(now, day_end) - opened).total_seconds())
        row["minutes"] = int(seconds // 60)
    return sorted(rows.values(), key=lambda r: str(r["name"]))


def summarise_day(day: date, events: Iterable[Mapping[str, Any]],
                  staff_names: Mapping[str, str], *, now: datetime, day_end: datetime,
                  currency: str | None = None, minor_units: int | None = None,
                  tz_name: str = "UTC",
                  refunded_sales: Mapping[str, Mapping[str, Any]] | None = None
                  ) -> dict[str, Any]:
    """Totals of one local day's events (a pure function; shape in docs/local-api.md).

    ``events`` are flat event dicts (wire keys and the type's own keys) whose
    ``at`` is a datetime within the day. ``refunded_sales`` are the sales the
    day's refunds name, by id: a refund counts on its own day, with the amounts
    of its sale (which may be of an earlier day).
    """
    todays = sorted(events, key=lambda e: e.get("seq") or 0)
    sales = [e for e in todays if e.get("type") == "sale"]
    refunds = [e for e in todays if e.get("type") == "refund"]
    known = refunded_sales or {}
    # (the refund, its sale) for each refund whose sale this terminal holds.
    undone = [(r, known[str(r.get("sale_id"))]) for r in refunds
              if str(r.get("sale_id")) in known]

    def totals(rows: list[Mapping[str, Any]]) -> dict[str, Any]:
        return {
            "count": len(rows),
            "gross": sum(int(r.get("gross") or 0) for r in rows),
            "discounts": sum(int(d.get("amount", 0)) for r in rows
                             for d in r.get("discounts") or []),
            "payable": sum(int(r.get("payable") or 0) for r in rows),
            "points_given": sum(int(p.get("points", 0)) for r in rows
                                for p in r.get("points_earned") or []),
            "points_taken": sum(int(r.get("redeemed_points") or 0) for r in rows),
            "credit_used": sum(int(c.get("amount", 0)) for r in rows
                               for c in r.get("credits_used") or []),
            "credit_given": sum(int(c.get("amount", 0)) for r in rows
                                for c in r.get("credits_earned") or []),
        }

    def minus(a: Mapping[str, int], b: Mapping[str, int]) -> dict[str, int]:
        return {k: int(a[k]) - int(b.get(k, 0)) for k in a}

    sold = totals(sales)
    refunded: dict[str, Any] = totals([sale for _r, sale in undone])
    refunded["unknown"] = len(refunds) - len(undone)
    refunded["voids"] = sum(1 for r in refunds if r.get("reason") == "void")
    by_payment: dict[str, int] = {}
    for _r, sale in undone:
        how = str(sale.get("payment") or "other")
        by_payment[how] = by_payment.get(how, 0) + int(sale.get("payable") or 0)
    refunded["by_payment"] = by_payment

    per_staff = []
    # A refund is taken off the figures of who made the sale.
    sellers = {str(s.get("staff_id")) for s in sales if s.get("staff_id")} | {
        str(sale.get("staff_id")) for _r, sale in undone if sale.get("staff_id")}
    for staff_id in sorted(sellers):
        row: dict[str, Any] = totals([s for s in sales if s.get("staff_id") == staff_id])
        back = totals([sale for _r, sale in undone if sale.get("staff_id") == staff_id])
        row.update(staff_id=staff_id, name=staff_names.get(staff_id, staff_id),
                   refunds=back["count"], refunded=back["payable"],
                   net_payable=row["payable"] - back["payable"])
        per_staff.append(row)

    # Corrections (#15 item 10): the latest one of each event wins; the row shows the
    # corrected values and says so, a voided row counts nothing.
    latest = {str(e.get("ref_id")): e for e in todays if e.get("type") == "correction"}

    def money_rows(kind: str) -> list[dict[str, Any]]:
        rows = []
        for e in todays:
            if e.get("type") != kind:
                continue
            row = {"event_id": e.get("id"), "at": e["at"].isoformat(), "amount": e.get("amount"),
                   "category": e.get("category"), "note": e.get("note"),
                   "staff_id": e.get("staff_id")}
            fix = latest.get(str(e.get("id")))
            if fix is not None:
                row.update(fix.get("changes") or {})
                row["correction"] = {"event_id": fix.get("id"), "by": fix.get("staff_id"),
                                     "reason": fix.get("reason"),
                                     "void": fix.get("action") == "void"}
            rows.append(row)
        return rows

    def counted(rows: list[dict[str, Any]]) -> int:
        return sum(int(r["amount"] or 0) for r in rows
                   if not (r.get("correction") or {}).get("void"))

    expenses = money_rows("expense")
    receipts = money_rows("cash_receipt")
    income = counted(receipts)
    spent = counted(expenses)
    by_tender, cash = _cash_up(sales, income, spent)
    return {
        "date": day.isoformat(),
        "timezone": tz_name,
        "currency": currency,
        "minor_units": minor_units,
        "sales": sold,
        "per_staff": per_staff,
        "refunds": len(refunds),
        "refunded": refunded,
        "net_sales": minus(sold, refunded),
        "expenses": expenses,
        "cash_receipts": receipts,
        "totals": {"income": income, "expenses": spent, "net": income - spent},
        "by_tender": by_tender,
        "cash": cash,
        "attendance": _attendance_rows(todays, staff_names, now, day_end),
    }


# ---- cash-up (#15 item 7): takings split by tender, and the cash the drawer should hold.
def _cash_up(sales: list[Mapping[str, Any]], income: int, spent: int
             ) -> tuple[dict[str, dict[str, int]], dict[str, int]]:
    """``by_tender`` (count and payable per payment kind, every kind present) and
    ``cash``: cash sales + cash receipts − expenses = what the drawer should hold
    beyond its float. A sale without ``payment`` was cash (the default)."""
    by_tender = {kind: {"count": 0, "payable": 0} for kind in PAYMENTS}
    for sale in sales:
        kind = str(sale.get("payment")) if sale.get("payment") in PAYMENTS else "cash"
        by_tender[kind]["count"] += 1
        by_tender[kind]["payable"] += int(sale.get("payable") or 0)
    cash_sales = by_tender["cash"]["payable"]
    cash = {"sales": cash_sales, "receipts": income, "expenses": spent,
            "net": cash_sales + income - spent}
    return by_tender, cash
