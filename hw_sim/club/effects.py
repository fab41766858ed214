"""What an applied event does to a member record: the club's arithmetic.

Pure functions over plain dicts, written independently of the terminal's store so
that the end-to-end tests compare two implementations of the same rules:

- a ``sale``: ``points`` − ``redeemed_points`` + every ``points_earned`` row
  (including the multiplier's extra-points row); each ``credits_used`` row is
  taken from its kind, each ``credits_earned`` row added to its kind;
- a ``refund``: the exact opposite of the sale it names;
- (1.1) a ``refund_lines``: the opposite of the amounts it carries (the terminal's
  share of the sale), ``spend_30d`` less its ``payable``; ``purchase_count`` −1 only
  for the part that refunds the sale's last unit;
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
from typing import Any, Literal

# The largest whole number a JSON reader with doubles (JavaScript, many databases'
# JSON types) still holds exactly. A club must not apply an amount it may round.
MAX_SAFE = 2**53 - 1

LineKind = Literal["amount", "product", "category"]


def line_kind(line: Mapping[str, Any]) -> LineKind:
    """What a sale line is: ``amount`` (rung up as a bare amount: ``sku`` and
    ``category`` both null), ``product`` (a ``sku``) or ``category`` (a category only)."""
    if line.get("sku") is not None:
        return "product"
    return "category" if line.get("category") is not None else "amount"


# A sale's amounts: top-level keys, and per list of rows its name key and amount key.
_SALE_AMOUNTS = ("gross", "payable", "redeemed_points", "redeemed_value", "lottery_entries")
_SALE_ROWS = (("discounts", "rule", "amount"), ("credits_used", "kind", "amount"),
              ("points_earned", "rule", "points"), ("credits_earned", "kind", "amount"))


def amount_problem(where: str, value: object, minimum: int = 0) -> str | None:
    """Why ``value`` is not a whole number from ``minimum`` to 2^53−1, or None."""
    if type(value) is not int:
        return f"malformed: {where} is not a whole number"
    if value > MAX_SAFE:
        return f"out_of_range: {where} {value} is over 2^53-1"
    if value < minimum:
        return f"out_of_range: {where} {value} is below {minimum}"
    return None


def _line_problem(i: int, line: object) -> str:
    if not isinstance(line, dict):
        return f"malformed: lines[{i}] is not an object"
    for key in ("sku", "category"):
        if not isinstance(line.get(key), (str, type(None))):
            return f"malformed: lines[{i}].{key} is not a string or null"
    return (amount_problem(f"lines[{i}].qty", line.get("qty"), 1)
            or amount_problem(f"lines[{i}].unit_price", line.get("unit_price"))
            or f"out_of_range: lines[{i}] qty × unit_price is over 2^53-1")


def sale_problem(sale: Mapping[str, Any]) -> str | None:
    """Why the club cannot apply this sale (its first problem), or None.

    Every amount, count and point figure must be a whole number from 0 to 2^53−1
    (``qty`` from 1); ``lines`` (when present) a list of ``{sku, category, qty,
    unit_price}`` with ``sku`` and ``category`` each a string or null (both null: a
    bare amount) and ``qty × unit_price`` at most 2^53−1. This runs for every event
    the club takes: the sound case is one plain test per value; messages are made
    only for a problem.
    """
    get = sale.get
    for key in _SALE_AMOUNTS:
        v = get(key, 0)
        if type(v) is not int or not 0 <= v <= MAX_SAFE:
            return amount_problem(key, v)
    lines = get("lines", [])
    if type(lines) is not list:
        return "malformed: lines is not a list"
    for i, line in enumerate(lines):
        if type(line) is not dict:
            return _line_problem(i, line)
        sku, category = line.get("sku"), line.get("category")
        qty, price = line.get("qty"), line.get("unit_price")
        if not ((sku is None or type(sku) is str) and (category is None or type(category) is str)
                and type(qty) is int and type(price) is int and qty >= 1 and price >= 0
                and qty * price <= MAX_SAFE):
            return _line_problem(i, line)
    tenders = get("tenders")  # (1.1) optional: [{method, amount}] summing to payable
    if tenders is not None:
        if type(tenders) is not list or any(
                type(t) is not dict or type(t.get("method")) is not str
                or type(t.get("amount")) is not int or not 0 <= t["amount"] <= MAX_SAFE
                for t in tenders):
            return "malformed: tenders"
        if sum(t["amount"] for t in tenders) != get("payable", 0):
            return "malformed: tenders do not sum to payable"
    if (problem := value_problem(sale)) is not None:
        return problem
    for key, name, amount in _SALE_ROWS:
        rows = get(key) or []
        if type(rows) is not list:
            return f"malformed: {key} is not a list"
        for i, row in enumerate(rows):
            if type(row) is not dict or type(row.get(name)) is not str:
                return f"malformed: {key}[{i}]"
            v = row.get(amount, 0)
            if type(v) is not int or not 0 <= v <= MAX_SAFE:
                return amount_problem(f"{key}[{i}].{amount}", v)
    return None


def _value_kind(kind: object) -> bool:
    return (isinstance(kind, str) and kind.split(".", 1)[0] in ("value", "units")
            and len(kind) <= 40 and kind.count(".") == 1 and bool(kind.split(".", 1)[1]))


def value_problem(sale: Mapping[str, Any]) -> str | None:
    """(1.3) Why a sale's stored-value keys cannot be applied, or None: ``topups`` rows
    ``{line, kind value.*/units.*, amount ≥ 1}``, ``gift_cards_issued`` rows ``{line,
    card_id gc-…, token, amount ≥ 1}``, ``stored_value`` tenders with a ``value.*``
    kind, ``gift_card`` tenders with a ``card_id``; a top-up or a stored-value tender
    needs the sale's member."""
    topups = sale.get("topups") or []
    cards = sale.get("gift_cards_issued") or []
    if type(topups) is not list or type(cards) is not list:
        return "malformed: topups"
    for i, row in enumerate(topups):
        if type(row) is not dict or not _value_kind(row.get("kind")) \
                or amount_problem("topups.amount", row.get("amount"), 1):
            return f"malformed: topups[{i}]"
    for i, row in enumerate(cards):
        if type(row) is not dict or not str(row.get("card_id", "")).startswith("gc-") \
                or type(row.get("token")) is not str \
                or amount_problem("gift_cards_issued.amount", row.get("amount"), 1):
            return f"malformed: gift_cards_issued[{i}]"
    used = sale.get("units_used") or []
    if type(used) is not list:
        return "malformed: units_used"
    for i, row in enumerate(used):
        if type(row) is not dict or not _value_kind(row.get("kind")) \
                or not str(row["kind"]).startswith("units.") \
                or amount_problem("units_used.units", row.get("units"), 1):
            return f"malformed: units_used[{i}]"
    spends = bool(used)
    for row in sale.get("tenders") or []:
        if type(row) is dict and row.get("method") == "stored_value":
            spends = True
            if not _value_kind(row.get("kind")) or not str(row["kind"]).startswith("value."):
                return "malformed: tenders (stored_value kind)"
        if type(row) is dict and row.get("method") == "gift_card" \
                and not str(row.get("card_id", "")).startswith("gc-"):
            return "malformed: tenders (gift_card card_id)"
    if (topups or spends) and not isinstance(sale.get("member_id"), str):
        return "malformed: stored value needs the sale's member"
    return None


def gift_card_redeem_problem(ev: Mapping[str, Any]) -> str | None:
    """(1.3) Why a ``gift_card_redeem`` cannot be applied, or None."""
    if not str(ev.get("card_id", "")).startswith("gc-") or type(ev.get("sale_id")) is not str:
        return "malformed: gift_card_redeem"
    amount = ev.get("amount")
    if type(amount) is not int or amount == 0 or abs(amount) > MAX_SAFE:
        return "malformed: gift_card_redeem.amount"
    return None


def refund_lines_problem(ev: Mapping[str, Any]) -> str | None:
    """Why the club cannot apply this ``refund_lines`` event, or None: ``sale_id`` a
    string, ``lines`` a non-empty list of ``{line ≥ 0, qty ≥ 1}``, amounts as a sale's."""
    if not isinstance(ev.get("sale_id"), str):
        return "malformed: sale_id"
    lines = ev.get("lines")
    if type(lines) is not list or not lines:
        return "malformed: lines"
    for i, item in enumerate(lines):
        if type(item) is not dict or type(item.get("line")) is not int \
                or type(item.get("qty")) is not int or item["line"] < 0 or item["qty"] < 1:
            return f"malformed: lines[{i}]"
    return sale_problem({**ev, "lines": []})


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
    # (1.3) stored value bought for the member, and stored value that paid the sale
    for row in sale.get("topups") or []:
        add(str(row["kind"]), int(row.get("amount", 0)))
    for row in sale.get("tenders") or []:
        if row.get("method") == "stored_value":
            add(str(row["kind"]), -int(row.get("amount", 0)))
    for row in sale.get("units_used") or []:
        add(str(row["kind"]), -int(row.get("units", 0)))
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


ADJUST_REASONS = frozenset({"purchase_not_recorded", "goodwill", "correction", "gift",
                            "complaint", "other"})


def adjust_problem(ev: Mapping[str, Any]) -> str | None:
    """(1.3) Why a ``balance_adjust`` cannot be taken, or None (the club's own reading
    of club.md "Manual balance adjustments")."""
    if not isinstance(ev.get("member_id"), str) or not ev["member_id"]:
        return "malformed: balance_adjust.member_id"
    kind = ev.get("kind")
    if not isinstance(kind, str) or len(kind) > 64 or not (
            kind == "points" or (kind.split(".", 1)[0] in ("credit", "units")
                                 and len(kind.split(".", 1)) == 2 and kind.split(".", 1)[1])):
        return "malformed: balance_adjust.kind"
    amount = ev.get("amount")
    if type(amount) is not int or amount == 0:
        return "malformed: balance_adjust.amount"
    if abs(amount) > MAX_SAFE:
        return f"out_of_range: balance_adjust.amount {amount} is over 2^53-1"
    if ev.get("reason") not in ADJUST_REASONS:
        return "malformed: balance_adjust.reason"
    return None


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


# ---- (1.3) house accounts -------------------------------------------------------------

#: Event types that change a house account's ``owed``, and the sign of their amount.
ACCOUNT_EVENT_SIGNS = {"account_charge": 1, "account_refund": -1, "account_payment": -1}


def account_problem(ev: Mapping[str, Any]) -> str | None:
    """Why a house-account event is malformed (None: it is not)."""
    kind = ev.get("type")
    account, amount = ev.get("account_id"), ev.get("amount")
    if type(account) is not str or not account:
        return f"malformed: {kind}.account_id"
    if type(amount) is not int or not 0 <= amount <= MAX_SAFE:
        return f"malformed: {kind}.amount"
    if kind in ("account_charge", "account_refund") and type(ev.get("sale_id")) is not str:
        return f"malformed: {kind}.sale_id"
    if kind == "account_payment" and (amount < 1 or ev.get("method") not in
                                      ("cash", "card", "other")):
        return "malformed: account_payment"
    return None


def account_owed_change(ev: Mapping[str, Any]) -> int:
    """What one house-account event does to the account's ``owed``."""
    return ACCOUNT_EVENT_SIGNS[str(ev["type"])] * int(ev["amount"])
