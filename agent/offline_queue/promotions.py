"""The promotion counts the rules engine needs, from this terminal's sales."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, tzinfo
from typing import Any


def promotion_counts(conn: sqlite3.Connection, member_id: str | None,
                     tz: tzinfo) -> dict[str, Any]:
    """What the rules engine needs for limits, budgets and codes (docs/rules.md,
    "What the store passes"), from this terminal's sales that are not rejected
    nor refunded: ``pending_purchases``, ``member_uses`` (this member's uses the
    record does not hold yet), ``store_uses``, ``budget_used``, ``used_codes``
    and ``coupons`` (issued here). Dates are local dates in ``tz``. Only the
    events the outbox still holds count (accepted ones are pruned after a while)."""
    applied = 0
    if member_id is not None:
        row = conn.execute("SELECT applied_here FROM members WHERE member_id = ?",
                           (member_id,)).fetchone()
        applied = int(row[0]) if row else 0
    rows = conn.execute(
        "SELECT seq, type, at, member_id, body FROM events WHERE state != 'rejected' "
        "AND (type = 'refund' OR (type = 'sale' AND (member_id = ? OR "
        "body LIKE '%\"uses\"%' OR body LIKE '%\"codes_used\"%' OR "
        "body LIKE '%\"coupons_issued\"%'))) ORDER BY seq", (member_id,)).fetchall()
    sales: list[tuple[int, str, str | None, dict[str, Any]]] = []
    refunded: set[str] = set()
    for seq, type_, at, mid, body in rows:
        data = json.loads(body)
        if type_ == "refund":
            refunded.add(str(data.get("sale_id")))
        else:
            sales.append((int(seq), str(at), mid, data))
    out: dict[str, Any] = {"pending_purchases": 0, "member_uses": {}, "store_uses": {},
                           "budget_used": {}, "used_codes": set(), "coupons": []}
    for seq, at, mid, data in sales:
        if data.get("id") in refunded:
            continue
        local = datetime.fromisoformat(at.replace("Z", "+00:00")).astimezone(tz).date()
        mine = member_id is not None and mid == member_id
        if mine and seq > applied:
            out["pending_purchases"] += 1
        for use in data.get("uses") or []:
            rule, amount = str(use.get("rule")), int(use.get("amount") or 0)
            out["store_uses"].setdefault(rule, []).append(local.isoformat())
            out["budget_used"][rule] = out["budget_used"].get(rule, 0) + amount
            if mine and seq > applied:
                out["member_uses"].setdefault(rule, []).append(local.isoformat())
        for used in data.get("codes_used") or []:
            if used.get("single_use") and isinstance(used.get("code"), str):
                out["used_codes"].add(used["code"])
        for coupon in data.get("coupons_issued") or []:
            out["coupons"].append({"code": coupon.get("code"), "rule": coupon.get("for_rule"),
                                   "expires": coupon.get("expires"), "member_id": mid})
    out["used_codes"] = frozenset(out["used_codes"])
    return out
