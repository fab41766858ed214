"""Small builders for rules tests."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from agent.rules import (
    Bundle,
    Line,
    MemberView,
    Quote,
    QuoteContext,
    QuoteRequest,
    lines_from_json,
    parse_bundle,
    quote,
)
from tests.agent.rules.conftest import MEMBER, SPEC_BASKET, spec_bundle

TUE_10 = "2026-11-24T10:00:00+01:00"


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def bundle_with(rules: list[dict[str, Any]], **top: Any) -> Bundle:
    return parse_bundle(json.dumps(spec_bundle(rules=rules, **top)).encode())


def run(bundle: Bundle | None, *, member: dict[str, Any] | None = MEMBER,
        when: str = TUE_10, basket: list[Any] | None = None, offline: bool = False,
        redeemed_today: int = 0, credit_used_today: int = 0, pending: int = 0,
        oldest_s: float | None = None, use_index: bool = True,
        **request: Any) -> Quote:
    lines: list[Line] = lines_from_json(SPEC_BASKET if basket is None else basket)
    ctx = QuoteContext(at(when), offline=offline, redeemed_today=redeemed_today,
                       credit_used_today=credit_used_today, pending_count=pending,
                       oldest_pending_age_s=oldest_s)
    view = MemberView(member) if member is not None else None
    return quote(bundle, QuoteRequest(lines, **request), view, ctx, use_index=use_index)


def entry(q: Quote, rule_id: str) -> dict[str, Any] | None:
    for e in q.explain:
        if e.get("rule") == rule_id:
            return e
    return None
