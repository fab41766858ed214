"""Typed messages the UI's workers post back to screens."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.message import Message

from agent.errors import ApiError

# What a screen runs with an API answer: a bound method (or a partial of one),
# so a mistyped name is an attribute error for mypy, not a dropped answer.
OnDone = Callable[[Any], None]
# A failure handler returns False to have the default error shown as well.
OnFailed = Callable[[ApiError], bool | None]


class ApiDone(Message):
    """A local API call a screen made answered ``result``; ``on_done`` takes it."""

    def __init__(self, method: str, result: Any, on_done: OnDone) -> None:
        self.method = method
        self.result = result
        self.on_done = on_done
        super().__init__()


class ApiFailed(Message):
    """A local API call a screen made failed with ``error``; ``on_failed``
    (if any) takes it before the default handling."""

    def __init__(self, method: str, error: ApiError, on_failed: OnFailed | None) -> None:
        self.method = method
        self.error = error
        self.on_failed = on_failed
        super().__init__()


class CardRead(Message):
    """A card was presented or a code scanned (the agent's ``card`` event)."""

    def __init__(self, event: dict[str, Any]) -> None:
        self.event = event
        super().__init__()

    @property
    def token(self) -> str:
        """The identifier token (``nfc:…``, ``pan:…``, ``code:…``), or for a staff
        badge the single-use tap reference (``tap:…``) to sign in or clock with."""
        return str(self.event.get("token") or "")

    @property
    def staff_badge(self) -> bool:
        """True for a staff badge tapped on the terminal (``kind: "staff_badge"``)."""
        return self.event.get("kind") == "staff_badge"


class StatusChanged(Message):
    """The agent's status (link, queue, rules, readers) changed."""


class AgentReconnected(Message):
    """The agent answers again after its connection ended (it restarted)."""
