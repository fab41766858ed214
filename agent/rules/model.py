"""The plain data a quote is computed from and the quote itself.

Everything here is a value: no I/O, no clock. Money is integers in the club
currency's minor unit; points and entries are integers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeGuard

from agent.errors import RulesError

RedeemRequest = int | Literal["max"] | None


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True, slots=True)
class Line:
    """One basket line: ``qty`` × ``unit_price`` (minor units)."""

    sku: str | None
    category: str | None
    qty: int
    unit_price: int

    @property
    def total(self) -> int:
        """``qty × unit_price``."""
        return self.qty * self.unit_price

    @classmethod
    def from_dict(cls, data: object, *, where: str = "line") -> Line:
        """A line from its protocol form ``{sku, category, qty, unit_price}``.

        A bare integer is one line of that amount with no sku or category.
        Raises :class:`RulesError` naming ``where`` and the key.
        """
        if _is_int(data):
            amount = int(data)
            if amount < 0:
                raise RulesError(f"{where}: an amount must not be negative, not {amount}")
            return cls(None, None, 1, amount)
        if not isinstance(data, Mapping):
            raise RulesError(f"{where}: must be an object {{sku, category, qty, unit_price}} "
                             f"or a bare amount, not {type(data).__name__}")
        sku = data.get("sku")
        category = data.get("category")
        for key, value in (("sku", sku), ("category", category)):
            if value is not None and not isinstance(value, str):
                raise RulesError(f"{where}: {key!r} must be a string or null")
        qty = data.get("qty", 1)
        if not _is_int(qty) or qty < 0:
            raise RulesError(f"{where}: 'qty' must be a whole number ≥ 0, not {qty!r}")
        price = data.get("unit_price")
        if not _is_int(price) or price < 0:
            raise RulesError(f"{where}: 'unit_price' must be a whole number of minor units ≥ 0, "
                             f"not {price!r}")
        return cls(sku, category, qty, price)

    def to_dict(self) -> dict[str, Any]:
        """The protocol form of the line."""
        return {"sku": self.sku, "category": self.category, "qty": self.qty,
                "unit_price": self.unit_price}


def lines_from_json(data: object) -> list[Line]:
    """Basket lines from a list of line objects, ``{"lines": [...]}`` or a bare amount."""
    if isinstance(data, Mapping) and "lines" in data:
        data = data["lines"]
    if _is_int(data):
        return [Line.from_dict(data)]
    if not isinstance(data, list):
        raise RulesError("a basket must be a list of lines, {\"lines\": [...]} or a bare amount")
    return [Line.from_dict(item, where=f"line {i + 1}") for i, item in enumerate(data)]


@dataclass(frozen=True, slots=True)
class QuoteRequest:
    """What is being sold and what the customer wants to spend.

    ``redeem_points``: a number of points, ``"max"`` for the most allowed, or None.
    ``use_credit``: credit balance kinds to spend, in the order asked; each takes as
    much as its balance, what is still payable and the caps allow.
    """

    lines: Sequence[Line]
    token_kind: str | None = None
    bin6: str | None = None
    redeem_points: RedeemRequest = None
    use_credit: Sequence[str] = ()
    # Promo, coupon and voucher codes scanned or typed for this sale.
    codes: Sequence[str] = ()
    # Reward rules (kind ``reward``) the customer takes, paid in points, in this order.
    rewards: Sequence[str] = ()

    def __post_init__(self) -> None:
        if isinstance(self.codes, str) or not all(isinstance(c, str) for c in self.codes):
            raise RulesError("codes must be a list of strings")
        if isinstance(self.rewards, str) or not all(isinstance(r, str) for r in self.rewards):
            raise RulesError("rewards must be a list of rule ids")
        rp = self.redeem_points
        if rp is not None and rp != "max" and (not _is_int(rp) or int(rp) < 0):
            raise RulesError(f"redeem_points must be a whole number ≥ 0 or 'max', not {rp!r}")


@dataclass(frozen=True, slots=True)
class QuoteContext:
    """The terminal's situation, passed in so the core needs no clock or store.

    ``redeemed_today`` is the value (minor units) of points this member redeemed
    today (club-local day) at this terminal, ``credit_used_today`` the credit
    spent; both count toward the credit day cap (credit only) and the offline
    day limit (their sum).
    """

    at: dt.datetime
    offline: bool = False
    redeemed_today: int = 0
    credit_used_today: int = 0
    pending_count: int = 0
    oldest_pending_age_s: float | None = None
    # What the store counts for limits, budgets and codes (docs/rules.md, "Limits").
    # This member's sales at this terminal that the member record does not count yet.
    pending_purchases: int = 0
    # rule id -> local dates ("YYYY-MM-DD") of this member's uses of the rule at this
    # terminal that the member record's ``rule_uses`` does not hold yet.
    member_uses: Mapping[str, Sequence[str]] = field(default_factory=dict)
    # rule id -> local dates of every use of the rule at this terminal (any customer).
    store_uses: Mapping[str, Sequence[str]] = field(default_factory=dict)
    # rule id -> what the rule gave at this terminal so far (minor units or points).
    budget_used: Mapping[str, int] = field(default_factory=dict)
    # Single-use codes already used, as this terminal knows (its events).
    used_codes: frozenset[str] = frozenset()
    # Coupons this terminal issued and the member record does not hold yet:
    # ``{"code", "rule", "expires", "member_id"}``.
    coupons: Sequence[Mapping[str, Any]] = ()
    # Makes issued coupon codes unique (e.g. the quote id); None: no coupon is issued.
    coupon_seed: str | None = None
    # The member may earn but not redeem (points, credit, rewards): another merchant's
    # member whose record the club has not confirmed lately (docs/fleet.md).
    earn_only: bool = False

    def __post_init__(self) -> None:
        if self.at.tzinfo is None or self.at.utcoffset() is None:
            raise RulesError("the quote time must carry a UTC offset")


class MemberView:
    """A member record as the rules see it.

    Built from the protocol's member record; ``balances`` (when given) replaces
    the record's cached balances with the usable ones (cached plus this terminal's
    own unapplied events), which is what may be spent.
    """

    __slots__ = ("_expiring", "balance_lots", "balances", "birth_month_day", "birthday", "coupons",
                 "groups", "last_purchase", "member_id", "purchase_count", "record",
                 "referred_by", "rule_uses", "spend_30d", "stats", "status", "tier",
                 "used_codes")

    def __init__(self, record: Mapping[str, Any],
                 balances: Mapping[str, int] | None = None) -> None:
        if not isinstance(record, Mapping):
            raise RulesError("a member record must be a JSON object")
        self.record = record
        mid = record.get("member_id")
        self.member_id: str | None = mid if isinstance(mid, str) else None
        status = record.get("status", "active")
        self.status: str = status if isinstance(status, str) else "unknown"
        tier = record.get("tier")
        self.tier: str | None = tier if isinstance(tier, str) else None
        groups = record.get("groups")
        self.groups: frozenset[str] = (
            frozenset(g for g in groups if isinstance(g, str)) if isinstance(groups, list)
            else frozenset())
        raw_bal = balances if balances is not None else record.get("balances")
        bal: dict[str, int] = {}
        if isinstance(raw_bal, Mapping):
            for key, value in raw_bal.items():
                if isinstance(key, str) and _is_int(value):
                    bal[key] = int(value)
        self.balances: Mapping[str, int] = bal
        self.birthday: dt.date | None = None
        self.birth_month_day: tuple[int, int] | None = None
        bday = record.get("birthday")
        if isinstance(bday, str):
            # A birthday with an unknown year ("--03-21") still has a month and day.
            try:
                month, day = int(bday[-5:-3]), int(bday[-2:])
                dt.date(2000, month, day)  # 2000 is a leap year: 29 Feb is valid
                self.birth_month_day = (month, day)
            except ValueError:
                self.birth_month_day = None
        stats = record.get("stats")
        stats = stats if isinstance(stats, Mapping) else {}
        self.stats: Mapping[str, Any] = stats
        ref = record.get("referred_by")
        self.referred_by: str | None = ref if isinstance(ref, str) and ref else None
        self.rule_uses: Mapping[str, Any] = _mapping(record.get("rule_uses"))
        used = record.get("used_codes")
        self.used_codes: frozenset[str] = (
            frozenset(c.strip().upper() for c in used if isinstance(c, str))
            if isinstance(used, list) else frozenset())
        coupons = record.get("coupons")
        self.coupons: list[Mapping[str, Any]] = (
            [c for c in coupons if isinstance(c, Mapping)] if isinstance(coupons, list) else [])
        self.balance_lots: Mapping[str, Any] = _mapping(record.get("balance_lots"))
        self._expiring: dict[str, list[tuple[str, int]]] = {}
        pc = stats.get("purchase_count")
        self.purchase_count: int | None = int(pc) if _is_int(pc) else None
        sp = stats.get("spend_30d")
        self.spend_30d: int | None = int(sp) if _is_int(sp) else None
        lp = stats.get("last_purchase")
        self.last_purchase: dt.date | None = None
        if isinstance(lp, str):
            try:
                self.last_purchase = dt.date.fromisoformat(lp[:10])
            except ValueError:
                self.last_purchase = None

    def spend_days(self, days: int) -> int | None:
        """``stats.spend_<days>d`` (``spend_30d`` for 30), None when the record lacks it."""
        value = self.stats.get(f"spend_{days}d")
        return int(value) if _is_int(value) else None

    def expiring(self, kind: str) -> list[tuple[str, int]]:
        """``balance_lots[kind]`` as (last valid local date, amount), soonest first."""
        known = self._expiring.get(kind)
        if known is not None:
            return known
        lots = self.balance_lots.get(kind)
        out: list[tuple[str, int]] = []
        if isinstance(lots, list):
            for lot in lots:
                if (isinstance(lot, Mapping) and isinstance(lot.get("expires"), str)
                        and _is_int(lot.get("amount")) and lot["amount"] > 0):
                    out.append((lot["expires"][:10], int(lot["amount"])))
        out.sort()
        self._expiring[kind] = out
        return out

    @property
    def active(self) -> bool:
        """Only active members get benefits."""
        return self.status == "active"

    def __repr__(self) -> str:
        return f"MemberView({self.member_id!r}, status={self.status!r}, tier={self.tier!r})"


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


@dataclass(slots=True)
class Quote:
    """The computed sale. :meth:`to_dict` gives the protocol ``sale`` keys + ``explain``."""

    gross: int
    discounts: list[tuple[str, int]]
    net: int
    redeemed_points: int
    redeemed_value: int
    credits_used: list[tuple[str, int]]
    payable: int
    points_earned: list[tuple[str, int]]
    credits_earned: list[tuple[str, str, int, str | None]]
    lottery_entries: int
    rules_version: int | None
    explain: list[dict[str, Any]] = field(default_factory=list)
    line_nets: list[int] = field(default_factory=list)
    limits_held: list[str] = field(default_factory=list)
    # Issue 21's effects; each is left out of to_dict() when empty, so sales without
    # them keep the exact shape of version 1.
    fees: list[tuple[str, int]] = field(default_factory=list)
    referral_rewards: list[tuple[str, str, str, int, str | None]] = field(default_factory=list)
    coupons_issued: list[tuple[str, str, str, str | None]] = field(default_factory=list)
    codes_used: list[tuple[str, str, bool]] = field(default_factory=list)
    rewards: list[tuple[str, int]] = field(default_factory=list)
    uses: list[tuple[str, int]] = field(default_factory=list)

    @property
    def total_points(self) -> int:
        """All points earned, multiplier included."""
        return sum(p for _, p in self.points_earned)

    def to_dict(self) -> dict[str, Any]:
        """The keys of the protocol ``sale`` event computed by the rules, plus ``explain``."""
        return {
            "gross": self.gross,
            "discounts": [{"rule": r, "amount": a} for r, a in self.discounts],
            "net": self.net,
            "redeemed_points": self.redeemed_points,
            "redeemed_value": self.redeemed_value,
            "credits_used": [{"kind": k, "amount": a} for k, a in self.credits_used],
            "payable": self.payable,
            "points_earned": [{"rule": r, "points": p} for r, p in self.points_earned],
            "credits_earned": [{"rule": r, "kind": k, "amount": a, "expires": e}
                               for r, k, a, e in self.credits_earned],
            "lottery_entries": self.lottery_entries,
            "rules_version": self.rules_version,
            **self.extra_keys(),
            "explain": self.explain,
        }

    def extra_keys(self) -> dict[str, Any]:
        """The sale keys added by issue 21, only those with rows."""
        out: dict[str, Any] = {}
        if self.rewards:
            out["rewards"] = [{"rule": r, "points": p} for r, p in self.rewards]
        if self.codes_used:
            out["codes_used"] = [{"rule": r, "code": c, "single_use": s}
                                 for r, c, s in self.codes_used]
        if self.fees:
            out["fees"] = [{"rule": r, "amount": a} for r, a in self.fees]
        if self.referral_rewards:
            out["referral_rewards"] = [
                {"rule": r, "member_id": m, "kind": k, "amount": a, "expires": e}
                for r, m, k, a, e in self.referral_rewards]
        if self.coupons_issued:
            out["coupons_issued"] = [{"rule": r, "code": c, "for_rule": f, "expires": e}
                                     for r, c, f, e in self.coupons_issued]
        if self.uses:
            out["uses"] = [{"rule": r, "amount": a} for r, a in self.uses]
        return out
