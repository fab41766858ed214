"""Reconnect delays: exponential backoff with full jitter.

With full jitter each delay is drawn uniformly from ``[0, min(cap, base·2^attempt)]``,
so terminals that lost the broker at the same moment come back spread over the
whole window instead of in waves (the "thundering herd" a restarted broker would
otherwise see). paho's own ``reconnect_delay_set`` has no jitter, so the link
computes delays itself.
"""

from __future__ import annotations

import random


def backoff_ceiling(attempt: int, base: float, cap: float) -> float:
    """The upper bound of the delay before reconnect attempt ``attempt`` (0, 1, 2 …)."""
    if attempt < 0:
        raise ValueError("attempt must not be negative")
    # 2**attempt overflows a float near 1024; the cap is reached long before.
    return min(cap, base * float(2 ** min(attempt, 60)))


def full_jitter_delay(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """A delay drawn uniformly from ``[0, backoff_ceiling(attempt, base, cap)]``."""
    return rng.uniform(0.0, backoff_ceiling(attempt, base, cap))
