"""What the link's core asks its shell to do: typed actions, carried out in order.

The core (:mod:`agent.sync.core`) never touches the network, a thread or the
clock; it returns these and the shell (:mod:`agent.sync.link`) performs them one
after the other before it feeds the core its next input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agent.sync.messages import Manifest


@dataclass(frozen=True)
class Publish:
    """Publish ``payload`` on ``topic`` (the exact bytes go on the wire)."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False


@dataclass(frozen=True)
class RecordAcks:
    """Write acked event ids (and the club's ``applied_seq``) to the outbox."""

    accepted: tuple[str, ...]
    applied_seq: int | None


@dataclass(frozen=True)
class MarkSent:
    """Mark events as sent (bookkeeping for batches unacked for a while)."""

    ids: tuple[str, ...]


@dataclass(frozen=True)
class Reject:
    """Record events as rejected, with the reason (the club's or ``too_large``)."""

    rejected: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class FetchSnapshot:
    """Fetch the member snapshot ``since`` a version (off the worker); the outcome
    comes back as :meth:`agent.sync.core.LinkCore.snapshot_done`."""

    since: int


@dataclass(frozen=True)
class FetchDocument:
    """Fetch the document a signed manifest names (off the worker, one per kind at a
    time); the outcome comes back as :meth:`agent.sync.core.LinkCore.document_done`."""

    manifest: Manifest


@dataclass(frozen=True)
class CancelDocument:
    """Abandon the running fetch of ``kind`` (a newer manifest superseded it)."""

    kind: str


@dataclass(frozen=True)
class Emit:
    """Tell the rest of the agent (``{"type": "link" | "queue" | "rules" | …}``)."""

    event: dict[str, Any]


@dataclass(frozen=True)
class SetLogLevel:
    """The club's ``set_log_level`` command: change the root logger's level."""

    level: str


Action = (Publish | RecordAcks | MarkSent | Reject | FetchSnapshot | FetchDocument
          | CancelDocument | Emit | SetLogLevel)
