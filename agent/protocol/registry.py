"""Every published message: name → Struct (one line per message).

Adding a message: define its Struct in the module of its area, add one line to
``MESSAGES`` (and, for MQTT, one row to ``CHANNELS``), run
``python -m agent.protocol.schemas --write`` and commit the generated files.
"""

from __future__ import annotations

from typing import Any

from agent.protocol import events, sync

#: Schema name → the type it documents (``docs/protocol/schemas/<name>.schema.json``).
MESSAGES: dict[str, Any] = {
    "batch": events.Batch,
    "event": events.AnyEvent,
    "ack": sync.Ack,
    "member-record": sync.MemberRecord,
    "snapshot-line": sync.MemberRecord,
    "change-set": sync.ChangeSet,
    "command": sync.Command,
    "command-result": sync.CommandResult,
    "status": sync.Status,
    "signed-envelope": sync.Envelope,
}

#: MQTT channels (address under ``clubterm/v1/{club_id}``, see agent/sync/topics.py):
#: name → (address, message, direction seen from the terminal, QoS, retained).
CHANNELS: dict[str, tuple[str, str, str, int, bool]] = {
    "events": ("terminals/{terminal_id}/events", "batch", "send", 1, False),
    "acks": ("terminals/{terminal_id}/acks", "ack", "receive", 1, False),
    "status": ("terminals/{terminal_id}/status", "status", "send", 1, True),
    "commands": ("terminals/{terminal_id}/commands", "command", "receive", 1, False),
    "command-results": ("terminals/{terminal_id}/command-results", "command-result", "send",
                        1, False),
    "rules": ("merchants/{merchant_id}/rules", "signed-envelope", "receive", 1, True),
    "staff": ("merchants/{merchant_id}/staff", "signed-envelope", "receive", 1, True),
    "member-changes": ("members/changes", "change-set", "receive", 1, False),
}

#: HTTPS endpoints (OpenAPI): path → (method, summary, request message or None,
#: response message, response content type). Helper "bundles" adds the bundle and
#: catalogue fetch here (one row each).
HTTPS_PATHS: dict[str, tuple[str, str, str | None, str, str]] = {
    "/v1/clubs/{club_id}/members": (
        "get", "Member snapshot (mutual TLS): one member record per line",
        None, "snapshot-line", "application/x-ndjson"),
}
