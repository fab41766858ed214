"""Typed messages the UI's workers post back to screens."""

from __future__ import annotations

from typing import Any

from textual.message import Message

from agent.errors import ApiError


class ApiDone(Message):
    """A local API call a screen made (``tag`` says which) answered ``result``."""

    def __init__(self, tag: str, method: str, result: Any) -> None:
        self.tag = tag
        self.method = method
        self.result = result
        super().__init__()


class ApiFailed(Message):
    """A local API call a screen made failed with ``error``."""

    def __init__(self, tag: str, method: str, error: ApiError) -> None:
        self.tag = tag
        self.method = method
        self.error = error
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
