"""Refunds by line (agent/rules/refund.py): the worked example of
docs/protocol/bundle.md to the minor unit, and properties over random sales."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.rules.refund import ROW_LISTS, SCALARS, RefundRefused, refund_part

# Worked example B of bundle.md (gold member, Tuesday, 1000 points redeemed).
SALE_B: dict[str, Any] = {
    "lines": [{"sku": "espresso", "category": "coffee", "qty": 2, "unit_price": 250},
              {"sku": "cake", "category": "bakery", "qty": 1, "unit_price": 4550}],
    "gross": 5050,
    "discounts": [{"rule": "gold10", "amount": 505}, {"rule": "coffee-2", "amount": 200}],
    "redeemed_points": 1000, "redeemed_value": 1000, "credits_used": [], "payable": 3345,
    "points_earned": [{"rule": "base-points", "points": 33},
                      {"rule": "tuesday-x2", "points": 33}],
    "credits_earned": [{"rule": "cashback", "kind": "credit.club", "amount": 66,
                        "expires": "2027-02-22"}],
    "lottery_entries": 0,
}


def test_worked_example_one_espresso_then_the_rest() -> None:
    one = refund_part(SALE_B, [(0, 1)])
    # share 250 / 5050
    assert one.gross == 250
    assert [d["amount"] for d in one.rows["discounts"]] == [25, 9]
    assert one.amounts["redeemed_points"] == 49
    assert one.amounts["redeemed_value"] == 49
    assert one.amounts["payable"] == 165
    assert [p["points"] for p in one.rows["points_earned"]] == [1, 1]
    assert one.rows["credits_earned"][0]["amount"] == 3
    assert not one.completes
    rest = refund_part(SALE_B, [(0, 1), (1, 1)], earlier=[one.lines])
    assert rest.completes
    assert rest.gross == 4800
    assert [d["amount"] for d in rest.rows["discounts"]] == [480, 191]
    assert rest.amounts["payable"] == 3180
    assert rest.amounts["redeemed_points"] == 951
    assert [p["points"] for p in rest.rows["points_earned"]] == [32, 32]
    assert rest.rows["credits_earned"][0]["amount"] == 63


def test_refusals_carry_reason_codes() -> None:
    with pytest.raises(RefundRefused) as exc:
        refund_part(SALE_B, [(2, 1)])
    assert exc.value.reason == "no_such_line"
    with pytest.raises(RefundRefused) as exc:
        refund_part(SALE_B, [(0, 3)])
    assert (exc.value.reason, exc.value.params) == ("over_refund", {"line": 0, "left": 2})
    with pytest.raises(RefundRefused) as exc:
        refund_part(SALE_B, [(1, 1)], earlier=[((1, 1),)])
    assert exc.value.params == {"line": 1, "left": 0}


amount = st.integers(min_value=0, max_value=10**9)


@st.composite
def sales(draw: st.DrawFn) -> dict[str, Any]:
    lines = draw(st.lists(st.fixed_dictionaries({
        "sku": st.none(), "category": st.none(), "qty": st.integers(1, 6),
        "unit_price": st.integers(0, 10**6)}), min_size=1, max_size=5))
    gross = sum(x["qty"] * x["unit_price"] for x in lines)
    return {
        "lines": lines, "gross": gross,
        "discounts": [{"rule": f"d{i}", "amount": a}
                      for i, a in enumerate(draw(st.lists(amount, max_size=3)))],
        "redeemed_points": draw(amount), "redeemed_value": draw(amount),
        "credits_used": [{"kind": "credit.club", "amount": draw(amount)}],
        "payable": draw(amount),
        "points_earned": [{"rule": "p", "points": draw(amount)}],
        "credits_earned": [{"rule": "c", "kind": "credit.club", "amount": draw(amount)}],
        "lottery_entries": draw(st.integers(0, 50)),
    }


def _totals(parts: list[Any]) -> dict[str, int]:
    out: dict[str, int] = {"gross": sum(p.gross for p in parts)}
    for key in SCALARS:
        out[key] = sum(p.amounts[key] for p in parts)
    for key, amount_key in ROW_LISTS:
        for i, _row in enumerate(parts[0].rows[key] if parts else []):
            out[f"{key}.{i}"] = sum(p.rows[key][i][amount_key] for p in parts)
    return out


def _whole(sale: dict[str, Any]) -> dict[str, int]:
    out = {"gross": sale["gross"], **{k: sale[k] for k in SCALARS}}
    for key, amount_key in ROW_LISTS:
        for i, row in enumerate(sale[key]):
            out[f"{key}.{i}"] = row[amount_key]
    return out


@settings(max_examples=300, deadline=None)
@given(sales(), st.data())
def test_parts_never_exceed_the_whole_and_the_last_completes_it(
        sale: dict[str, Any], data: st.DataObject) -> None:
    """Refund a random sale unit by unit in random groups: every prefix of parts
    reverses at most the whole, and when the last unit goes the totals equal it."""
    units = [(i, line["qty"]) for i, line in enumerate(sale["lines"])]
    pool = [i for i, q in units for _ in range(q)]
    order = data.draw(st.permutations(pool))
    cuts = sorted(set(data.draw(st.lists(st.integers(1, len(pool)), max_size=len(pool)))))
    groups, start = [], 0
    for cut in [*cuts, len(pool)]:
        if cut > start:
            groups.append(order[start:cut])
            start = cut
    parts: list[Any] = []
    whole = _whole(sale)
    for group in groups:
        counts: dict[int, int] = {}
        for i in group:
            counts[i] = counts.get(i, 0) + 1
        part = refund_part(sale, sorted(counts.items()), earlier=[p.lines for p in parts])
        parts.append(part)
        done = _totals(parts)
        for key, value in done.items():
            assert 0 <= value <= whole[key], key
    assert parts[-1].completes
    assert not any(p.completes for p in parts[:-1])
    assert _totals(parts) == whole
    print(f"figure: {len(parts)} parts of {len(pool)} units reverse the whole exactly")
