"""Staff lists the simulated club publishes (``docs/protocol/staff.md``).

The demo staff are the ones ``hw_sim.terminal`` seeds into a terminal's store, so
a terminal that gets its staff from the club signs in the same people with the
same PINs and badges.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from agent.offline_queue.pinhash import hash_pin
from agent.staff.staff_list import KIND, stored_to_pin

# (staff_id, name, groups, PIN, badge): hw_sim.terminal.STAFF, as the club has them.
DEMO_STAFF: tuple[tuple[str, str, tuple[str, ...], str, str], ...] = (
    ("1", "Mina Rahimi", ("cashier",), "1234", "nfc:04AA000001"),
    ("2", "Reza Karimi", ("manager",), "4321", "nfc:04AA000002"),
    ("3", "Tom Berger", ("technician",), "9999", "nfc:04AA000003"),
)

# The default groups spelled out, as a club would send them.
DEMO_GROUPS: dict[str, Any] = {
    "cashier": {"permissions": {
        "sale": ["view", "add", "print"], "expense": ["view", "add"],
        "cash_receipt": ["view", "add"], "clock": ["add"],
        "appointment": ["view", "add", "edit", "delete"], "member_enrol": ["view", "add"],
        "report": ["view"]}},
    "manager": {"permissions": {f: ["view", "add", "edit", "delete", "print"] for f in (
        "sale", "refund", "void", "expense", "cash_receipt", "clock", "clock_others",
        "appointment", "member_enrol", "report", "staff_manage", "settings")}},
    "technician": {"permissions": {"clock": ["add"], "report": ["view"],
                                   "settings": ["view", "edit"]}},
}


def staff_entry(staff_id: str, name: str, groups: Iterable[str], *, pin: str | None = None,
                badges: Iterable[str] = (), active: bool = True,
                log2_n: int = 14) -> dict[str, Any]:
    """One person as the wire has it (the PIN hashed here, never sent)."""
    return {"staff_id": staff_id, "name": name, "groups": list(groups),
            "pin": stored_to_pin(hash_pin(pin, log2_n=log2_n)) if pin is not None else None,
            "badges": list(badges), "active": active}


def demo_staff(log2_n: int = 14) -> list[dict[str, Any]]:
    """The demo staff (1/1234 cashier, 2/4321 manager, 3/9999 technician)."""
    return [staff_entry(i, n, g, pin=p, badges=[b], log2_n=log2_n)
            for i, n, g, p, b in DEMO_STAFF]


def make_staff_list(club: str, merchant: str, version: int,
                    staff: list[dict[str, Any]] | None = None,
                    groups: dict[str, Any] | None = None) -> dict[str, Any]:
    """A staff list body (the demo staff and groups unless given)."""
    return {"kind": KIND, "club_id": club, "merchant_id": merchant, "version": version,
            "groups": DEMO_GROUPS if groups is None else groups,
            "staff": demo_staff() if staff is None else staff}


def apply_staff_change(body: dict[str, Any], event: dict[str, Any]) -> bool:
    """Fold a terminal's ``staff_change`` event into a list body; True if it changed."""
    target = event.get("target_staff_id")
    if not isinstance(target, str) or not target:
        return False
    entry = {"staff_id": target, "name": str(event.get("name") or target),
             "groups": list(event.get("groups") or ["cashier"]), "pin": event.get("pin"),
             "badges": list(event.get("badges") or []), "active": bool(event.get("active", True))}
    staff = [s for s in body["staff"] if s.get("staff_id") != target]
    staff.append(entry)
    body["staff"] = staff
    return True
