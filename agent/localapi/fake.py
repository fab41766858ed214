"""An in-memory :class:`~agent.localapi.LocalApi` for tests, UI work and demos.

``FakeLocalApi`` answers every method of ``local-api.md`` from dicts in memory,
with the same error codes and cashier-readable messages the real agent gives,
roles enforced, quotes that expire after 120 s of an injectable clock, and an
event stream that tests feed with :meth:`FakeLocalApi.push_event` (or the
helpers :meth:`tap`, :meth:`set_online`, :meth:`set_reader`).

It ships in the package, as httpx ships ``MockTransport``, so the terminal UI
can be built, tested and demonstrated (``clubterm tui --fake``) without a
daemon. Its sale arithmetic is a deliberately small stand-in for ``rules.md``
(a tier discount and one point per 100 minor units); it is not the rules engine.

Fields the fake returns beyond ``local-api.md`` (they are proposals for the
contract, listed in ``docs/tui.md``): ``currency``, ``minor_units``,
``timezone`` and ``link_since`` in ``agent.status``; ``currency``,
``minor_units``, ``member``, ``redeem_limits`` and ``expires_at`` in a quote;
the shape of ``explain`` entries, of ``receipt``, of ``day.summary`` and of the
non-card event notifications.
"""

from __future__ import annotations

import asyncio
import copy
import re
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from agent.errors import ApiError
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
)
from agent.localapi.sessions import BadgeTap, BadgeTaps

Json = dict[str, Any]

ROLES = ("cashier", "manager", "technician")
# Which roles may call which recording method. Read-only methods are open to all.
ROLE_POLICY: dict[str, frozenset[str]] = {
    "sale.commit": frozenset({"cashier", "manager"}),
    "sale.refund": frozenset({"manager"}),
    "expense.add": frozenset({"cashier", "manager"}),
    "cash_receipt.add": frozenset({"cashier", "manager"}),
    "appointment.create": frozenset({"cashier", "manager"}),
    "appointment.update": frozenset({"cashier", "manager"}),
    "appointment.cancel": frozenset({"cashier", "manager"}),
    "member.enrol": frozenset({"cashier", "manager"}),
    "staff.clock": frozenset({"manager"}),
}

# A tiny stand-in for a rule bundle (see the module docstring).
TIER_DISCOUNT_BPS = {"gold": 1000, "silver": 500}
POINTS_PER_SPEND = 100
POINT_VALUE = 1
MIN_REDEEM = 100
MAX_REDEEM_SHARE_BPS = 5000
ACCEPTED_CREDITS = ("credit.club", "credit.merchant:M-7")
CREDIT_CAP_PER_INVOICE = 50000
OFFLINE_MAX_REDEEM_PER_DAY = 2000
PAYMENTS = ("cash", "card", "other")


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class _Quote:
    quote_id: str
    made_at: datetime
    body: Json
    member_id: str | None
    token: str | None
    lines: list[Json]


@dataclass
class _State:
    staff: dict[str, Json] = field(default_factory=dict)
    members: dict[str, Json] = field(default_factory=dict)
    masked: dict[str, str] = field(default_factory=dict)
    sessions: dict[str, str] = field(default_factory=dict)
    quotes: dict[str, _Quote] = field(default_factory=dict)
    sales: dict[str, Json] = field(default_factory=dict)
    events: list[Json] = field(default_factory=list)
    appointments: dict[str, Json] = field(default_factory=dict)
    seq: int = 0


def _demo_state() -> _State:
    state = _State()
    staff_rows: tuple[Json, ...] = (
        {
            "staff_id": "1",
            "name": "Mina Rahimi",
            "role": "cashier",
            "pin": "1234",
            "badges": ["nfc:04AA000001"],
        },
        {
            "staff_id": "2",
            "name": "Reza Karimi",
            "role": "manager",
            "pin": "4321",
            "badges": ["nfc:04AA000002"],
        },
        {
            "staff_id": "3",
            "name": "Tom Berger",
            "role": "technician",
            "pin": "9999",
            "badges": ["nfc:04AA000003"],
        },
        {
            "staff_id": "4",
            "name": "Leila Ahmadi",
            "role": "cashier",
            "pin": "2468",
            "badges": ["nfc:04AA000004"],
        },
    )
    for staff in staff_rows:
        state.staff[staff["staff_id"]] = staff
    member_rows: tuple[Json, ...] = (
        {
            "member_id": "m-1",
            "name": "Sara K.",
            "status": "active",
            "tier": "gold",
            "identifiers": [
                "pan:9f2c1e0b7a6d5c4b3a291807f6e5d4c3",
                "nfc:04A1B2C3D4E5F6",
                "tel:+989121234567",
                "code:CLUB-1001",
            ],
            "balances": {"points": 1200, "credit.club": 5000, "credit.merchant:M-7": 2000},
        },
        {
            "member_id": "m-2",
            "name": "Ali R.",
            "status": "active",
            "tier": "silver",
            "identifiers": ["nfc:04B0B0B0B0B0B0", "tel:+989351112233", "code:CLUB-1002"],
            "balances": {"points": 300},
        },
        {
            "member_id": "m-3",
            "name": "Omid N.",
            "status": "blocked",
            "tier": "bronze",
            "identifiers": ["nfc:04C0C0C0C0C0C0", "tel:+989190000000", "code:CLUB-1003"],
            "balances": {"points": 50},
        },
        {
            "member_id": "m-4",
            "name": "Nora B.",
            "status": "lost_card",
            "tier": "silver",
            "identifiers": ["pan:0a0b0c0d0e0f10111213141516171819", "code:CLUB-1004"],
            "balances": {"points": 800},
        },
    )
    for member in member_rows:
        state.members[member["member_id"]] = member
    state.masked["pan:9f2c1e0b7a6d5c4b3a291807f6e5d4c3"] = "411111******1111"
    state.masked["pan:0a0b0c0d0e0f10111213141516171819"] = "550000******0004"
    return state


def normalise_phone(text: str, default_country_code: str = "98") -> str | None:
    """E.164 form of a phone number typed at the till, or None if it is not one.

    A small stand-in for ``agent.carddata.tokens.normalise_phone``.
    """
    digits = re.sub(r"[\s\-().]", "", text)
    digits = digits.translate(str.maketrans("۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩", "01234567890123456789"))
    if digits.startswith("+"):
        rest = digits[1:]
    elif digits.startswith("00"):
        rest = digits[2:]
    elif digits.startswith("0"):
        rest = default_country_code + digits[1:]
    else:
        rest = default_country_code + digits
    if not rest.isdigit() or not 8 <= len(rest) <= 15:
        return None
    return "+" + rest


class FakeLocalApi:
    """An in-memory agent: every local API method, seeded with demo data.

    ``clock`` returns the current aware time (tests pass their own to age quotes
    and move days). ``fail_storage`` makes every recording method answer the
    ``storage`` error, as a full disk would.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], datetime] = _utc_now,
        tz: str = "Europe/Berlin",
        currency: str = "EUR",
        minor_units: int = 2,
        online: bool = True,
        terminal_id: str = "T-0001",
        merchant_id: str = "M-7",
    ) -> None:
        self.clock = clock
        self.tz = ZoneInfo(tz)
        self.tz_name = tz
        self.currency = currency
        self.minor_units = minor_units
        self.terminal_id = terminal_id
        self.merchant_id = merchant_id
        self.online = online
        self.link_since = clock()
        self.rules_version: int | None = 42
        self.rules_problem: str | None = None
        self.members_version = 9812
        self.fail_storage = False
        self.readers: list[Json] = [
            {"name": "ACS ACR122U 00 00", "kind": "pcsc", "state": "ready"},
            {"name": "MSR", "kind": "msr", "state": "ready"},
            {"name": "Barcode", "kind": "hid", "state": "ready"},
        ]
        self.calls: list[tuple[str, Json]] = []
        self._state = _demo_state()
        # The agent's own table of staff badge taps (single use, 15 s).
        self._taps = BadgeTaps()
        self._subscribers: list[asyncio.Queue[Json | None]] = []
        self._closed = False

    # ----------------------------------------------------------------- LocalApi

    async def call(self, method: str, params: Mapping[str, Any] | None = None) -> Any:
        """Answer ``method`` as the agent would, or raise :class:`ApiError`."""
        p: Json = dict(params or {})
        self.calls.append((method, p))
        handler = self._methods().get(method)
        if handler is None:
            raise ApiError(METHOD_NOT_FOUND, f"Unknown method {method}.")
        # Yield once, as a socket round trip would, so callers never rely on
        # the fake answering synchronously.
        await asyncio.sleep(0)
        return copy.deepcopy(handler(p))

    async def events(self) -> AsyncIterator[Json]:
        """Yield every notification pushed after subscribing."""
        queue: asyncio.Queue[Json | None] = asyncio.Queue()
        self._subscribers.append(queue)
        try:
            while True:
                item = await queue.get()
                if item is None:
                    return
                yield item
        finally:
            if queue in self._subscribers:
                self._subscribers.remove(queue)

    async def close(self) -> None:
        """End every event stream."""
        self._closed = True
        for queue in list(self._subscribers):
            queue.put_nowait(None)

    # ------------------------------------------------------- test/demo controls

    def push_event(self, event: Mapping[str, Any]) -> None:
        """Send ``event`` to every subscriber of :meth:`events`."""
        for queue in list(self._subscribers):
            queue.put_nowait(dict(event))

    @property
    def subscribers(self) -> int:
        """How many event streams are open (tests wait for the UI to subscribe)."""
        return len(self._subscribers)

    def tap(self, token: str, *, source: str = "nfc", masked: str | None = None) -> Json:
        """Present a card or scan a code: push the ``card`` event the agent would.

        A staff badge's event carries a single-use tap reference, not its token.
        """
        for staff in self._state.staff.values():
            if token in staff["badges"]:
                tap = self._taps.issue(staff["staff_id"], token, "fake", self._mono())
                badge: Json = {
                    "type": "card", "kind": "staff_badge", "source": source,
                    "token": tap.ref, "token_kind": "tap", "expires_s": self._taps.ttl_s,
                    "masked": None, "info": None, "member": None,
                    "staff": {"staff_id": staff["staff_id"], "name": staff["name"]},
                }
                self.push_event(badge)
                return badge
        member = self._find_member(token)
        event: Json = {
            "type": "card",
            "kind": "card",
            "source": source,
            "token": token,
            "masked": masked or self._state.masked.get(token),
            "member": self._summary(member, token) if member else None,
        }
        self.push_event(event)
        return event

    def set_online(self, online: bool) -> None:
        """Change the link state and notify subscribers."""
        self.online = online
        self.link_since = self.clock()
        self.push_event({"type": "link", "online": online, "since": self.link_since.isoformat()})

    def set_reader(self, name: str, state: str, detail: str | None = None) -> None:
        """Change a reader's state and notify subscribers."""
        kind = "pcsc"
        for reader in self.readers:
            if reader["name"] == name:
                reader["state"] = state
                kind = reader["kind"]
        self.push_event(
            {"type": "reader", "name": name, "kind": kind, "state": state, "detail": detail}
        )

    def expire_sessions(self) -> None:
        """End every staff session, as the agent does after its idle or maximum time."""
        self._state.sessions.clear()

    def acknowledge_all(self) -> None:
        """Pretend the club acknowledged every recorded event."""
        for event in self._state.events:
            event["pending"] = False
        self._push_queue()

    def recorded(self, event_type: str | None = None) -> list[Json]:
        """Events recorded so far (the outbox), optionally of one type."""
        return [
            copy.deepcopy(e)
            for e in self._state.events
            if event_type is None or e["type"] == event_type
        ]

    # ------------------------------------------------------------------ helpers

    def _methods(self) -> dict[str, Callable[[Json], Any]]:
        return {
            "agent.status": self._status,
            "events.subscribe": lambda p: True,
            "member.identify": self._identify,
            "sale.quote": self._quote,
            "sale.commit": self._commit,
            "sale.refund": self._refund,
            "staff.login": self._login,
            "staff.logout": self._logout,
            "staff.clock": self._clock,
            "expense.add": lambda p: self._money_event("expense", p),
            "cash_receipt.add": lambda p: self._money_event("cash_receipt", p),
            "day.summary": self._day_summary,
            "appointment.create": self._appointment_create,
            "appointment.update": self._appointment_update,
            "appointment.cancel": self._appointment_cancel,
            "appointment.list": self._appointment_list,
            "member.enrol": self._enrol,
        }

    def _now(self) -> datetime:
        return self.clock().astimezone(self.tz)

    def _pending(self) -> list[Json]:
        return [e for e in self._state.events if e.get("pending")]

    def _push_queue(self) -> None:
        pending = self._pending()
        self.push_event(
            {
                "type": "queue",
                "pending": len(pending),
                "oldest_at": pending[0]["at"] if pending else None,
                "rejected": 0,
            }
        )

    def _session_staff(self, method: str, params: Json) -> Json:
        session = params.get("session")
        staff_id = self._state.sessions.get(session) if isinstance(session, str) else None
        if staff_id is None:
            raise ApiError(
                NOT_ALLOWED,
                "Your sign-in has ended. Please sign in again.",
                {"reason": "session_expired" if session else "no_session"},
            )
        staff = self._state.staff[staff_id]
        allowed = ROLE_POLICY.get(method)
        if allowed is not None and staff["role"] not in allowed:
            raise ApiError(
                NOT_ALLOWED,
                f"A {staff['role']} may not do this. Ask a manager.",
                {"reason": "role", "role": staff["role"]},
            )
        return staff

    def _record(self, event_type: str, body: Json, staff_id: str | None) -> Json:
        if self.fail_storage:
            raise ApiError(
                STORAGE,
                "The terminal could not save this (storage full or "
                "failing). Nothing was recorded. Call a technician.",
            )
        self._state.seq += 1
        event = {
            "id": str(uuid.uuid4()),
            "seq": self._state.seq,
            "type": event_type,
            "at": self._now().isoformat(),
            "staff_id": staff_id,
            "offline": not self.online,
            "pending": True,
            **body,
        }
        self._state.events.append(event)
        self._push_queue()
        return event

    def _find_member(self, token: str) -> Json | None:
        for member in self._state.members.values():
            if token in member["identifiers"]:
                return member
        return None

    def _usable_balances(self, member: Json) -> dict[str, int]:
        balances: dict[str, int] = dict(member["balances"])
        for event in self._state.events:
            if event["type"] != "sale" or event["member_id"] != member["member_id"]:
                continue
            balances["points"] = (
                balances.get("points", 0)
                - event["redeemed_points"]
                + sum(p["points"] for p in event["points_earned"])
            )
            for used in event["credits_used"]:
                balances[used["kind"]] = balances.get(used["kind"], 0) - used["amount"]
        return balances

    def _summary(self, member: Json, token: str | None) -> Json:
        return {
            "member_id": member["member_id"],
            "name": member["name"],
            "tier": member["tier"],
            "status": member["status"],
            "balances": self._usable_balances(member),
            "masked": self._state.masked.get(token) if token else None,
        }

    @staticmethod
    def _int(params: Json, key: str, *, minimum: int = 0, required: bool = True) -> int | None:
        value = params.get(key)
        if value is None and not required:
            return None
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise ApiError(INVALID_PARAMS, f"'{key}' must be a whole number ≥ {minimum}.")
        return value

    @staticmethod
    def _str(params: Json, key: str, *, required: bool = True) -> str | None:
        value = params.get(key)
        if value is None and not required:
            return None
        if not isinstance(value, str) or (required and not value.strip()):
            raise ApiError(INVALID_PARAMS, f"'{key}' is missing.")
        return value.strip()

    def _local_day(self, day: date) -> tuple[datetime, datetime]:
        start = datetime.combine(day, time(0), self.tz)
        return start, start + timedelta(days=1)

    # ------------------------------------------------------------------ methods

    def _status(self, params: Json) -> Json:
        pending = self._pending()
        return {
            "terminal_id": self.terminal_id,
            "merchant_id": self.merchant_id,
            "online": self.online,
            "link_since": self.link_since.isoformat(),
            "rules_version": self.rules_version,
            "rules_problem": self.rules_problem,
            "members_version": self.members_version,
            "queue": {
                "pending": len(pending),
                "oldest_at": pending[0]["at"] if pending else None,
                "rejected": 0,
            },
            "readers": [dict(r) for r in self.readers],
            "currency": self.currency,
            "minor_units": self.minor_units,
            "timezone": self.tz_name,
        }

    def _identify(self, params: Json) -> Json:
        token = self._token_from(params)
        member = self._find_member(token)
        if member is None:
            raise ApiError(UNKNOWN_MEMBER, "No member found for this card, phone or code.")
        if member["status"] != "active":
            why = "blocked" if member["status"] == "blocked" else "reported lost"
            raise ApiError(
                MEMBER_NOT_ACTIVE,
                f"{member['name']}'s card is {why}: no benefits can be given.",
                {"member_id": member["member_id"], "status": member["status"]},
            )
        # ``token`` (the identifier that matched, normalised) is beyond
        # local-api.md: the client needs it for sale.quote after a phone lookup.
        return {**self._summary(member, token), "token": token}

    def _token_from(self, params: Json) -> str:
        if isinstance(params.get("token"), str) and params["token"]:
            return str(params["token"])
        if isinstance(params.get("phone"), str):
            tel = normalise_phone(params["phone"])
            if tel is None:
                raise ApiError(INVALID_PARAMS, "That is not a phone number.")
            return "tel:" + tel
        if isinstance(params.get("code"), str) and params["code"].strip():
            return "code:" + str(params["code"]).strip()
        raise ApiError(INVALID_PARAMS, "Give a card, a phone number or a club code.")

    def _lines(self, params: Json) -> list[Json]:
        if params.get("lines"):
            raw = params["lines"]
            if not isinstance(raw, list):
                raise ApiError(INVALID_PARAMS, "'lines' must be a list.")
            lines: list[Json] = []
            for item in raw:
                if not isinstance(item, dict):
                    raise ApiError(INVALID_PARAMS, "Each line must be an object.")
                qty = self._int(item, "qty", minimum=1)
                price = self._int(item, "unit_price")
                lines.append(
                    {
                        "sku": item.get("sku"),
                        "category": item.get("category"),
                        "qty": qty,
                        "unit_price": price,
                    }
                )
            return lines
        amount = self._int(params, "amount", minimum=1)
        return [{"sku": None, "category": None, "qty": 1, "unit_price": amount}]

    def _quote(self, params: Json) -> Json:
        lines = self._lines(params)
        token = self._str(params, "token", required=False)
        member: Json | None = None
        if token:
            member = self._find_member(token)
            if member is None:
                raise ApiError(UNKNOWN_MEMBER, "No member found for this card, phone or code.")
            if member["status"] != "active":
                raise ApiError(
                    MEMBER_NOT_ACTIVE, f"{member['name']}'s card is not active: no benefits."
                )
        gross = sum(int(line["qty"]) * int(line["unit_price"]) for line in lines)
        explain: list[Json] = []
        discounts: list[Json] = []
        for tier, bps in TIER_DISCOUNT_BPS.items():
            rule = f"{tier}-{bps // 100}"
            label = f"{tier.capitalize()} members: {bps // 100}% off"
            if member is not None and member["tier"] == tier:
                amount = gross * bps // 10000
                discounts.append({"rule": rule, "amount": amount})
                explain.append(
                    {
                        "rule": rule,
                        "kind": "discount",
                        "applied": True,
                        "amount": amount,
                        "label": label,
                        "reason": None,
                        "text": label,
                    }
                )
            else:
                reason = "no member" if member is None else f"tier is {member['tier']}"
                explain.append(
                    {
                        "rule": rule,
                        "kind": "discount",
                        "applied": False,
                        "label": label,
                        "reason": "tiers",
                        "text": f"{label} — {reason}",
                    }
                )
        net = gross - sum(d["amount"] for d in discounts)
        balances = self._usable_balances(member) if member else {}
        limits = self._redeem_limits(member, balances, net)
        redeemed_points = self._redeem_points(params.get("redeem_points"), limits)
        redeemed_value = redeemed_points * POINT_VALUE
        credits_used = self._use_credit(params.get("use_credit"), limits, net - redeemed_value)
        payable = net - redeemed_value - sum(c["amount"] for c in credits_used)
        points = payable // POINTS_PER_SPEND if member else 0
        points_earned = [{"rule": "base-points", "points": points}] if points else []
        if member is not None:
            explain.append(
                {
                    "rule": "base-points",
                    "kind": "points",
                    "applied": points > 0,
                    "points": points,
                    "label": "1 point per 1.00 paid",
                    "reason": None if points else "min_gross",
                    "text": f"1 point per 1.00 paid: {points} points",
                }
            )
        else:
            explain.append(
                {
                    "rule": "base-points",
                    "kind": "points",
                    "applied": False,
                    "label": "1 point per 1.00 paid",
                    "reason": "anonymous",
                    "text": "1 point per 1.00 paid — no member",
                }
            )
        quote_id = str(uuid.uuid4())
        made_at = self.clock()
        body: Json = {
            "quote_id": quote_id,
            "expires_at": (made_at + timedelta(seconds=QUOTE_TTL_SECONDS)).isoformat(),
            "lines": lines,
            "gross": gross,
            "discounts": discounts,
            "net": net,
            "redeemed_points": redeemed_points,
            "redeemed_value": redeemed_value,
            "credits_used": credits_used,
            "payable": payable,
            "points_earned": points_earned,
            "credits_earned": [],
            "lottery_entries": 0,
            "rules_version": self.rules_version,
            "explain": explain,
            "offline": not self.online,
            "member": self._summary(member, token) if member else None,
            "redeem_limits": limits,
            "currency": self.currency,
            "minor_units": self.minor_units,
        }
        self._state.quotes[quote_id] = _Quote(
            quote_id, made_at, body, member["member_id"] if member else None, token, lines
        )
        return body

    def _redeem_limits(self, member: Json | None, balances: dict[str, int], net: int) -> Json:
        if member is None:
            return {"points": None, "credits": [], "held_by": "no member"}
        share_cap = net * MAX_REDEEM_SHARE_BPS // 10000 // POINT_VALUE
        points_max = min(balances.get("points", 0), share_cap)
        held_by = "balance" if balances.get("points", 0) <= share_cap else "max_redeem_share"
        if not self.online:
            already = sum(
                e["redeemed_value"]
                for e in self._state.events
                if e["type"] == "sale" and e["member_id"] == member["member_id"] and e["offline"]
            )
            offline_left = max(0, OFFLINE_MAX_REDEEM_PER_DAY - already)
            if offline_left < points_max * POINT_VALUE:
                points_max = offline_left // POINT_VALUE
                held_by = "offline.max_redeem_value_per_member_day"
        if points_max < MIN_REDEEM:
            points_max = 0
        credits = []
        for kind in ACCEPTED_CREDITS:
            available = balances.get(kind, 0)
            if available > 0:
                credits.append(
                    {
                        "kind": kind,
                        "available": available,
                        "max": min(available, CREDIT_CAP_PER_INVOICE, net),
                    }
                )
        return {
            "points": {
                "available": balances.get("points", 0),
                "min": MIN_REDEEM,
                "max": points_max,
                "value": POINT_VALUE,
            },
            "credits": credits,
            "held_by": held_by,
        }

    @staticmethod
    def _redeem_points(asked: object, limits: Json) -> int:
        if asked in (None, 0):
            return 0
        points = limits.get("points")
        if points is None:
            raise ApiError(
                LIMIT, "Points can only be redeemed by an identified member.", {"limit": "member"}
            )
        if asked == "max":
            return int(points["max"])
        if not isinstance(asked, int) or isinstance(asked, bool) or asked < 0:
            raise ApiError(INVALID_PARAMS, "'redeem_points' must be a whole number or \"max\".")
        if asked < points["min"]:
            raise ApiError(
                LIMIT,
                f"At least {points['min']} points must be redeemed at once.",
                {"limit": "points.min_redeem", "min": points["min"]},
            )
        if asked > points["max"]:
            raise ApiError(
                LIMIT,
                f"At most {points['max']} points can be redeemed on this sale.",
                {"limit": "points.max", "max": points["max"]},
            )
        return asked

    @staticmethod
    def _use_credit(asked: object, limits: Json, left: int) -> list[Json]:
        if not asked:
            return []
        if not isinstance(asked, list) or not all(isinstance(k, str) for k in asked):
            raise ApiError(INVALID_PARAMS, "'use_credit' must be a list of credit kinds.")
        by_kind = {c["kind"]: c for c in limits.get("credits", [])}
        used: list[Json] = []
        invoice_left = CREDIT_CAP_PER_INVOICE
        for kind in asked:
            if kind not in by_kind:
                raise ApiError(
                    LIMIT,
                    "This member has no such credit to use here.",
                    {"limit": "credits.accepted", "kind": kind},
                )
            amount = min(by_kind[kind]["available"], left, invoice_left)
            if amount > 0:
                used.append({"kind": kind, "amount": amount})
                left -= amount
                invoice_left -= amount
        return used

    def _commit(self, params: Json) -> Json:
        staff = self._session_staff("sale.commit", params)
        quote_id = self._str(params, "quote_id")
        payment = params.get("payment", "cash")
        if payment not in PAYMENTS:
            raise ApiError(INVALID_PARAMS, "Payment must be cash, card or other.")
        quote = self._state.quotes.get(quote_id or "")
        if quote is None or (self.clock() - quote.made_at).total_seconds() > QUOTE_TTL_SECONDS:
            self._state.quotes.pop(quote_id or "", None)
            raise ApiError(QUOTE_EXPIRED, "The price has expired. Check the total again.")
        body = quote.body
        event = self._record(
            "sale",
            {
                "member_id": quote.member_id,
                "identified_by": quote.token,
                "lines": quote.lines,
                "gross": body["gross"],
                "discounts": body["discounts"],
                "redeemed_points": body["redeemed_points"],
                "redeemed_value": body["redeemed_value"],
                "credits_used": body["credits_used"],
                "payable": body["payable"],
                "points_earned": body["points_earned"],
                "credits_earned": [],
                "lottery_entries": 0,
                "rules_version": self.rules_version,
                "payment": payment,
            },
            staff["staff_id"],
        )
        del self._state.quotes[quote.quote_id]
        member = self._state.members.get(quote.member_id or "")
        receipt: Json = {
            "sale_id": event["id"],
            "seq": event["seq"],
            "at": event["at"],
            "staff_name": staff["name"],
            "offline": event["offline"],
            "member": self._summary(member, quote.token) if member else None,
            "lines": quote.lines,
            "gross": body["gross"],
            "discounts": [
                {
                    **d,
                    "label": next(
                        (x["label"] for x in body["explain"] if x["rule"] == d["rule"]), d["rule"]
                    ),
                }
                for d in body["discounts"]
            ],
            "net": body["net"],
            "redeemed_points": body["redeemed_points"],
            "redeemed_value": body["redeemed_value"],
            "credits_used": body["credits_used"],
            "payable": body["payable"],
            "payment": payment,
            "points_earned": sum(p["points"] for p in body["points_earned"]),
            "currency": self.currency,
            "minor_units": self.minor_units,
        }
        self._state.sales[event["id"]] = event
        return {"sale_id": event["id"], "seq": event["seq"], "receipt": receipt}

    def _refund(self, params: Json) -> Json:
        staff = self._session_staff("sale.refund", params)
        sale_id = self._str(params, "sale_id")
        reason = self._str(params, "reason")
        if sale_id not in self._state.sales:
            raise ApiError(NOT_FOUND, "No such sale on this terminal.")
        if any(e["type"] == "refund" and e["sale_id"] == sale_id for e in self._state.events):
            raise ApiError(CONFLICT, "This sale was already refunded.")
        event = self._record("refund", {"sale_id": sale_id, "reason": reason}, staff["staff_id"])
        return {"refund_id": event["id"]}

    def _mono(self) -> float:
        return self.clock().timestamp()

    def _staff_by_tap(self, token: str) -> tuple[Json, BadgeTap]:
        tap = self._taps.take(token, self._mono())
        staff = self._state.staff.get(tap.staff_id)
        if staff is None or tap.badge not in staff["badges"]:
            raise ApiError(NOT_FOUND, "This badge does not belong to any staff member.")
        return staff, tap

    def _login(self, params: Json) -> Json:
        token = params.get("token")
        if isinstance(token, str) and token:
            staff, _tap = self._staff_by_tap(token)
        else:
            staff_id = self._str(params, "staff_id")
            pin = params.get("pin")
            found = self._state.staff.get(staff_id or "")
            # One message for both, so the till does not tell which staff ids exist.
            if found is None or pin != found["pin"]:
                raise ApiError(
                    NOT_ALLOWED, "Wrong staff number or PIN.", {"reason": "bad_credentials"}
                )
            staff = found
        session = uuid.uuid4().hex
        self._state.sessions[session] = staff["staff_id"]
        return {
            "session": session,
            "staff_id": staff["staff_id"],
            "name": staff["name"],
            "role": staff["role"],
        }

    def _logout(self, params: Json) -> bool:
        session = params.get("session")
        return (
            self._state.sessions.pop(session, None) is not None
            if isinstance(session, str)
            else False
        )

    def _attendance(self, day: date) -> list[Json]:
        start, end = self._local_day(day)
        rows: dict[str, Json] = {}
        for event in self._state.events:
            if event["type"] != "attendance":
                continue
            at = datetime.fromisoformat(event["at"])
            if not start <= at < end:
                continue
            staff = self._state.staff[event["staff_id"]]
            row = rows.setdefault(
                staff["staff_id"],
                {
                    "staff_id": staff["staff_id"],
                    "name": staff["name"],
                    "entries": [],
                    "present": False,
                    "minutes": 0,
                },
            )
            row["entries"].append({"action": event["action"], "at": event["at"]})
            row["present"] = event["action"] == "in"
        now = self._now()
        for row in rows.values():
            minutes = 0.0
            opened: datetime | None = None
            for entry in row["entries"]:
                at = datetime.fromisoformat(entry["at"])
                if entry["action"] == "in":
                    opened = at
                elif opened is not None:
                    minutes += (at - opened).total_seconds() / 60
                    opened = None
            if opened is not None:
                minutes += (min(now, end) - opened).total_seconds() / 60
            row["minutes"] = int(minutes)
        return sorted(rows.values(), key=lambda r: str(r["name"]))

    def _clock(self, params: Json) -> Json:
        action = params.get("action")
        if action not in ("in", "out"):
            raise ApiError(INVALID_PARAMS, "'action' must be in or out.")
        token = params.get("token")
        tap: BadgeTap | None = None
        correction: dict[str, Any] = {}
        if isinstance(token, str) and token:
            staff, tap = self._staff_by_tap(token)
        else:
            staff_id = self._str(params, "staff_id")
            if params.get("pin") is None:
                # As the agent: a PIN or a tap, else a manager's correction with a reason.
                if params.get("session") is None:
                    raise ApiError(INVALID_PARAMS, "Tap your badge or enter your PIN to clock "
                                   "in or out.", {"param": "pin", "reason": "pin_or_badge"})
                manager = self._session_staff("staff.clock", params)
                reason = str(params.get("reason") or "").strip()
                if not reason:
                    raise ApiError(INVALID_PARAMS, "A manager's correction needs a reason.",
                                   {"param": "reason"})
                correction = {"corrected_by": manager["staff_id"], "reason": reason}
            if staff_id not in self._state.staff:
                raise ApiError(NOT_FOUND, "No staff member has this number.")
            staff = self._state.staff[staff_id or ""]
            if params.get("pin") is not None and params.get("pin") != staff["pin"]:
                raise ApiError(NOT_ALLOWED, "The staff id or PIN is not right.",
                               {"reason": "bad_credentials"})
        present = {r["staff_id"] for r in self._attendance(self._now().date()) if r["present"]}
        conflict = None
        if action == "in" and staff["staff_id"] in present:
            conflict = f"{staff['name']} is already clocked in."
        if action == "out" and staff["staff_id"] not in present:
            conflict = f"{staff['name']} is not clocked in."
        if conflict is not None:
            if tap is not None:  # nothing recorded: the tap may be used once more
                self._taps.give_back(tap, self._mono())
            raise ApiError(CONFLICT, conflict)
        extra = correction if tap is None else {}
        event = self._record(
            "attendance",
            {"action": action, "identified_by": tap.badge if tap else None, **extra},
            staff["staff_id"],
        )
        event["staff_id"] = staff["staff_id"]
        return {
            "event_id": event["id"],
            "at": event["at"],
            "staff_id": staff["staff_id"],
            "name": staff["name"],
            **extra,
        }

    def _money_event(self, event_type: str, params: Json) -> Json:
        method = "expense.add" if event_type == "expense" else "cash_receipt.add"
        staff = self._session_staff(method, params)
        amount = self._int(params, "amount", minimum=1)
        category = self._str(params, "category")
        note = params.get("note") or ""
        if not isinstance(note, str):
            raise ApiError(INVALID_PARAMS, "'note' must be text.")
        event = self._record(
            event_type, {"amount": amount, "category": category, "note": note}, staff["staff_id"]
        )
        return {"event_id": event["id"]}

    def _day_summary(self, params: Json) -> Json:
        day = self._date_param(params)
        start, end = self._local_day(day)
        todays = [e for e in self._state.events if start <= datetime.fromisoformat(e["at"]) < end]
        sales = [e for e in todays if e["type"] == "sale"]

        def totals(rows: list[Json]) -> Json:
            return {
                "count": len(rows),
                "gross": sum(r["gross"] for r in rows),
                "discounts": sum(d["amount"] for r in rows for d in r["discounts"]),
                "payable": sum(r["payable"] for r in rows),
                "points_given": sum(p["points"] for r in rows for p in r["points_earned"]),
                "points_taken": sum(r["redeemed_points"] for r in rows),
                "credit_used": sum(c["amount"] for r in rows for c in r["credits_used"]),
            }

        per_staff = []
        for staff_id in sorted({str(s["staff_id"]) for s in sales}):
            row = totals([s for s in sales if s["staff_id"] == staff_id])
            row.update(staff_id=staff_id, name=self._state.staff[staff_id]["name"])
            per_staff.append(row)

        def money_rows(kind: str) -> list[Json]:
            return [
                {
                    "event_id": e["id"],
                    "at": e["at"],
                    "amount": e["amount"],
                    "category": e["category"],
                    "note": e["note"],
                    "staff_id": e["staff_id"],
                }
                for e in todays
                if e["type"] == kind
            ]

        expenses = money_rows("expense")
        receipts = money_rows("cash_receipt")
        income = sum(r["amount"] for r in receipts)
        spent = sum(r["amount"] for r in expenses)
        summary: Json = {
            "date": day.isoformat(),
            "currency": self.currency,
            "minor_units": self.minor_units,
            "sales": totals(sales),
            "per_staff": per_staff,
            "refunds": sum(1 for e in todays if e["type"] == "refund"),
            "expenses": expenses,
            "cash_receipts": receipts,
            "totals": {"income": income, "expenses": spent, "net": income - spent},
            "attendance": self._attendance(day),
        }
        # local-api.md gives day.summary no session; the fake accepts one and
        # leaves out the per-staff figures for a cashier (a contract gap).
        session = params.get("session")
        if isinstance(session, str):
            staff = self._session_staff("day.summary", params)
            if staff["role"] != "manager":
                summary["per_staff"] = None
        return summary

    def _date_param(self, params: Json) -> date:
        raw = params.get("date")
        if raw is None:
            return self._now().date()
        try:
            return date.fromisoformat(str(raw))
        except ValueError:
            raise ApiError(INVALID_PARAMS, "'date' must be YYYY-MM-DD.") from None

    # ------------------------------------------------------------ appointments

    def _customer(self, params: Json) -> tuple[str, str]:
        """(customer as recorded, a name to show) from member_id, token or phone."""
        customer = params.get("customer")
        if isinstance(customer, str) and customer:
            if customer.startswith("tel:"):
                member = self._find_member(customer)
                return customer, member["name"] if member else customer[4:]
            member = self._state.members.get(customer)
            if member is None:
                raise ApiError(UNKNOWN_MEMBER, "No member has this number.")
            return customer, str(member["name"])
        phone = params.get("phone")
        if isinstance(phone, str) and phone.strip():
            tel = normalise_phone(phone)
            if tel is None:
                raise ApiError(INVALID_PARAMS, "That is not a phone number.")
            member = self._find_member("tel:" + tel)
            if member is not None:
                return str(member["member_id"]), str(member["name"])
            return "tel:" + tel, tel
        raise ApiError(INVALID_PARAMS, "Give the customer: a member or a phone number.")

    def _start(self, params: Json) -> datetime:
        raw = params.get("start")
        try:
            start = datetime.fromisoformat(str(raw))
        except ValueError:
            raise ApiError(INVALID_PARAMS, "'start' must be a date and time.") from None
        if start.tzinfo is None:
            raise ApiError(INVALID_PARAMS, "'start' needs a UTC offset.")
        return start

    def _check_overlap(self, candidate: Json) -> None:
        start = datetime.fromisoformat(candidate["start"])
        end = start + timedelta(minutes=candidate["minutes"])
        for other in self._state.appointments.values():
            if (
                other["appointment_id"] == candidate["appointment_id"]
                or other["cancelled"]
                or other["staff_id"] != candidate["staff_id"]
            ):
                continue
            o_start = datetime.fromisoformat(other["start"])
            o_end = o_start + timedelta(minutes=other["minutes"])
            if start < o_end and o_start < end:
                local = o_start.astimezone(self.tz)
                raise ApiError(
                    CONFLICT,
                    (
                        f"{other['staff_name']} is already booked {local:%H:%M}–"
                        f"{o_end.astimezone(self.tz):%H:%M} ({other['service']} with "
                        f"{other['customer_name']})."
                    ),
                    {"appointment_id": other["appointment_id"]},
                )

    def _appointment_create(self, params: Json) -> Json:
        staff = self._session_staff("appointment.create", params)
        customer, customer_name = self._customer(params)
        with_id = self._str(params, "staff_id")
        if with_id not in self._state.staff:
            raise ApiError(NOT_FOUND, "No staff member has this number.")
        minutes = self._int(params, "minutes", minimum=5)
        appointment: Json = {
            "appointment_id": str(uuid.uuid4()),
            "customer": customer,
            "customer_name": customer_name,
            "service": self._str(params, "service"),
            "staff_id": with_id,
            "staff_name": self._state.staff[with_id or ""]["name"],
            "start": self._start(params).isoformat(),
            "minutes": minutes,
            "note": str(params.get("note") or ""),
            "cancelled": False,
        }
        self._check_overlap(appointment)
        self._record(
            "appointment", {"action": "create", **self._wire(appointment)}, staff["staff_id"]
        )
        self._state.appointments[appointment["appointment_id"]] = appointment
        return {"appointment_id": appointment["appointment_id"]}

    @staticmethod
    def _wire(appointment: Json) -> Json:
        keys = ("appointment_id", "customer", "service", "staff_id", "start", "minutes", "note")
        return {k: appointment[k] for k in keys}

    def _appointment(self, params: Json) -> Json:
        appointment_id = self._str(params, "appointment_id")
        found = self._state.appointments.get(appointment_id or "")
        if found is None or found["cancelled"]:
            raise ApiError(NOT_FOUND, "No such appointment (it may have been cancelled).")
        return found

    def _appointment_update(self, params: Json) -> Json:
        staff = self._session_staff("appointment.update", params)
        current = self._appointment(params)
        updated = dict(current)
        if "start" in params:
            updated["start"] = self._start(params).isoformat()
        if "minutes" in params:
            updated["minutes"] = self._int(params, "minutes", minimum=5)
        if "staff_id" in params:
            if params["staff_id"] not in self._state.staff:
                raise ApiError(NOT_FOUND, "No staff member has this number.")
            updated["staff_id"] = params["staff_id"]
            updated["staff_name"] = self._state.staff[params["staff_id"]]["name"]
        for key in ("service", "note"):
            if isinstance(params.get(key), str):
                updated[key] = params[key]
        if "customer" in params or "phone" in params:
            updated["customer"], updated["customer_name"] = self._customer(params)
        self._check_overlap(updated)
        self._record("appointment", {"action": "update", **self._wire(updated)}, staff["staff_id"])
        current.update(updated)
        return {"appointment_id": current["appointment_id"]}

    def _appointment_cancel(self, params: Json) -> Json:
        staff = self._session_staff("appointment.cancel", params)
        current = self._appointment(params)
        self._record("appointment", {"action": "cancel", **self._wire(current)}, staff["staff_id"])
        current["cancelled"] = True
        return {"appointment_id": current["appointment_id"]}

    def _appointment_list(self, params: Json) -> list[Json]:
        day = self._date_param(params)
        start, end = self._local_day(day)
        rows = [
            {k: v for k, v in a.items() if k != "cancelled"}
            for a in self._state.appointments.values()
            if not a["cancelled"] and start <= datetime.fromisoformat(a["start"]) < end
        ]
        return sorted(rows, key=lambda a: (a["start"], a["staff_name"]))

    # ----------------------------------------------------------------- members

    def _enrol(self, params: Json) -> Json:
        staff = self._session_staff("member.enrol", params)
        name = self._str(params, "name")
        phone = self._str(params, "phone")
        tel = normalise_phone(phone or "")
        if tel is None:
            raise ApiError(INVALID_PARAMS, "That is not a phone number.")
        identifiers = ["tel:" + tel]
        existing = self._find_member("tel:" + tel)
        if existing is not None:
            raise ApiError(
                CONFLICT,
                f"This phone number already belongs to {existing['name']}.",
                {"member_id": existing["member_id"]},
            )
        token = self._str(params, "token", required=False)
        if token:
            holder = self._find_member(token)
            if holder is not None:
                raise ApiError(
                    CONFLICT,
                    f"This card is already linked to {holder['name']}.",
                    {"member_id": holder["member_id"]},
                )
            identifiers.append(token)
        referred_by = self._str(params, "referred_by", required=False)
        if referred_by and referred_by not in self._state.members:
            raise ApiError(UNKNOWN_MEMBER, "The referring member was not found.")
        member_id = f"local:{uuid.uuid4()}"
        self._record(
            "member_enrol",
            {
                "member_id": member_id,
                "name": name,
                "identifiers": identifiers,
                "referred_by": referred_by,
            },
            staff["staff_id"],
        )
        self._state.members[member_id] = {
            "member_id": member_id,
            "name": name,
            "status": "active",
            "tier": "bronze",
            "identifiers": identifiers,
            "balances": {"points": 0},
        }
        return {"member_id": member_id}


__all__ = ["ROLE_POLICY", "FakeLocalApi", "normalise_phone"]
