"""Incoming messages, parsed and checked: pure functions, no I/O.

Each parser takes the raw payload and returns a typed value or raises
:class:`MessageError`; the link logs and drops such a message and carries on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeVar

from agent.errors import LinkError
from agent.protocol import sync as wire
from agent.protocol.base import ProtocolError
from agent.protocol.base import decode as protocol_decode

_T = TypeVar("_T")

MAX_PAYLOAD = 256 * 1024


class MessageError(LinkError):
    """A message from the club is malformed or too large; it is dropped."""


@dataclass(frozen=True)
class Ack:
    """The club's answer to a batch."""

    batch: str | None
    accepted: list[str]
    rejected: list[tuple[str, str]]
    applied_seq: int | None


@dataclass(frozen=True)
class ChangeSet:
    """A member change set ``from_version`` → ``to_version``."""

    from_version: int
    to_version: int
    raw: dict[str, Any] = field(repr=False)


@dataclass(frozen=True)
class Command:
    """A command from the club."""

    id: str
    type: str
    args: dict[str, Any]


def _decode(kind: type[_T], payload: bytes, what: str) -> _T:
    """``payload`` through its Struct (agent/protocol); errors name the path."""
    try:
        return protocol_decode(kind, payload, limit=MAX_PAYLOAD)
    except ProtocolError as exc:
        raise MessageError(f"{what}: {exc}") from None


def load_object(payload: bytes) -> dict[str, Any]:
    """The JSON object in ``payload`` (at most 256 KiB)."""
    return _decode(dict[str, Any], payload, "message")


def parse_ack(payload: bytes) -> Ack:
    """An ack: ``{batch, accepted: [id], rejected: [{id, reason}], applied_seq}``."""
    doc = _decode(wire.Ack, payload, "ack")
    rejected = [(row.id, row.reason or "rejected") for row in doc.rejected]
    return Ack(doc.batch, list(doc.accepted), rejected, doc.applied_seq)


def parse_change_set(payload: bytes) -> ChangeSet:
    """A change set: versions are whole numbers, ``members`` records, ``removed`` ids."""
    doc = _decode(wire.ChangeSet, payload, "change set")
    if doc.to_version < doc.from_version:
        raise MessageError("change set needs whole from_version <= to_version")
    # The store applies the records as plain dicts (unknown keys kept for newer clubs).
    return ChangeSet(doc.from_version, doc.to_version, load_object(payload))


def parse_command(payload: bytes) -> Command:
    """A command ``{id, type, args}``."""
    doc = _decode(wire.Command, payload, "command")
    return Command(doc.id, doc.type, doc.args if doc.args is not None else {})


def parse_envelope(payload: bytes) -> dict[str, Any]:
    """A rule-bundle envelope as a dict (its contents are checked by the rules engine)."""
    return load_object(payload)
