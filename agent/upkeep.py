"""The agent's periodic upkeep: pruning the outbox and old command results."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta
from typing import Any

from agent.config import Config
from agent.errors import ClubtermError
from agent.localapi.ports import DbThread

log = logging.getLogger("agent.daemon")

#: Events pruned per store call: a sale queued behind pruning waits for one batch
#: at most (the store thread runs calls in order).
PRUNE_BATCH = 100
#: Pause between two batches, so pruning a long backlog leaves the disk to sales.
PRUNE_PAUSE_S = 0.02


async def prune_outbox(db: DbThread, store: Any, config: Config,
                       stopping: asyncio.Event) -> int:
    """Remove the accepted events the club applied and the cache reflects, older
    than ``[store] keep_days`` (docs/store.md), in batches of PRUNE_BATCH, each
    its own call on the store thread so sales are served in between; then the
    command results older than 7 days. Returns the events removed."""
    keep = timedelta(days=config.store_keep_days)
    total, batches, longest = 0, 0, 0.0
    started = time.monotonic()
    try:
        while not stopping.is_set():
            t0 = time.monotonic()
            n = await db.call(store.outbox.prune, keep=keep, batch=PRUNE_BATCH, limit=PRUNE_BATCH)
            longest = max(longest, time.monotonic() - t0)
            total, batches = total + n, batches + 1
            if n < PRUNE_BATCH:
                break
            await asyncio.sleep(PRUNE_PAUSE_S)
    except ClubtermError as exc:
        log.error("pruning the outbox failed (tried again in %d min): %s",
                  config.store_prune_every_min, exc)
    try:
        # Same hourly loop: command results older than 7 days (docs/sync.md).
        gone = await db.call(store.commands.prune_command_results)
        if gone:
            log.info("pruned %d command results older than 7 days", gone)
    except ClubtermError as exc:
        log.error("pruning command results failed (tried again in %d min): %s",
                  config.store_prune_every_min, exc)
    if total:
        log.info("pruned %d acknowledged events older than %d days in %.1f s (%d batches, "
                 "longest %.0f ms)", total, config.store_keep_days,
                 time.monotonic() - started, batches, longest * 1000)
    return total
