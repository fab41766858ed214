"""What an applied event does to a member record: the club's arithmetic.

Pure functions over plain dicts, written independently of the terminal's store so
that the end-to-end tests compare two implementations of the same rules:

- a ``sale``: ``points`` − ``redeemed_points`` + every ``points_earned`` row
  (including the multiplier's extra-points row); each ``credits_used`` row is
  taken from its kind, each ``credits_earned`` row added to its kind;
- a ``refund``: the exact opposite of the sale it names;
- issue 21: each ``rewards`` row takes its points from the buyer; each
  ``referral_rewards`` row adds its amount of its kind to the referrer named in it
  (:func:`sale_referral_deltas`); ``fees`` change no balance;
- stats: ``purchase_count`` (+1 per sale, −1 per refund), ``last_purchase``
  (local date of the latest sale) and ``spend_30d`` (sum of ``payable`` of the
  member's unrefunded sales of the last 30 days: what the member paid, as the
  terminal's store counts it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def sale_spend(sale: Mapping[str, Any]) -> int:
    """What a sale adds to ``spend_30d``: its ``payable``."""
    return int(sale.get("payable", 0))


def sale_balance_deltas(sale: Mapping[str, Any]) -> dict[str, int]:
    """Balance changes of one sale, by balance kind (``points``, ``credit.club`` …)."""
    deltas: dict[str, int] = {}

    def add(kind: str, amount: int) -> None:
        deltas[kind] = deltas.get(kind, 0) + amount

    add("points", -int(sale.get("redeemed_points") or 0))
    for row in sale.get("points_earned") or []:
        add("points", int(row.get("points", 0)))
    for row in sale.get("credits_used") or []:
        add(str(row["kind"]), -int(row.get("amount", 0)))
    for row in sale.get("credits_earned") or []:
        add(str(row["kind"]), int(row.get("amount", 0)))
    for row in sale.get("rewards") or []:
        add("points", -int(row.get("points", 0)))
    return {k: v for k, v in deltas.items() if v != 0 or k == "points"}


def sale_referral_deltas(sale: Mapping[str, Any]) -> dict[str, dict[str, int]]:
    """What a sale's ``referral_rewards`` give, by referrer member id and balance kind."""
    out: dict[str, dict[str, int]] = {}
    for row in sale.get("referral_rewards") or []:
        kinds = out.setdefault(str(row["member_id"]), {})
        kind = str(row["kind"])
        kinds[kind] = kinds.get(kind, 0) + int(row.get("amount", 0))
    return out


def single_use_codes(sale: Mapping[str, Any]) -> list[str]:
    """The single-use codes a sale used (``codes_used`` rows with ``single_use``)."""
    return [str(row["code"]) for row in sale.get("codes_used") or []
            if isinstance(row, Mapping) and row.get("single_use") and row.get("code")]


def add_deltas(balances: dict[str, int], deltas: Mapping[str, int], sign: int = 1) -> None:
    """Add (``sign`` = 1) or subtract (−1) ``deltas`` to ``balances``, in place."""
    for kind, amount in deltas.items():
        balances[kind] = int(balances.get(kind, 0)) + sign * int(amount)


def apply_deltas(balances: Mapping[str, int], deltas: Mapping[str, int],
                 sign: int = 1) -> dict[str, int]:
    """``balances`` plus (``sign`` = 1) or minus (−1) ``deltas``."""
    out = dict(balances)
    for kind, amount in deltas.items():
        out[kind] = int(out.get(kind, 0)) + sign * int(amount)
    return out


def add_lot(lots: dict[str, list[dict[str, Any]]], kind: str, amount: int,
            expires: str) -> None:
    """Record that ``amount`` of ``kind`` expires after the local date ``expires``."""
    if amount > 0:
        lots.setdefault(kind, []).append({"amount": amount, "expires": expires})
        lots[kind].sort(key=lambda lot: str(lot["expires"]))


def spend_lots(lots: dict[str, list[dict[str, Any]]], kind: str, amount: int) -> None:
    """Spending takes the soonest-expiring lots first (the rest of a balance never
    expires, so it is spent last)."""
    left = amount
    kept = []
    for lot in lots.get(kind) or []:
        take = min(left, int(lot["amount"]))
        left -= take
        if int(lot["amount"]) > take:
            kept.append({**lot, "amount": int(lot["amount"]) - take})
    if kind in lots:
        lots[kind] = kept
