"""Refunds by line: the exact reversal of a part of a recorded sale (protocol 1.1).

Pure functions over the sale event as recorded (``docs/protocol/bundle.md``,
"Refunds by line"): no I/O, no clock. The store calls :func:`refund_part` inside the
write transaction that records the refund, with the parts refunded before; the
simulated club calls it to check a ``refund_lines`` event it applies.

The share of a part is its weight over the sale's: the weight of ``qty`` units of a
line is ``qty × unit_price`` (the sale's weight is ``gross``); a sale whose ``gross``
is 0 weighs by units. Every amount of the sale (each discount row, redeemed points
and value, each credit used, ``payable``, each points and credit row, lottery
entries) is reversed by ``amount × share``, rounded toward zero. The part that
refunds the last unit of the sale (``completes``) takes, for every amount, what the
earlier parts left: the parts of a sale then add up to the whole exactly, and no
set of parts reverses more than the whole.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agent.rules.tenders import TENDER_METHODS

#: Row lists of a sale and the key of each row's amount.
ROW_LISTS: tuple[tuple[str, str], ...] = (
    ("discounts", "amount"), ("credits_used", "amount"),
    ("points_earned", "points"), ("credits_earned", "amount"),
)
#: Scalar amounts of a sale reversed in proportion.
SCALARS = ("redeemed_points", "redeemed_value", "payable", "lottery_entries")


class RefundRefused(ValueError):
    """A part that cannot be refunded; ``reason`` is the machine-readable code."""

    def __init__(self, reason: str, message: str, **params: Any):
        super().__init__(message)
        self.reason = reason
        self.params = params


@dataclass(frozen=True)
class RefundPart:
    """What one refund by line reverses: the keys of a ``refund_lines`` event."""

    lines: tuple[tuple[int, int], ...]  # (line index, qty), by line index
    gross: int
    amounts: dict[str, int]  # SCALARS
    rows: dict[str, list[dict[str, Any]]]  # ROW_LISTS, rows of 0 left out
    completes: bool

    def to_dict(self) -> dict[str, Any]:
        """The reversal keys of the ``refund_lines`` event (without sale_id/reason)."""
        return {"lines": [{"line": i, "qty": q} for i, q in self.lines],
                "gross": self.gross, **self.amounts, **self.rows,
                "completes": self.completes}


def _toward_zero(amount: int, num: int, den: int) -> int:
    """``amount × num / den`` rounded toward zero (den > 0, num ≥ 0)."""
    q = abs(amount) * num // den
    return q if amount >= 0 else -q


def _int(value: Any) -> int:
    return value if type(value) is int else 0


def sold_units(sale: Mapping[str, Any]) -> list[int]:
    """The quantity of each line of the sale, by line index."""
    return [max(0, _int(line.get("qty", 1))) if isinstance(line, Mapping) else 0
            for line in sale.get("lines") or []]


def refunded_units(sale: Mapping[str, Any],
                   earlier: Sequence[Sequence[tuple[int, int]]]) -> list[int]:
    """Units of each line already refunded by the ``earlier`` parts."""
    done = [0] * len(sold_units(sale))
    for part in earlier:
        for index, qty in part:
            if 0 <= index < len(done):
                done[index] += qty
    return done


def _weights(sale: Mapping[str, Any]) -> tuple[list[int], int]:
    """Weight of one unit of each line, and of the whole sale (> 0 unless empty)."""
    lines = [line if isinstance(line, Mapping) else {} for line in sale.get("lines") or []]
    units = sold_units(sale)
    prices = [max(0, _int(line.get("unit_price", 0))) for line in lines]
    total = sum(u * p for u, p in zip(units, prices, strict=True))
    if total > 0:
        return prices, total
    return [1] * len(lines), sum(units)


def parse_lines(raw: Any, line_count: int) -> tuple[tuple[int, int], ...]:
    """``[{line, qty}, …]`` as sorted (index, qty) pairs, one per line; RefundRefused
    (``bad_lines``) when it is not a non-empty list of lines of the sale with qty ≥ 1."""
    if not isinstance(raw, list) or not raw:
        raise RefundRefused("bad_lines", "Choose at least one line to refund.")
    merged: dict[int, int] = {}
    for item in raw:
        index = item.get("line") if isinstance(item, Mapping) else None
        qty = item.get("qty") if isinstance(item, Mapping) else None
        if type(index) is not int or type(qty) is not int or qty < 1:
            raise RefundRefused("bad_lines", "Each line to refund needs a line number and a "
                                "quantity of at least 1.")
        if not 0 <= index < line_count:
            raise RefundRefused("no_such_line", f"The sale has no line {index + 1}.",
                                line=index)
        merged[index] = merged.get(index, 0) + qty
    return tuple(sorted(merged.items()))


def _reverse(sale: Mapping[str, Any], weight: int, total: int
             ) -> tuple[dict[str, int], dict[str, list[dict[str, Any]]]]:
    amounts = {key: _toward_zero(_int(sale.get(key)), weight, total) for key in SCALARS}
    rows: dict[str, list[dict[str, Any]]] = {}
    for key, amount_key in ROW_LISTS:
        out = []
        for row in sale.get(key) or []:
            if isinstance(row, Mapping):
                out.append({**row, amount_key: _toward_zero(_int(row.get(amount_key)),
                                                            weight, total)})
        rows[key] = out
    return amounts, rows


def refund_part(sale: Mapping[str, Any], lines: Sequence[tuple[int, int]],
                earlier: Sequence[Sequence[tuple[int, int]]] = ()) -> RefundPart:
    """The reversal of ``lines`` ((index, qty) pairs) of ``sale`` after the
    ``earlier`` parts (each a sequence of (index, qty) pairs, in recording order).

    Raises RefundRefused: ``no_such_line``, ``bad_lines``, ``over_refund`` (more
    units than are left of a line; params ``line``, ``left``).
    """
    units = sold_units(sale)
    done = refunded_units(sale, earlier)
    merged: dict[int, int] = {}
    for index, qty in lines:
        if not 0 <= index < len(units):
            raise RefundRefused("no_such_line", f"The sale has no line {index + 1}.",
                                line=index)
        if qty < 1:
            raise RefundRefused("bad_lines", "A quantity to refund must be at least 1.")
        merged[index] = merged.get(index, 0) + qty
    if not merged:
        raise RefundRefused("bad_lines", "Choose at least one line to refund.")
    for index, qty in merged.items():
        left = units[index] - done[index]
        if qty > left:
            raise RefundRefused("over_refund", f"Only {left} of line {index + 1} can still "
                                f"be refunded.", line=index, left=left)
    unit_weights, total = _weights(sale)
    part = tuple(sorted(merged.items()))
    weight = sum(unit_weights[i] * q for i, q in part)
    completes = all(done[i] + merged.get(i, 0) == units[i] for i in range(len(units)))
    if not completes:
        amounts, rows = _reverse(sale, weight, total)
        return RefundPart(part, _part_gross(sale, part), amounts, rows, False)
    # The completing part: the whole minus what every earlier part reversed.
    amounts, rows = _reverse(sale, total, total)
    gross = _int(sale.get("gross"))
    for before in earlier:
        earlier_part = tuple((i, q) for i, q in before if 0 <= i < len(units))
        w = sum(unit_weights[i] * q for i, q in earlier_part)
        e_amounts, e_rows = _reverse(sale, w, total)
        gross -= _part_gross(sale, earlier_part)
        for key in SCALARS:
            amounts[key] -= e_amounts[key]
        for key, amount_key in ROW_LISTS:
            for row, e_row in zip(rows[key], e_rows[key], strict=True):
                row[amount_key] -= e_row[amount_key]
    return RefundPart(part, gross, amounts, rows, True)


def _part_gross(sale: Mapping[str, Any], part: Sequence[tuple[int, int]]) -> int:
    """``qty × unit_price`` summed over the part (exact, not a share)."""
    lines = sale.get("lines") or []
    total = 0
    for index, qty in part:
        line = lines[index] if 0 <= index < len(lines) else None
        if isinstance(line, Mapping):
            total += qty * max(0, _int(line.get("unit_price", 0)))
    return total


def drop_zero_rows(part: RefundPart) -> dict[str, Any]:
    """The event keys of ``part`` with rows of 0 left out (as a sale leaves them out)."""
    out = part.to_dict()
    for key, amount_key in ROW_LISTS:
        out[key] = [row for row in out[key] if row.get(amount_key)]
    return out


def sale_tenders(sale: Mapping[str, Any]) -> dict[str, int]:
    """A sale's tenders as ``{method: amount}`` in the order paid: its 1.1 ``tenders``,
    else its v1 ``payment`` for the whole ``payable`` (none: cash)."""
    out: dict[str, int] = {}
    rows = sale.get("tenders")
    if isinstance(rows, list) and rows:
        for row in rows:
            if isinstance(row, Mapping) and row.get("method") in TENDER_METHODS:
                method = str(row["method"])
                out[method] = out.get(method, 0) + _int(row.get("amount"))
        return out
    paid = sale.get("payment")
    return {str(paid) if paid in TENDER_METHODS else "cash": _int(sale.get("payable"))}


def refund_tenders(tenders: Mapping[str, int], amount: int) -> dict[str, int]:
    """How ``amount`` given back is split over the sale's ``tenders``: in proportion,
    rounded toward zero, what is left to the first tender (rows of 0 left out)."""
    total = sum(tenders.values())
    if not tenders or total <= 0:
        return {next(iter(tenders), "cash"): amount} if amount else {}
    out = {m: _toward_zero(amount, a, total) for m, a in tenders.items()}
    first = next(iter(out))
    out[first] += amount - sum(out.values())
    return {m: a for m, a in out.items() if a}
