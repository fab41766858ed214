# ruff: noqa
# The hand-written parsers as they were before agent/protocol (commit 3275830), kept
# only so bench.wire can measure old against new in one run.
"""Incoming messages, parsed and checked: pure functions, no I/O.

Each parser takes the raw payload and returns a typed value or raises
:class:`MessageError`; the link logs and drops such a message and carries on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from agent.errors import LinkError

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


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def load_object(payload: bytes) -> dict[str, Any]:
    """The JSON object in ``payload`` (at most 256 KiB)."""
    if len(payload) > MAX_PAYLOAD:
        raise MessageError(f"message of {len(payload)} bytes is over the 256 KiB limit")
    try:
        doc = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise MessageError(f"message is not UTF-8 JSON: {exc}") from None
    except RecursionError:
        raise MessageError("message is nested too deeply to read") from None
    if not isinstance(doc, dict):
        raise MessageError("message is not a JSON object")
    return doc


def parse_ack(payload: bytes) -> Ack:
    """An ack: ``{batch, accepted: [id], rejected: [{id, reason}], applied_seq}``."""
    doc = load_object(payload)
    accepted = doc.get("accepted", [])
    rejected_raw = doc.get("rejected", [])
    if not isinstance(accepted, list) or not all(isinstance(i, str) for i in accepted):
        raise MessageError("ack 'accepted' must be a list of event ids")
    if not isinstance(rejected_raw, list):
        raise MessageError("ack 'rejected' must be a list")
    rejected: list[tuple[str, str]] = []
    for row in rejected_raw:
        if not isinstance(row, dict) or not isinstance(row.get("id"), str):
            raise MessageError("ack 'rejected' rows must be {id, reason}")
        rejected.append((row["id"], str(row.get("reason") or "rejected")))
    applied = doc.get("applied_seq")
    if applied is not None and (not _is_int(applied) or applied < 0):
        raise MessageError("ack 'applied_seq' must be a whole number")
    batch = doc.get("batch")
    return Ack(batch if isinstance(batch, str) else None, list(accepted), rejected, applied)


def parse_change_set(payload: bytes) -> ChangeSet:
    """A change set: versions are whole numbers, ``members`` records, ``removed`` ids."""
    doc = load_object(payload)
    frm, to = doc.get("from_version"), doc.get("to_version")
    if not isinstance(frm, int) or not isinstance(to, int) or not _is_int(frm) \
            or not _is_int(to) or frm < 0 or to < frm:
        raise MessageError("change set needs whole from_version <= to_version")
    members = doc.get("members", [])
    if not isinstance(members, list) or not all(
            isinstance(m, dict) and isinstance(m.get("member_id"), str) for m in members):
        raise MessageError("change set 'members' must be a list of member records")
    removed = doc.get("removed", [])
    if not isinstance(removed, list) or not all(isinstance(r, str) for r in removed):
        raise MessageError("change set 'removed' must be a list of member ids")
    return ChangeSet(frm, to, doc)


def parse_command(payload: bytes) -> Command:
    """A command ``{id, type, args}``."""
    doc = load_object(payload)
    cid, ctype, args = doc.get("id"), doc.get("type"), doc.get("args", {})
    if not isinstance(cid, str) or not cid or len(cid) > 200:
        raise MessageError("command has no usable 'id'")
    if not isinstance(ctype, str):
        raise MessageError("command has no 'type'")
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise MessageError("command 'args' must be an object")
    return Command(cid, ctype, args)


def parse_envelope(payload: bytes) -> dict[str, Any]:
    """A rule-bundle envelope as a dict (its contents are checked by the rules engine)."""
    return load_object(payload)
