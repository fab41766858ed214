"""The link's settings (:class:`LinkTuning`) and its state as the agent sees it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from agent.config import Config
from agent.errors import LinkError
from agent.sync.download import DocumentLimits
from agent.sync.messages import MAX_PAYLOAD
from agent.sync.snapshot import SnapshotLimits

# An idle worker beats once a tick (up to 1 s): a shorter stall limit would restart a
# healthy agent.
_MIN_STALL_LIMIT_S = 3.0


@dataclass(frozen=True)
class LinkState:
    """The link as the rest of the agent sees it."""

    online: bool
    since: datetime | None  # when it last went online or offline
    last_ack_at: datetime | None
    pending: int  # events not yet acked (queue depth)
    in_flight: int = 0  # batches waiting for an ack
    last_error: str | None = None
    members_problem: str | None = None  # why the last member snapshot failed, until one works
    broker: str | None = None  # the broker it is connected to (URL, and address), if online

    def to_dict(self) -> dict[str, Any]:
        return {"online": self.online, "since": iso(self.since),
                "last_ack_at": iso(self.last_ack_at), "pending": self.pending,
                "in_flight": self.in_flight, "last_error": self.last_error,
                "members_problem": self.members_problem, "broker": self.broker}


@dataclass(frozen=True)
class LinkTuning:
    """Timings and sizes; defaults suit a shop, tests shorten them.

    Each can be set in the configuration's ``[club]`` table under the same name.
    """

    keepalive_s: int = 30
    reconnect_base_s: float = 1.0
    reconnect_cap_s: float = 120.0
    ack_timeout_s: float = 30.0
    max_inflight_batches: int = 8
    max_batch_events: int = 500
    max_batch_bytes: int = MAX_PAYLOAD
    status_interval_s: float = 300.0
    status_min_gap_s: float = 1.0
    session_expiry_s: int = 8 * 24 * 3600
    snapshot_retry_s: float = 30.0  # the first retry of a failed snapshot; doubles each time
    snapshot_retry_cap_s: float = 900.0  # ... up to this
    snapshot_timeout_s: float = 60.0  # one read of the snapshot
    snapshot_deadline_s: float = 600.0  # the whole snapshot, import into the store included
    snapshot_max_bytes: int = 1024 * 1024 * 1024
    snapshot_max_records: int = 2_000_000
    snapshot_max_line: int = 1024 * 1024
    # Documents named by a signed manifest (a large rule bundle), fetched over HTTPS.
    document_retry_s: float = 30.0  # the first retry of a failed fetch; doubles each time
    document_retry_cap_s: float = 900.0  # ... up to this
    document_timeout_s: float = 30.0  # one read
    document_deadline_s: float = 120.0  # the whole fetch
    document_max_bytes: int = 32 * 1024 * 1024  # as sent, and again once inflated
    # The worker's heartbeat older than this stops the systemd watchdog pings (≥ 3 s:
    # an idle worker beats once a second).
    stall_limit_s: float = 30.0

    def snapshot_limits(self, io_timeout_s: float | None = None) -> SnapshotLimits:
        """The member snapshot's limits (one read at most ``io_timeout_s`` if given)."""
        return SnapshotLimits(deadline_s=self.snapshot_deadline_s,
                              max_bytes=self.snapshot_max_bytes,
                              max_records=self.snapshot_max_records,
                              max_line=self.snapshot_max_line,
                              io_timeout_s=io_timeout_s or self.snapshot_timeout_s)

    def document_limits(self) -> DocumentLimits:
        """The limits of one manifest-named document fetch."""
        return DocumentLimits(deadline_s=self.document_deadline_s,
                              max_bytes=self.document_max_bytes,
                              io_timeout_s=self.document_timeout_s)

    @classmethod
    def from_config(cls, config: Config) -> LinkTuning:
        """Defaults, overridden by keys of the configuration's ``[club]`` table."""
        club = config.raw.get("club", {}) if isinstance(config.raw, Mapping) else {}
        values: dict[str, Any] = {}
        defaults = cls()
        for name in cls.__dataclass_fields__:
            if name in club:
                value = club[name]
                kind = type(getattr(defaults, name))
                if kind is float and isinstance(value, int) and not isinstance(value, bool):
                    value = float(value)
                if not isinstance(value, kind) or isinstance(value, bool) or value <= 0:
                    raise LinkError(f"[club] {name} must be a positive {kind.__name__}")
                values[name] = value
        if values.get("stall_limit_s", defaults.stall_limit_s) < _MIN_STALL_LIMIT_S:
            # An idle worker beats once a tick (up to 1 s): less would restart a healthy agent.
            raise LinkError(f"[club] stall_limit_s must be at least {_MIN_STALL_LIMIT_S:g} s")
        return cls(**values)


def iso(at: datetime | None) -> str | None:
    """``at`` as the protocol writes times (milliseconds), or None."""
    return at.isoformat(timespec="milliseconds") if at is not None else None
