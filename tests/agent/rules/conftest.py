"""Shared data for the rules tests: the bundle and basket of rules.md's worked examples."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

SPEC_BUNDLE: dict[str, Any] = {
    "club": "acme", "merchant": "M-7", "version": 42,
    "issued_at": "2026-11-20T08:00:00Z", "expires_at": "2026-12-20T08:00:00Z",
    "currency": "EUR", "minor_units": 2, "timezone": "Europe/Berlin",
    "tiers": [{"id": "bronze", "rank": 1}, {"id": "silver", "rank": 2},
              {"id": "gold", "rank": 3}],
    "points": {"value": 1, "min_redeem": 100, "max_redeem_share_bps": 5000},
    "credits": {"accepted": ["credit.club", "credit.merchant:M-7"],
                "use_cap_per_invoice": 50000, "use_cap_per_day": 100000},
    "offline": {"max_redeem_value_per_member_day": 2000, "max_pending": 5000,
                "max_age_hours": 72},
    "rules": [
        {"id": "gold10", "kind": "discount", "priority": 100, "when": {"tiers": ["gold"]},
         "then": {"percent_bps": 1000}},
        {"id": "coffee-2", "kind": "discount", "priority": 50,
         "when": {"categories": ["coffee"]}, "then": {"amount": 200}},
        {"id": "base-points", "kind": "points", "priority": 10, "when": {},
         "then": {"per_spend": 100, "points": 1}},
        {"id": "tuesday-x2", "kind": "multiplier", "priority": 10,
         "when": {"weekdays": ["tue"]}, "then": {"bps": 20000}},
        {"id": "cashback", "kind": "credit", "priority": 10, "when": {"min_gross": 5000},
         "then": {"percent_bps": 200, "kind": "credit.club", "expires_days": 90}},
    ],
}

SPEC_BASKET: list[dict[str, Any]] = [
    {"sku": "espresso", "category": "coffee", "qty": 2, "unit_price": 250},
    {"sku": "cake", "category": "bakery", "qty": 1, "unit_price": 4550},
]

MEMBER: dict[str, Any] = {
    "member_id": "m-123", "version": 9812, "name": "Sara K.", "status": "active",
    "tier": "gold", "groups": ["vip"], "birthday": "1990-03-21", "joined": "2021-01-05",
    "identifiers": ["nfc:04A1B2C3D4E5F6"],
    "balances": {"points": 1200, "credit.club": 50000, "credit.merchant:M-7": 2000},
    "stats": {"purchase_count": 37, "last_purchase": "2026-11-20", "spend_30d": 1250000},
    "applied": {"T-0001": 4518},
}


def spec_bundle(**overrides: Any) -> dict[str, Any]:
    """A deep copy of the spec bundle with top-level keys replaced (None: removed)."""
    data = copy.deepcopy(SPEC_BUNDLE)
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def member(**overrides: Any) -> dict[str, Any]:
    """A deep copy of the example member with keys replaced."""
    data = copy.deepcopy(MEMBER)
    data.update(overrides)
    return data


@pytest.fixture
def spec_payload() -> bytes:
    return json.dumps(SPEC_BUNDLE).encode()
