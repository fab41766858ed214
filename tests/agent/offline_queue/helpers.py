"""Builders shared by the store tests (plain dicts, no fixtures)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

AT = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def sale_body(member_id: str | None = "m-1", *, redeemed_points: int = 0,
              redeemed_value: int = 0, earned: tuple[int, ...] = (10,),
              credits_used: tuple[tuple[str, int], ...] = (),
              credits_earned: tuple[tuple[str, int], ...] = (), payable: int = 1000,
              note: str = "") -> dict[str, Any]:
    """A protocol sale body with the given balance effects."""
    return {
        "member_id": member_id,
        "identified_by": None if member_id is None else "nfc:04A1B2",
        "lines": [{"sku": "x", "category": "c", "qty": 1, "unit_price": payable, "note": note}],
        "gross": payable + redeemed_value + sum(a for _, a in credits_used),
        "discounts": [],
        "redeemed_points": redeemed_points,
        "redeemed_value": redeemed_value,
        "credits_used": [{"kind": k, "amount": a} for k, a in credits_used],
        "payable": payable,
        "points_earned": [{"rule": f"r{i}", "points": p} for i, p in enumerate(earned)],
        "credits_earned": [{"rule": "cb", "kind": k, "amount": a, "expires": "2027-01-01"}
                           for k, a in credits_earned],
        "lottery_entries": 0,
        "rules_version": 42,
        "payment": "cash",
    }


def member_record(member_id: str = "m-1", *, version: int = 1,
                  tokens: tuple[str, ...] = ("nfc:04A1B2",), points: int = 1000,
                  credit: int = 0, applied: dict[str, int] | None = None,
                  **extra: Any) -> dict[str, Any]:
    """A protocol member record."""
    balances = {"points": points}
    if credit:
        balances["credit.club"] = credit
    record = {
        "member_id": member_id, "version": version, "name": f"Member {member_id}",
        "status": "active", "tier": "gold", "groups": [], "birthday": "1990-03-21",
        "joined": "2021-01-05", "identifiers": list(tokens), "balances": balances,
        "stats": {"purchase_count": 1, "last_purchase": "2026-11-01", "spend_30d": 100},
        "applied": applied or {},
    }
    record.update(extra)
    return record
