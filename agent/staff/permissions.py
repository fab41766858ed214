"""What a staff member may do: permissions per feature, granted through groups.

A permission is ``"<feature>.<action>"`` (``"sale.add"``). A group grants a set
of them; a person in several groups has the union. The three roles the terminal
knew before the club sent staff (cashier, manager, technician) are the default
groups, so a local staff member's role still means what it meant
(``docs/protocol/staff.md``, "Permissions").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

FEATURES = ("sale", "refund", "void", "expense", "cash_receipt", "clock", "clock_others",
            "appointment", "member_enrol", "report", "staff_manage", "settings",
            "balance_adjust")
ACTIONS = ("view", "add", "edit", "delete", "print")
ROLES = ("cashier", "manager", "technician")

Permissions = frozenset[str]


def permission(feature: str, action: str) -> str:
    """The permission string of ``action`` on ``feature``."""
    return f"{feature}.{action}"


def _grant(table: Mapping[str, Iterable[str]]) -> Permissions:
    return frozenset(permission(f, a) for f, actions in table.items() for a in actions)


#: The default groups: what each role could do before permissions existed.
DEFAULT_GROUPS: dict[str, Permissions] = {
    "cashier": _grant({
        "sale": ("view", "add", "print"), "expense": ("view", "add"),
        "cash_receipt": ("view", "add"), "clock": ("add",),
        "appointment": ("view", "add", "edit", "delete"), "member_enrol": ("view", "add"),
        "report": ("view",),
    }),
    "manager": _grant({f: ACTIONS for f in FEATURES}),
    "technician": _grant({"clock": ("add",), "report": ("view",),
                          "settings": ("view", "edit")}),
}

# What each local-API call needs (docs/local-api.md, "Permissions").
SELL = permission("sale", "add")
REFUND = permission("refund", "add")
ENROL = permission("member_enrol", "add")
EXPENSE = permission("expense", "add")
CASH_RECEIPT = permission("cash_receipt", "add")
CLOCK = permission("clock", "add")
APPOINTMENT_ADD = permission("appointment", "add")
APPOINTMENT_EDIT = permission("appointment", "edit")
APPOINTMENT_DELETE = permission("appointment", "delete")
REPORT = permission("report", "view")
STAFF_FIGURES = permission("staff_manage", "view")
STAFF_ADD = permission("staff_manage", "add")
SALE_VIEW = permission("sale", "view")
# Voiding another staff member's sale; one's own last sale needs only SELL.
VOID = permission("void", "add")
CARD_LINK = permission("member_enrol", "edit")
# A manager's correction of someone else's clock-in or -out.
CLOCK_OTHERS = permission("clock_others", "edit")
# The end-of-day close (Z report).
DAY_CLOSE = permission("report", "print")
# (1.3) Manual points and granted credit (balance.adjust), and their report.
ADJUST = permission("balance_adjust", "add")
ADJUST_REPORT = permission("balance_adjust", "view")


def union(groups: Iterable[str], definitions: Mapping[str, Permissions]) -> Permissions:
    """Every permission of every group in ``groups`` (unknown names grant nothing)."""
    out: set[str] = set()
    for name in groups:
        out |= definitions.get(name, frozenset())
    return frozenset(out)


def role_of(groups: Iterable[str], granted: Permissions) -> str:
    """The role shown for a person: the strongest default group they are in, else the
    role whose typical permissions they hold (manager, cashier, technician)."""
    names = set(groups)
    for role in ("manager", "cashier", "technician"):
        if role in names:
            return role
    if STAFF_ADD in granted or REFUND in granted:
        return "manager"
    if SELL in granted:
        return "cashier"
    return "technician"


def as_table(granted: Permissions) -> dict[str, list[str]]:
    """``{"sale": ["add", "view"], ...}``, features and actions in their canonical order
    (the login result's ``permissions``)."""
    out: dict[str, list[str]] = {}
    for feature in FEATURES:
        actions = [a for a in ACTIONS if permission(feature, a) in granted]
        if actions:
            out[feature] = actions
    return out


def describe(perm: str) -> str:
    """A short human phrase for a permission ("add sale")."""
    feature, _, action = perm.partition(".")
    return f"{action} {feature.replace('_', ' ')}"
