"""What each line of a sale got: its share of the discounts and points (pure).

The engine computes a sale as a whole (``rules.md``) and keeps what every line has
left after the discounts (``Quote.line_nets``). A receipt and the till show the
benefits by line, so this splits them: a line's discount is what its price lost;
the points of each points rule go to the rule's target lines (those its ``skus``
and ``categories`` name, else every line) in proportion to what they pay, and a
multiplier's extra points follow the points each line already earned. The shares
add up exactly to the sale's figures: the units left by rounding go to the lines
with the largest remainders (then the earliest).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from agent.rules.bundle import Bundle, Rule
from agent.rules.model import Line, Quote


@dataclass(slots=True)
class LineBenefit:
    """One line's share: ``discount`` (minor units), ``points``, and the rules that gave them."""

    discount: int = 0
    points: int = 0
    rules: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {"discount": self.discount, "points": self.points, "rules": list(self.rules)}


def shares(amount: int, weights: Sequence[int]) -> list[int]:
    """``amount`` split in proportion to ``weights`` (all weights 0: evenly), each
    share rounded down and the rest given one by one to the largest remainders."""
    n = len(weights)
    if n == 0:
        return []
    total = sum(weights)
    if total <= 0:
        weights, total = [1] * n, n
    out = [amount * w // total for w in weights]
    rest = amount - sum(out)
    order = sorted(range(n), key=lambda i: (-(amount * weights[i] % total), i))
    for i in order[:rest]:
        out[i] += 1
    return out


def _targets(rule: Rule | None, lines: Sequence[Line]) -> list[int]:
    """The lines a rule works on (every line when it names no sku or category)."""
    if rule is None or not rule.targets_lines:
        return list(range(len(lines)))
    return [i for i, ln in enumerate(lines)
            if (rule.skus is None or ln.sku in rule.skus)
            and (rule.categories is None or ln.category in rule.categories)]


def line_benefits(bundle: Bundle | None, lines: Sequence[Line], quote: Quote) -> list[LineBenefit]:
    """Each line's share of ``quote``'s discounts and points (same order as ``lines``)."""
    out = [LineBenefit() for _ in lines]
    if not lines:
        return out
    nets = list(quote.line_nets) if len(quote.line_nets) == len(lines) \
        else [ln.qty * ln.unit_price for ln in lines]
    for i, ln in enumerate(lines):
        out[i].discount = max(0, ln.qty * ln.unit_price - nets[i])
    for rule_id, amount in quote.discounts:
        if amount <= 0:
            continue
        rule = bundle.rule(rule_id) if bundle is not None else None
        for i in _targets(rule, lines):
            if out[i].discount > 0 and rule_id not in out[i].rules:
                out[i].rules.append(rule_id)
    base_points = [0] * len(lines)
    for rule_id, points in quote.points_earned:
        rule = bundle.rule(rule_id) if bundle is not None else None
        if rule is not None and rule.kind == "multiplier":
            # The extra points of a multiplier follow the points each line earned.
            split = shares(points, base_points)
        else:
            targets = _targets(rule, lines)
            if not targets:
                targets = list(range(len(lines)))
            weights = [nets[i] for i in targets]
            if rule is not None and rule.per_unit is not None:
                weights = [lines[i].qty for i in targets]
            split = [0] * len(lines)
            for i, s in zip(targets, shares(points, weights), strict=True):
                split[i] = s
            for i, s in enumerate(split):
                base_points[i] += s
        for i, s in enumerate(split):
            if s:
                out[i].points += s
                if rule_id not in out[i].rules:
                    out[i].rules.append(rule_id)
    return out
