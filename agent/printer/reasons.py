"""Why a rule applied, as receipt words (never the rule's id): pure, from the rule's
own conditions (``agent.rules.Rule``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent.rules.explain import format_money
from agent.rules.rule import Rule

Reason = tuple[str, Mapping[str, str]]


def rule_reasons(rule: Rule, minor_units: int, currency: str) -> tuple[Reason, ...]:
    """The conditions a customer understands, most telling first (at most three)."""
    out: list[Reason] = []
    if rule.percent_bps:
        pct = format_money(rule.percent_bps, 2).rstrip("0").rstrip(".")
        out.append(("why_percent", {"pct": pct}))
    if rule.tiers:
        out.append(("why_tier", {"tier": ", ".join(sorted(rule.tiers))}))
    elif rule.min_tier:
        out.append(("why_tier", {"tier": rule.min_tier}))
    if rule.categories:
        out.append(("why_category", {"what": ", ".join(sorted(rule.categories))}))
    elif rule.skus:
        out.append(("why_items", {}))
    if rule.birthday:
        out.append(("why_birthday", {}))
    if rule.codes or rule.coupon:
        out.append(("why_code", {}))
    if rule.dates:
        out.append(("why_dates", {}))
    elif rule.weekdays:
        out.append(("why_weekdays", {}))
    elif rule.hours:
        out.append(("why_hours", {}))
    if rule.min_gross:
        out.append(("why_min_gross", {"amount": format_money(rule.min_gross, minor_units,
                                                             currency)}))
    if rule.first_purchase:
        out.append(("why_first", {}))
    if not out:
        out.append(("why_everyone", {}) if rule.anonymous else ("why_members", {}))
    return tuple(out[:3])


def rule_label(rule: Rule) -> Mapping[str, str] | None:
    """The rule's own label by language if its bundle gives one (``label``: a string
    or ``{lang: text}``), else None."""
    raw: Any = rule.raw.get("label")
    if isinstance(raw, str):
        return {"": raw}
    if isinstance(raw, Mapping):
        return {str(k): str(v) for k, v in raw.items() if isinstance(v, str)}
    return None
