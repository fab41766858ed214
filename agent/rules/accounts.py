"""House accounts (protocol 1.3): who may charge one, how much, and what a refund gives back.

Pure functions over the account's holder record (the member cache's
``{"holder": "account", "credit_limit", "authorised", "identifiers", "status"}``)
and the amounts the store reads inside its write transaction; no I/O, no clock.
docs/protocol/club.md "House accounts" is the reference; worked examples in
docs/rules.md "House accounts".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: ``holder`` of a house account's record in the member cache.
ACCOUNT_HOLDER = "account"
#: ``holder`` of a family pool's record (points and credit shared by its members).
POOL_HOLDER = "pool"


@dataclass(frozen=True)
class AccountRefusal:
    """Why a charge on account cannot be recorded; ``reason`` is machine-readable."""

    reason: str
    message: str
    params: Mapping[str, Any]


def is_account(record: Mapping[str, Any] | None) -> bool:
    """Whether a cached record is a house account."""
    return record is not None and record.get("holder") == ACCOUNT_HOLDER


def credit_limit(record: Mapping[str, Any]) -> int:
    """The account's credit limit in minor units (absent or malformed: 0, no credit)."""
    limit = record.get("credit_limit")
    return limit if type(limit) is int and limit > 0 else 0


def authorised(record: Mapping[str, Any]) -> tuple[str, ...]:
    """The member ids allowed to buy on the account."""
    found = record.get("authorised")
    if not isinstance(found, list):
        return ()
    return tuple(m for m in found if isinstance(m, str))


def available(record: Mapping[str, Any], owed: int) -> int:
    """What may still be charged: the limit less what is owed, never below 0."""
    return max(0, credit_limit(record) - owed)


def charge_refusal(record: Mapping[str, Any] | None, owed: int, amount: int, *,
                   buyer: str | None, token: str | None, unsynced: int = 0,
                   offline_max: int | None = None) -> AccountRefusal | None:
    """Why ``amount`` cannot be charged to the account ``record`` now, or None.

    ``owed``: the account's usable ``owed`` (cached plus this terminal's own events
    the club has not reflected). ``buyer``: the member buying (the sale's
    ``member_id``); ``token``: the account card shown, if it was. ``unsynced``: the
    net of this terminal's charges the club has not reflected, and ``offline_max``
    (None: no limit) what that may reach while the terminal is offline (the bundle's
    ``offline.max_account_charge``).
    """
    if not is_account(record):
        return AccountRefusal("account_unknown", "There is no such house account on this "
                              "terminal.", {})
    assert record is not None
    account_id = record.get("member_id")
    if record.get("status", "active") != "active":
        return AccountRefusal("account_closed", "This house account is closed; it cannot "
                              "be charged.", {"account_id": account_id})
    ids = record.get("identifiers")
    card = token is not None and isinstance(ids, list) and token in ids
    if not card and (buyer is None or buyer not in authorised(record)):
        return AccountRefusal("account_not_authorised", "This customer may not buy on this "
                              "house account; ask for the account card or another payment.",
                              {"account_id": account_id})
    limit = credit_limit(record)
    if amount > 0 and owed + amount > limit:
        return AccountRefusal("account_limit", "This would pass the account's credit limit; "
                              "take another payment for the rest.",
                              {"account_id": account_id, "credit_limit": limit, "owed": owed,
                               "available": max(0, limit - owed)})
    if offline_max is not None and amount > 0 and unsynced + amount > offline_max:
        return AccountRefusal("account_offline_limit", "The terminal is offline and has "
                              "charged as much on account as it may until the club is "
                              "reached; take another payment.",
                              {"account_id": account_id, "offline_max": offline_max,
                               "available": max(0, offline_max - unsynced)})
    return None


def refund_reversal(charged: int, reversed_before: int, refunded_payable: int | None,
                    owed: int | None = None) -> int:
    """What a refund gives back to the account of a sale charged ``charged`` on it,
    of which ``reversed_before`` came back by earlier refunds.

    A whole refund (``refunded_payable`` None) gives back the rest; a refund by line
    gives back its ``payable``, on account first, never more than is left. Never more
    than the account ``owes`` now either: an account paid off since the sale is not
    put in credit (a payment is never a deposit); the rest of the refund is paid back
    to the customer like any refund.
    """
    left = max(0, charged - reversed_before)
    if refunded_payable is not None:
        left = max(0, min(left, refunded_payable))
    return left if owed is None else max(0, min(left, owed))


def payment_refusal(record: Mapping[str, Any] | None, owed: int,
                    amount: int) -> AccountRefusal | None:
    """Why a payment of ``amount`` on the account cannot be taken, or None: an unknown
    account, or more than it owes (a payment is never a deposit)."""
    if not is_account(record):
        return AccountRefusal("account_unknown", "There is no such house account on this "
                              "terminal.", {})
    assert record is not None
    if amount > owed:
        return AccountRefusal("account_overpaid", "That is more than the account owes.",
                              {"account_id": record.get("member_id"), "owed": max(0, owed)})
    return None
