"""The explanation of a quote: one entry per rule looked at, and notes per step.

Each entry is a dict with a machine-readable part (``rule``, ``kind``, ``applied``,
``why`` and numbers) and a ``text`` for people. **Every** entry has ``why``, its
reason code (protocol 1.1, docs/protocol/bundle.md "Explanation codes"): ``applied``
for a rule applied, the failing condition (or ``exclusive``, ``unknown``,
``not_requested`` …) for a rule not applied, and a code per note; the entry's other
keys are the code's parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from agent.rules.rule import Rule

if TYPE_CHECKING:
    from agent.rules.bundle import Bundle


def format_money(amount: int, minor_units: int, currency: str = "") -> str:
    """``505`` with 2 minor units → ``"5.05"`` (integers only, no float)."""
    sign = "-" if amount < 0 else ""
    amount = abs(amount)
    if minor_units <= 0:
        text = str(amount)
    else:
        whole, frac = divmod(amount, 10**minor_units)
        text = f"{whole}.{frac:0{minor_units}d}"
    return f"{sign}{text} {currency}".rstrip() if currency else sign + text


def factor(bps: int) -> str:
    """20000 → "2", 15000 → "1.5"."""
    return format_money(bps, 4).rstrip("0").rstrip(".")


def or_list(items: Sequence[str]) -> str:
    """``["b", "a", "c"]`` → ``"a, b or c"``."""
    items = sorted(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " or " + items[-1]


class Explainer:
    """Collects the explanation entries of one quote, in order."""

    __slots__ = ("cur", "div", "entries", "fmt", "listed", "mu")

    def __init__(self, bundle: Bundle | None):
        self.entries: list[dict[str, Any]] = []
        self.listed = 0
        self.mu = bundle.minor_units if bundle is not None else 0
        self.div = 10**self.mu
        self.cur = f" {bundle.currency}" if bundle is not None else ""
        # format_money for amounts ≥ 0 as one prepared format: a quote formats dozens.
        self.fmt = "%d.%0" + str(self.mu) + "d" + self.cur.replace("%", "%%")

    def money(self, amount: int) -> str:
        """``amount`` with the bundle's minor units and currency."""
        if amount < 0 or not self.mu:
            return format_money(amount, self.mu) + self.cur
        text: str = self.fmt % divmod(amount, self.div)
        return text

    def applied(self, rule: Rule, text: str, **numbers: Any) -> None:
        """The rule applied: ``numbers`` are its machine-readable figures."""
        self.listed += 1
        entry: dict[str, Any] = {"rule": rule.id, "kind": rule.kind, "applied": True,
                                 "why": "applied", **numbers,
                                 "text": f"{rule.id}: {text}"}
        self._name(rule, entry)
        self.entries.append(entry)

    @staticmethod
    def _name(rule: Rule, entry: dict[str, Any]) -> None:
        """The bundle's ``name`` of the rule, if it has one, for a till to show
        (docs/rules.md); the id stays the machine key."""
        name = rule.raw.get("name")
        if isinstance(name, str) and name.strip():
            entry["name"] = name.strip()[:80]

    def skipped(self, rule: Rule, reason: str, why: str = "", **extra: Any) -> None:
        """The rule was looked at and not applied; ``why`` names the failing condition."""
        self.listed += 1
        entry: dict[str, Any] = {"rule": rule.id, "kind": rule.kind, "applied": False,
                                 "reason": reason}
        entry["why"] = why or "not_applied"
        if extra:
            entry.update(extra)
        if "name" not in entry:
            self._name(rule, entry)
        entry["text"] = f"{rule.id}: not applied, {reason}"
        self.entries.append(entry)

    def note(self, step: str, text: str, *, why: str, **extra: Any) -> None:
        """A note about a step of the sale (redeem, credit, expiry, limit, index …);
        ``why`` is its reason code, ``extra`` the code's parameters."""
        entry: dict[str, Any] = {"step": step, "why": why}
        if extra:
            entry.update(extra)
        entry["text"] = text
        self.entries.append(entry)
