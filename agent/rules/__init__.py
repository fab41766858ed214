"""The rules engine: signed rule bundles and the exact arithmetic of a sale.

A pure core (``rules.md``): no I/O except the key-file helpers, no clock (the time
is passed in), integers for all money.

- :func:`parse_bundle` → :class:`Bundle` (validated and indexed)
- :func:`accept_envelope`, :func:`verify_envelope`, :func:`sign_payload`,
  :func:`load_trusted_keys`, :class:`BundleState` (keeps the last good bundle)
- :func:`quote` (``QuoteRequest``, ``MemberView``, ``QuoteContext``) → :class:`Quote`
"""

from __future__ import annotations

from agent.errors import BundleRejected, LimitExceeded, RulesError
from agent.rules.allocate import LineBenefit, line_benefits
from agent.rules.bundle import Bundle, Rule, parse_bundle
from agent.rules.engine import format_money, quote
from agent.rules.envelope import (
    BundleState,
    accept_envelope,
    check_bundle,
    load_private_key,
    load_public_key,
    load_trusted_keys,
    sign_payload,
    verify_envelope,
    write_keypair,
)
from agent.rules.model import (
    Line,
    MemberView,
    Quote,
    QuoteContext,
    QuoteRequest,
    lines_from_json,
)

__all__ = [
    "Bundle",
    "BundleRejected",
    "BundleState",
    "LimitExceeded",
    "Line",
    "LineBenefit",
    "MemberView",
    "Quote",
    "QuoteContext",
    "QuoteRequest",
    "Rule",
    "RulesError",
    "accept_envelope",
    "check_bundle",
    "format_money",
    "line_benefits",
    "lines_from_json",
    "load_private_key",
    "load_public_key",
    "load_trusted_keys",
    "parse_bundle",
    "quote",
    "sign_payload",
    "verify_envelope",
    "write_keypair",
]
