"""What a rule's conditions look at, computed once per quote from the sale.

Pure: the local time, the member and the terminal's counters are passed in.
"""

from __future__ import annotations

import datetime as dt
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from agent.rules.model import MemberView, QuoteContext, QuoteRequest
from agent.rules.rule import normalise_code

if TYPE_CHECKING:
    from agent.rules.bundle import Bundle


class Facts:
    """The sale as conditions see it: member, time, lines by sku and category, codes."""

    __slots__ = ("_category_lines", "_sku_lines", "at", "balances", "bin6", "birthday_keys",
                 "bundle", "categories",
                 "codes", "ctx", "date", "gross", "last_targets", "lines", "member", "member_note",
                 "points_balance", "purchases", "seconds", "skus", "token_kind",
                 "used_codes", "weekday")

    def __init__(self, bundle: Bundle, request: QuoteRequest, member: MemberView | None,
                 local: dt.datetime, gross: int, ctx: QuoteContext | None = None):
        self.bundle = bundle
        self.ctx = ctx if ctx is not None else QuoteContext(local)
        self.codes = [normalise_code(c) for c in request.codes] if request.codes else []
        self.at = local
        self.lines = request.lines
        self.gross = gross
        # The target lines of the rule whose conditions were checked last (set by the
        # lines check, so that they are not computed twice).
        self.last_targets: list[int] = []
        # Each line's sku and category, read in C; the maps from them to their lines
        # are built when a rule first asks which lines it targets.
        self.skus: list[str | None] = list(map(_SKU, self.lines))
        self.categories: list[str | None] = list(map(_CATEGORY, self.lines))
        self._sku_lines: dict[str, list[int]] | None = None
        self._category_lines: dict[str, list[int]] | None = None
        self.token_kind = request.token_kind
        self.bin6 = request.bin6
        m = self.member = member if member is not None and member.active else None
        if member is None:
            self.member_note = "no member identified"
        elif m is None:
            self.member_note = f"member is {member.status.replace('_', ' ')}, not active"
        else:
            self.member_note = ""
        self.date = local.date()
        self.weekday = local.weekday()
        self.seconds = local.hour * 3600 + local.minute * 60 + local.second
        md = m.birth_month_day if m is not None else None
        self.birthday_keys: list[str] = []
        if md is not None and md[0] == local.month:
            self.birthday_keys.append("month")
            if is_birthday(md, self.date):
                self.birthday_keys.append("day")
        # Purchases before this sale: the record's count plus this terminal's own
        # sales the record does not count yet (a missing count is 0).
        self.purchases = ((m.purchase_count or 0) if m is not None else 0) \
            + self.ctx.pending_purchases
        # What the member may spend of each balance today (expired lots left out).
        self.balances: dict[str, int] = spendable_balances(m, self.date) if m is not None else {}
        self.points_balance: int = self.balances.get("points", 0)
        used = self.ctx.used_codes
        self.used_codes = used | m.used_codes if m is not None and m.used_codes else used

    @property
    def sku_lines(self) -> dict[str, list[int]]:
        """sku -> the indexes of its lines, in basket order."""
        if self._sku_lines is None:
            self._sku_lines = _lines_by(self.skus)
        return self._sku_lines

    @property
    def category_lines(self) -> dict[str, list[int]]:
        """category -> the indexes of its lines, in basket order."""
        if self._category_lines is None:
            self._category_lines = _lines_by(self.categories)
        return self._category_lines

    def index_values(self) -> dict[str, list[Any]]:
        """The sale's value for each indexed dimension (see ``index.index_keys``)."""
        m = self.member
        return {
            "member": [True] if m is not None else [],
            "tier": [m.tier] if m is not None and m.tier is not None else [],
            "group": list(m.groups) if m is not None else [],
            "birthday": self.birthday_keys,
            "weekday": [self.weekday],
            "hour": [self.seconds // 3600],
            "week": [self.date.toordinal() // 7],
            "sku": self.skus,  # None and repeats are harmless: no bucket, or the same
            "category": self.categories,
            "token": [self.token_kind] if self.token_kind is not None else [],
            "bin": [self.bin6] if self.bin6 is not None else [],
            "code": self.codes,
        }


_SKU = attrgetter("sku")
_CATEGORY = attrgetter("category")


def _lines_by(keys: list[str | None]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        if key is not None:
            if key in out:
                out[key].append(i)
            else:
                out[key] = [i]
    return out


def is_birthday(md: tuple[int, int], date: dt.date) -> bool:
    """Is ``date`` the (month, day) birthday? 29 February counts on 28 February in a
    year without one."""
    month, day = md
    if (month, day) == (date.month, date.day):
        return True
    if (month, day) == (2, 29) and (date.month, date.day) == (2, 28):
        try:
            dt.date(date.year, 2, 29)
        except ValueError:
            return True
    return False


def spendable(member: MemberView, kind: str, today: dt.date) -> int:
    """The member's balance of ``kind`` less the lots that expired before ``today``.

    ``balance_lots`` says which parts of the balance expire when (the last valid
    local date). A lot expired before today is not spendable; the balance given
    (cached plus this terminal's events) is otherwise what may be spent.
    """
    balance = max(0, member.balances.get(kind, 0))
    if not member.balance_lots:
        return balance
    day = today.isoformat()
    expired = sum(a for expires, a in member.expiring(kind) if expires < day)
    return max(0, balance - expired)


def spendable_balances(member: MemberView, today: dt.date) -> dict[str, int]:
    """:func:`spendable` of every balance the member has, computed at once."""
    out = {k: v if v > 0 else 0 for k, v in member.balances.items()}
    if member.balance_lots:
        day = today.isoformat()
        for kind, balance in out.items():
            expired = sum(a for expires, a in member.expiring(kind) if expires < day)
            if expired:
                out[kind] = max(0, balance - expired)
    return out


def period_key(day: str, period: str) -> str:
    """The period a local date falls in: the same key means the same period."""
    if period == "day":
        return day[:10]
    if period == "month":
        return day[:7]
    if period == "year":
        return day[:4]
    if period == "week":
        try:
            y, w, _ = dt.date.fromisoformat(day[:10]).isocalendar()
        except ValueError:
            return ""
        return f"{y}-W{w:02d}"
    return ""  # ever


def uses_in_period(dates: object, today: dt.date, period: str) -> int:
    """How many of ``dates`` (local "YYYY-MM-DD") fall in today's ``period``."""
    if not isinstance(dates, list | tuple):
        return 0
    key = period_key(today.isoformat(), period)
    return sum(1 for d in dates if isinstance(d, str) and period_key(d, period) == key)
