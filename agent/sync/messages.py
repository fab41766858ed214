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


# ---- manifests: a signed pointer to a document fetched over HTTPS ---------------

MANIFEST_KINDS = ("bundle", "catalogue")
CONTENT_ENCODINGS = ("identity", "gzip")
_SHA256_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class Manifest:
    """A signed manifest (``docs/protocol/club.md``, "Large documents"): the document
    of ``kind`` (``bundle`` now, ``catalogue`` later) at ``path`` on the club's HTTPS
    server, ``size`` bytes whose SHA-256 is ``sha256`` as sent (after
    ``content_encoding``)."""

    kind: str
    club: str
    merchant: str
    version: int
    sha256: str
    size: int
    path: str
    content_encoding: str = "identity"


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_manifest(envelope: dict[str, Any]) -> bool:
    """Whether a retained envelope is a manifest (``"type": "manifest"``) rather than
    the document itself."""
    return envelope.get("type") == "manifest"


def parse_manifest(payload: bytes) -> Manifest:
    """The manifest in ``payload`` (the envelope's verified payload bytes)."""
    doc = load_object(payload)
    kind, club, merchant = doc.get("kind"), doc.get("club"), doc.get("merchant")
    if kind not in MANIFEST_KINDS:
        raise MessageError(f"manifest 'kind' must be one of {', '.join(MANIFEST_KINDS)}")
    if not isinstance(club, str) or not isinstance(merchant, str):
        raise MessageError("manifest needs 'club' and 'merchant'")
    version, size = doc.get("version"), doc.get("size")
    if not isinstance(version, int) or not _is_int(version) or version < 1:
        raise MessageError("manifest 'version' must be a whole number ≥ 1")
    if not isinstance(size, int) or not _is_int(size) or size < 1:
        raise MessageError("manifest 'size' must be a whole number of bytes ≥ 1")
    digest = doc.get("sha256")
    if not isinstance(digest, str) or len(digest) != 64 or not set(digest) <= _SHA256_HEX:
        raise MessageError("manifest 'sha256' must be 64 lower-case hex digits")
    path = doc.get("path")
    # A path on the club's own HTTPS server: never another host ("//host", "https:").
    if (not isinstance(path, str) or not path.startswith("/") or path.startswith("//")
            or len(path) > 1024 or any(c in path for c in "\\#\r\n\t ")
            or any(ord(c) < 0x20 or ord(c) > 0x7e for c in path)):
        raise MessageError("manifest 'path' must be an absolute path on the club's server")
    encoding = doc.get("content_encoding", "identity")
    if encoding not in CONTENT_ENCODINGS:
        raise MessageError(f"manifest 'content_encoding' must be one of "
                           f"{', '.join(CONTENT_ENCODINGS)}")
    return Manifest(kind, club, merchant, version, digest, size, path, encoding)
