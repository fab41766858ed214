"""Every published message: name → Struct (one line per message).

Adding a message: define its Struct in the module of its area, add one line to
``MESSAGES`` (and, for MQTT, one row to ``CHANNELS``), run
``python -m agent.protocol.schemas --write`` and commit the generated files.
"""

from __future__ import annotations

from typing import Any

from agent.protocol import documents, enrolment, events, sync

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
    "manifest": sync.Manifest,
    "member-lookup-request": sync.LookupRequest,
    "member-lookup-answer": sync.LookupAnswer,
    # The signed payloads of the retained documents (an envelope's base64 ``payload``).
    "bundle": documents.Bundle,
    "staff-list": documents.StaffList,
    "catalogue": documents.Catalogue,
    "catalogue-changes": documents.CatalogueChanges,
    # Enrolment (docs/provisioning.md).
    "enrolment-lookup-request": enrolment.LookupRequest,
    "enrolment-lookup-answer": enrolment.LookupAnswer,
    "enrolment-request": enrolment.EnrolRequest,
    "enrolment-answer": enrolment.EnrolAnswer,
    "certificate-renewal-request": enrolment.RenewRequest,
    "certificate-renewal-answer": enrolment.RenewAnswer,
}

#: What a signed envelope on a channel carries in its payload (or, with
#: ``"type": "manifest"``, fetches over HTTPS): channel → message.
ENVELOPE_PAYLOADS: dict[str, str] = {
    "rules": "bundle",
    "staff": "staff-list",
    "catalogue": "catalogue",
    "catalogue-changes": "catalogue-changes",
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
    "catalogue": ("merchants/{merchant_id}/catalogue", "signed-envelope", "receive", 1, True),
    "catalogue-changes": ("merchants/{merchant_id}/catalogue/changes", "signed-envelope",
                          "receive", 1, False),
    "member-changes": ("members/changes", "change-set", "receive", 1, False),
    # (1.2) scoped member streams (club.md "Member scopes").
    "merchant-member-changes": ("members/merchants/{merchant_id}/changes", "change-set",
                                "receive", 1, False),
    "group-member-changes": ("members/groups/{group_id}/changes", "change-set",
                             "receive", 1, False),
}

#: HTTPS endpoints (OpenAPI): path → (method, summary, request message or None,
#: response message, response content type).
HTTPS_PATHS: dict[str, tuple[str, str, str | None, str, str]] = {
    "/v1/clubs/{club_id}/members": (
        "get", "Member snapshot (mutual TLS): one member record (or tombstone) per line",
        None, "snapshot-line", "application/x-ndjson"),
    "/v1/clubs/{club_id}/members/lookup": (
        "post", "Online lookup of a card the cache does not hold (mutual TLS, 1.2)",
        "member-lookup-request", "member-lookup-answer", "application/json"),
    "/v1/clubs/{club_id}/merchants/{merchant_id}/bundles/{version}": (
        "get", "A large rule bundle named by a manifest (mutual TLS, 1.1): the signed "
        "bundle bytes, gzip when the manifest says content_encoding gzip",
        None, "bundle", "application/json"),
    "/v1/enrolment/lookup": (
        "post", "Which terminal an enrolment code is for (does not use it)",
        "enrolment-lookup-request", "enrolment-lookup-answer", "application/json"),
    "/v1/enrolment": (
        "post", "Enrol: use the code, sign the CSR, answer the configuration",
        "enrolment-request", "enrolment-answer", "application/json"),
    "/v1/terminals/{terminal_id}/certificate": (
        "post", "Certificate renewal (mutual TLS with the current certificate)",
        "certificate-renewal-request", "certificate-renewal-answer", "application/json"),
}
