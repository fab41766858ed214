"""Cashier-readable, translated text for local API errors."""

from __future__ import annotations

from agent.errors import ApiError
from agent.localapi import (
    CONFLICT,
    LIMIT,
    MEMBER_NOT_ACTIVE,
    NOT_ALLOWED,
    NOT_FOUND,
    QUOTE_EXPIRED,
    STORAGE,
    UNKNOWN_MEMBER,
)
from agent.tui.i18n import N_, current, display, fill

# A translated headline per error code; the agent's own sentence follows it
# where it carries specifics (who is booked, which limit).
_HEADLINES = {
    UNKNOWN_MEMBER: N_("No member found."),
    MEMBER_NOT_ACTIVE: N_("This card is blocked or reported lost: no benefits."),
    LIMIT: N_("Over a limit."),
    QUOTE_EXPIRED: N_("The price has expired; it was checked again."),
    STORAGE: N_("Could not save: nothing was recorded. Call a technician."),
    NOT_ALLOWED: N_("Not allowed for your role, or your sign-in has ended."),
    NOT_FOUND: N_("Not found."),
    CONFLICT: N_("Refused: it clashes with what is already recorded."),
}
DISCONNECTED = -1


def error_text(error: ApiError) -> str:
    """What to show the cashier for ``error``, in the UI's language (display order)."""
    return display(error_logical(error))


def error_logical(error: ApiError) -> str:
    """:func:`error_text` in logical order, for a line that may wrap (RTL)."""
    if error.code == DISCONNECTED:
        return fill("The agent is not answering. Check that it is running.")
    if current().code == "en" or error.code not in _HEADLINES:
        # The agent's messages are English sentences written for cashiers.
        return str(error)
    return fill(
        "{headline} ({detail})",
        headline=current().gettext(_HEADLINES[error.code]),
        detail=str(error),
    )
