"""The agent's local API (``local-api.md``): JSON-RPC 2.0 over a Unix socket.

:class:`LocalApi` is the one interface its clients (the terminal UI, ``clubterm
status``, ``clubterm sale``) program against. ``client.py`` is its one
implementation, over the socket; ``demo.py`` runs the agent's own store, services
and server in a temporary folder behind it (``clubterm tui --demo``, the UI's tests).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol

from agent.errors import ApiError

# Error codes of local-api.md.
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
UNKNOWN_MEMBER = -32001
MEMBER_NOT_ACTIVE = -32002
LIMIT = -32003
QUOTE_EXPIRED = -32004
STORAGE = -32005
NOT_ALLOWED = -32006
NOT_FOUND = -32007
CONFLICT = -32008
# Sent on a connection the agent refuses (too many connections), then it is closed.
BUSY = -32000

ERROR_NAMES = {
    UNKNOWN_MEMBER: "unknown_member",
    MEMBER_NOT_ACTIVE: "member_not_active",
    LIMIT: "limit",
    QUOTE_EXPIRED: "quote_expired",
    STORAGE: "storage",
    NOT_ALLOWED: "not_allowed",
    NOT_FOUND: "not_found",
    CONFLICT: "conflict",
    BUSY: "busy",
}

# The local API's resource limits (docs/local-api.md, "Limits"). The connection
# caps stay far below the unit's LimitNOFILE=1024; [local_api] in the
# configuration may change them.
MAX_LINE_BYTES = 1024 * 1024
MAX_CONNECTIONS = 64
MAX_CONNECTIONS_PER_USER = 16
MAX_DEPTH = 32
MAX_TEXT_CHARS = 4096
MAX_VALUES = 20_000
QUOTE_TTL_SECONDS = 120


def receipt_number(sale_id: str) -> str:
    """The receipt number a customer reads and a cashier types back: the last eight
    hex digits of the sale's UUIDv7 id as ``XXXX-XXXX`` (its random part: stable,
    needs no counter, and the club finds the sale by it). docs/local-api.md."""
    tail = "".join(c for c in sale_id if c.isalnum())[-8:].upper()
    return f"{tail[:4]}-{tail[4:]}" if len(tail) == 8 else tail


class LocalApi(Protocol):
    """What a client of the agent can do."""

    async def call(self, method: str, params: Mapping[str, Any] | None = None) -> Any:
        """Call ``method``; return its result or raise :class:`ApiError`."""
        ...

    def events(self) -> AsyncIterator[dict[str, Any]]:
        """Subscribe (``events.subscribe``) and yield each notification's params."""
        ...

    async def close(self) -> None:
        """Disconnect."""
        ...


__all__ = ["ApiError", "LocalApi", "receipt_number"]
