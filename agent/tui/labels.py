"""Names the agent sends as codes (roles, tiers, balance kinds, payments),
as a cashier reads them in the UI's language."""

from __future__ import annotations

from agent.tui.i18n import N_, current

ROLE_NAMES = {"cashier": N_("Cashier"), "manager": N_("Manager"), "technician": N_("Technician")}
TIER_NAMES = {"gold": N_("Gold"), "silver": N_("Silver"), "bronze": N_("Bronze")}
PAYMENT_NAMES = {"cash": N_("Cash"), "card": N_("Card"), "other": N_("Other"),
                 "credit": N_("Credit"), "voucher": N_("Voucher"),
                 "account": N_("On account"),
                 "stored_value": N_("Stored value"), "gift_card": N_("Gift card")}
READER_STATES = {"connecting": N_("connecting"), "error": N_("error"), "retry": N_("retrying")}


def _name(table: dict[str, str], code: str) -> str:
    return current().gettext(table[code]) if code in table else code


def role_name(role: str) -> str:
    """``cashier`` → ``Cashier`` (translated)."""
    return _name(ROLE_NAMES, role)


def tier_name(tier: str) -> str:
    """``gold`` → ``Gold`` (translated)."""
    return _name(TIER_NAMES, tier)


def payment_name(payment: str) -> str:
    """``cash`` → ``Cash`` (translated)."""
    return _name(PAYMENT_NAMES, payment)


def reader_state(state: str) -> str:
    """A reader state that is not ready, translated."""
    return _name(READER_STATES, state)


def credit_name(kind: str) -> str:
    """A balance kind as a cashier says it: club credit, shop credit (logical order)."""
    if kind == "credit.club":
        return current().gettext("club credit")
    if kind.startswith("credit.merchant"):
        return current().gettext("shop credit")
    return kind.removeprefix("credit.")
