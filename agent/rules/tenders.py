"""How a sale was paid (protocol 1.1 ``tenders``): pure checks and arithmetic.

A sale records ``tenders`` ``[{method, amount}]`` summing exactly to ``payable``. At
the till the cashier may hand over more cash than is due: the cash tendered is then
given, the change is ``tendered − payable`` (never more than the cash given), and
the recorded cash tender is what stays in the drawer. ``payment``, v1's single key,
is kept for v1 clubs: the method when one method paid (``credit`` and ``voucher``,
unknown to v1, show as ``other``), ``other`` when several did.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: Tender methods (protocol 1.1; ``account`` 1.3: charged to a house account).
TENDER_METHODS = ("cash", "card", "credit", "voucher", "other", "account")
#: (1.3) Tenders spending a stored balance: a member's ``value.<x>`` (``stored_value``,
#: with ``kind``) or a gift card (``gift_card``, with ``card_id``); see
#: agent/rules/stored_value.py. They are never given back as change.
VALUE_TENDER_METHODS = ("stored_value", "gift_card")
#: v1's ``payment`` values.
V1_PAYMENTS = ("cash", "card", "other")
#: Most tenders one sale may be split over.
MAX_TENDERS = 8
_MAX_AMOUNT = 2**53 - 1


class TenderRefused(ValueError):
    """Tenders that cannot pay the sale; ``reason`` is machine-readable."""

    def __init__(self, reason: str, message: str, **params: Any):
        super().__init__(message)
        self.reason = reason
        self.params = params


@dataclass(frozen=True)
class Settlement:
    """What a sale records and prints about its payment."""

    tenders: tuple[tuple[str, int], ...]  # summing to payable
    payment: str  # v1's value
    tendered: int  # what the customer handed over
    change_due: int
    #: (1.3) The house account the ``account`` tender charges, and the account card's
    #: token when the card was shown (then any bearer may buy on it).
    account_id: str | None = None
    account_token: str | None = None

    def wire(self) -> list[dict[str, Any]]:
        """The sale event's ``tenders``."""
        return [{"method": m, "amount": a, **(self._account_keys() if m == "account" else {})}
                for m, a in self.tenders]

    def _account_keys(self) -> dict[str, Any]:
        keys: dict[str, Any] = {"account_id": self.account_id}
        if self.account_token is not None:
            keys["identified_by"] = self.account_token
        return keys

    def on_account(self) -> int:
        """(1.3) What this settlement charges to the house account."""
        return sum(a for m, a in self.tenders if m == "account")


_MAX_ACCOUNT_ID = 100


def tender_account(raw: Any) -> str | None:
    """(1.3) The ``account_id`` of the ``account`` tender of ``raw`` (already read by
    :func:`parse_tenders`), or None when none is on account. One account per sale.
    Raises TenderRefused ``bad_account`` (missing, not a short string, or two)."""
    found: set[str] = set()
    for item in raw:
        if item.get("method") != "account":
            continue
        account = item.get("account_id")
        if not isinstance(account, str) or not 1 <= len(account) <= _MAX_ACCOUNT_ID \
                or not account.isprintable():
            raise TenderRefused("bad_account", "A tender on account needs the account_id "
                                "of a house account.")
        found.add(account)
    if len(found) > 1:
        raise TenderRefused("bad_account", "One sale can be charged to one house account.")
    return next(iter(found), None)


def parse_tenders(raw: Any) -> list[tuple[str, int]]:
    """``[{method, amount}, …]`` checked: 1 to MAX_TENDERS, a known method, a whole
    amount 0 … 2^53−1. Raises TenderRefused (``bad_tenders``, ``bad_method``)."""
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_TENDERS:
        raise TenderRefused("bad_tenders", f"Give 1 to {MAX_TENDERS} tenders.",
                            max=MAX_TENDERS)
    out = []
    for item in raw:
        if not isinstance(item, Mapping):
            raise TenderRefused("bad_tenders", "Each tender needs a method and an amount.")
        method, amount = item.get("method"), item.get("amount")
        if method not in TENDER_METHODS:
            raise TenderRefused("bad_method", f"A tender's method must be one of "
                                f"{', '.join(TENDER_METHODS)}.", methods=list(TENDER_METHODS))
        if type(amount) is not int or not 0 <= amount <= _MAX_AMOUNT:
            raise TenderRefused("bad_tenders", "A tender's amount must be a whole number of "
                                "minor units, at least 0.")
        out.append((str(method), amount))
    return out


def settle(tenders: list[tuple[str, int]], payable: int) -> Settlement:
    """The settlement of ``payable`` by ``tenders`` (in the order given).

    Raises TenderRefused ``tenders_short`` (they pay less than ``payable``; params
    ``payable``, ``tendered``) or ``tenders_over`` (more than ``payable`` and the
    excess is more than the cash given, so no change can be handed back).
    """
    tendered = sum(a for _m, a in tenders)
    if tendered < payable:
        raise TenderRefused("tenders_short", "The tenders pay less than the amount to pay.",
                            payable=payable, tendered=tendered)
    change = tendered - payable
    cash = sum(a for m, a in tenders if m == "cash")
    if change > cash:
        raise TenderRefused("tenders_over", "The tenders pay more than the amount to pay; "
                            "only cash can be given back as change.",
                            payable=payable, tendered=tendered)
    kept: list[tuple[str, int]] = []
    left = change  # taken off the cash tenders, last first
    for method, amount in reversed(tenders):
        if method == "cash" and left:
            take = min(left, amount)
            amount -= take
            left -= take
        kept.append((method, amount))
    kept.reverse()
    merged: dict[str, int] = {}
    for method, amount in kept:
        if amount:
            merged[method] = merged.get(method, 0) + amount
    if len(merged) > 1:
        payment = "other"
    else:
        only = next(iter(merged), tenders[0][0] if tenders else "cash")
        payment = only if only in V1_PAYMENTS else "other"
    return Settlement(tuple(merged.items()), payment, tendered, change)


def single(method: str, payable: int) -> Settlement:
    """v1's ``payment``: one tender of ``method`` for the whole ``payable``."""
    return settle([(method, payable)], payable)
