"""UUIDv7 (RFC 9562) for event ids: time-ordered, so ids sort like the events.

Python 3.11 has no ``uuid.uuid7``. Layout (RFC 9562 section 5.7, with the
"fixed bit-length dedicated counter" of section 6.2, method 1):

    48 bits  unix_ts_ms
     4 bits  version (0b0111)
    12 bits  rand_a = a counter, seeded at random each new millisecond
     2 bits  variant (0b10)
    62 bits  rand_b = random

Within one process the ids are strictly increasing even when the wall clock
stands still or steps back: the counter goes up, and when it would overflow the
timestamp is advanced by one millisecond (the RFC allows this).
"""

from __future__ import annotations

import os
import threading
import time
import uuid

_lock = threading.Lock()
_last_ms = 0
_counter = 0
_COUNTER_MAX = 0xFFF


def uuid7(unix_ms: int | None = None) -> uuid.UUID:
    """A new UUIDv7; ``unix_ms`` overrides the clock (tests)."""
    global _last_ms, _counter
    ms = time.time_ns() // 1_000_000 if unix_ms is None else unix_ms
    with _lock:
        if ms > _last_ms:
            # Seed with 11 random bits so there is room to count up in this ms.
            _counter = int.from_bytes(os.urandom(2), "big") & 0x7FF
            _last_ms = ms
        else:
            _counter += 1
            if _counter > _COUNTER_MAX:
                _last_ms += 1
                _counter = 0
            ms = _last_ms
        counter = _counter
    rand_b = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = ((ms & ((1 << 48) - 1)) << 80) | (0x7 << 76) | (counter << 64) | (0b10 << 62) | rand_b
    return uuid.UUID(int=value)


def uuid7_str() -> str:
    """A new UUIDv7 in its canonical text form."""
    return str(uuid7())


def uuid7_unix_ms(value: uuid.UUID | str) -> int:
    """The millisecond timestamp inside a UUIDv7."""
    u = value if isinstance(value, uuid.UUID) else uuid.UUID(value)
    return u.int >> 80
