"""The terminal's durable store (SQLite).

The outbox of protocol events, the member cache and usable balances, rule
bundles, command results and the staff UI's local data. See ``docs/store.md``.
"""

from agent.offline_queue.events import (
    EVENT_TYPES,
    MAX_AMOUNT,
    AccountRefused,
    AlreadyRefunded,
    CardNotLinkable,
    InvalidEvent,
    QuoteAlreadyRecorded,
    RefundNotPossible,
    encode_batch,
)
from agent.offline_queue.local_data import AppointmentConflict, RecordNotFound
from agent.offline_queue.store import (
    Bundles,
    CommandResults,
    CorruptStore,
    Database,
    DiskFull,
    ForeignStore,
    InvalidRecord,
    LocalRecords,
    MemberCache,
    Outbox,
    OutboxEntry,
    QueueStats,
    ReadOnlyStore,
    Store,
    StoredEvent,
)
from agent.offline_queue.uuid7 import uuid7, uuid7_str
from agent.offline_queue.value import ValueCheck, ValueNotAvailable

__all__ = [
    "EVENT_TYPES",
    "MAX_AMOUNT",
    "AccountRefused",
    "AlreadyRefunded",
    "AppointmentConflict",
    "Bundles",
    "CardNotLinkable",
    "CommandResults",
    "CorruptStore",
    "Database",
    "DiskFull",
    "ForeignStore",
    "InvalidEvent",
    "InvalidRecord",
    "LocalRecords",
    "MemberCache",
    "Outbox",
    "OutboxEntry",
    "QueueStats",
    "QuoteAlreadyRecorded",
    "ReadOnlyStore",
    "RecordNotFound",
    "RefundNotPossible",
    "Store",
    "StoredEvent",
    "ValueCheck",
    "ValueNotAvailable",
    "encode_batch",
    "uuid7",
    "uuid7_str",
]
