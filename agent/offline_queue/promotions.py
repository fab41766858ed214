"""The promotion counts the rules engine needs, from an index of the sales' promotions.

Each sale that used a rule, a code or issued a coupon gets one row in
``sale_promotions`` (schema 4), written in the same transaction as the sale: its
``seq`` and the ``uses``, ``codes_used`` and ``coupons_issued`` of its body. The
counts read those rows and this member's sales through indexes instead of every
sale body in the outbox (issue #21: ``LIKE`` over 100k bodies per quote).
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, tzinfo
from typing import Any

#: The keys of a sale body the counts read.
PROMOTION_KEYS = ("uses", "codes_used", "coupons_issued")

#: A sale counts unless it, or the refund of it, was rejected by the club. A sale
#: refunded by line counts until the part that completes it (protocol 1.1).
_NOT_REFUNDED = ("NOT EXISTS (SELECT 1 FROM events r WHERE r.ref_id = e.id "
                 "AND (r.type = 'refund' OR (r.type = 'refund_lines' AND "
                 "json_extract(r.body, '$.completes') = 1)) AND r.state != 'rejected')")


def promotion_text(body: dict[str, Any]) -> str | None:
    """The part of a sale body ``sale_promotions`` keeps, or None when it has none."""
    part = {k: body[k] for k in PROMOTION_KEYS if body.get(k)}
    return json.dumps(part, separators=(",", ":"), ensure_ascii=False) if part else None


def record_promotions(conn: sqlite3.Connection, seq: int, body: dict[str, Any]) -> None:
    """Index the promotions of sale ``seq`` (inside the append's transaction)."""
    text = promotion_text(body)
    if text is not None:
        conn.execute("INSERT INTO sale_promotions (seq, promo) VALUES (?, ?)", (seq, text))


def promotion_counts(conn: sqlite3.Connection, member_id: str | None,
                     tz: tzinfo) -> dict[str, Any]:
    """What the rules engine needs for limits, budgets and codes (docs/rules.md,
    "What the store passes"), from this terminal's sales that are not rejected
    nor refunded: ``pending_purchases``, ``member_uses`` (this member's uses the
    record does not hold yet), ``store_uses``, ``budget_used``, ``used_codes``
    and ``coupons`` (issued here). Dates are local dates in ``tz``. Only the
    events the outbox still holds count (accepted ones are pruned after a while).
    """
    applied = 0
    pending = 0
    if member_id is not None:
        row = conn.execute("SELECT applied_here FROM members WHERE member_id = ?",
                           (member_id,)).fetchone()
        applied = int(row[0]) if row else 0
        pending = int(conn.execute(
            "SELECT count(*) FROM events e INDEXED BY events_member WHERE e.member_id = ? "  # noqa: S608 (constant text)
            f"AND e.seq > ? AND e.type = 'sale' AND e.state != 'rejected' AND {_NOT_REFUNDED}",
            (member_id, applied)).fetchone()[0])
    rows = conn.execute(
        "SELECT e.seq, e.at, e.member_id, p.promo FROM sale_promotions p "  # noqa: S608 (constant text)
        "JOIN events e ON e.seq = p.seq "
        f"WHERE e.state != 'rejected' AND {_NOT_REFUNDED} ORDER BY p.seq").fetchall()
    store_uses: dict[str, list[str]] = {}
    member_uses: dict[str, list[str]] = {}
    budget_used: dict[str, int] = {}
    used_codes: set[str] = set()
    coupons: list[dict[str, Any]] = []
    days: dict[str, str] = {}
    for seq, at, mid, promo in rows:
        data = json.loads(promo)
        local = days.get(at)
        if local is None:
            local = days[at] = datetime.fromisoformat(
                at.replace("Z", "+00:00")).astimezone(tz).date().isoformat()
        mine = member_id is not None and mid == member_id and seq > applied
        for use in data.get("uses") or []:
            rule, amount = str(use.get("rule")), int(use.get("amount") or 0)
            store_uses.setdefault(rule, []).append(local)
            budget_used[rule] = budget_used.get(rule, 0) + amount
            if mine:
                member_uses.setdefault(rule, []).append(local)
        for used in data.get("codes_used") or []:
            if used.get("single_use") and isinstance(used.get("code"), str):
                used_codes.add(used["code"])
        for coupon in data.get("coupons_issued") or []:
            coupons.append({"code": coupon.get("code"), "rule": coupon.get("for_rule"),
                            "expires": coupon.get("expires"), "member_id": mid})
    return {"pending_purchases": pending, "member_uses": member_uses,
            "store_uses": store_uses, "budget_used": budget_used,
            "used_codes": frozenset(used_codes), "coupons": coupons}


def full_scan_counts(conn: sqlite3.Connection, member_id: str | None,
                     tz: tzinfo) -> dict[str, Any]:
    """:func:`promotion_counts` as schema 3 computed it, reading every sale body
    through ``LIKE`` (kept as the definition the index is tested and measured
    against; not used by the agent)."""
    applied = 0
    if member_id is not None:
        row = conn.execute("SELECT applied_here FROM members WHERE member_id = ?",
                           (member_id,)).fetchone()
        applied = int(row[0]) if row else 0
    rows = conn.execute(
        "SELECT seq, type, at, member_id, body FROM events WHERE state != 'rejected' "
        "AND (type = 'refund' OR (type = 'refund_lines' AND "
        "json_extract(body, '$.completes') = 1) OR (type = 'sale' AND (member_id = ? OR "
        "body LIKE '%\"uses\"%' OR body LIKE '%\"codes_used\"%' OR "
        "body LIKE '%\"coupons_issued\"%'))) ORDER BY seq", (member_id,)).fetchall()
    sales: list[tuple[int, str, str | None, dict[str, Any]]] = []
    refunded: set[str] = set()
    for seq, type_, at, mid, body in rows:
        data = json.loads(body)
        if type_ in ("refund", "refund_lines"):
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
