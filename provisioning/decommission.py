"""``clubterm provision decommission``: take a box out of service without losing sales.

Events the club has not acknowledged are the only copy of those sales: the command
refuses while there are any, unless ``--force``, and then it first exports them as
JSON lines (the wire form of ``protocol.md``) to a file the technician hands to the
club. Then it wipes the device key, the pan_key, the trusted keys, the member cache
and queue (the store's database, which holds all tokens) and the configuration.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.config import Config
from agent.errors import ClubtermError, ProvisioningError
from provisioning.atomic import write_atomic
from provisioning.state import IDENTITY_DIR, PENDING_KEY, wipe_file, wipe_tree

# Without agent.offline_queue the queue is read straight from SQLite. The table
# this relies on (docs/provisioning.md): events(id, seq, type, at, body JSON, state)
# where an event is pending until the club's ack, i.e. state is 'pending' or 'sent'.
FALLBACK_TABLE = "events"
UNACKED_STATES = ("pending", "sent")


@dataclass(frozen=True)
class DecommissionResult:
    """What was exported and wiped."""

    pending: int
    exported_to: Path | None
    wiped: tuple[Path, ...]


def _with_store(cfg: Config) -> tuple[int, list[dict[str, Any]]] | None:
    try:
        from agent.offline_queue import Store
    except ImportError:
        return None
    try:
        # Read-only: deciding whether to refuse must never create or migrate anything.
        store = Store.open(cfg.db_path, cfg.terminal_id, cfg.merchant_id, readonly=True)
    except ClubtermError as exc:
        raise ProvisioningError(
            f"cannot tell whether {cfg.db_path} holds unsent sales ({exc}). Copy the file to "
            f"the club before wiping it by hand.") from None
    try:
        pending = int(store.outbox.queue_stats().pending)
        events: list[dict[str, Any]] = []
        seen: list[str] = []
        while True:
            batch = store.outbox.next_batch(exclude_ids=tuple(seen))
            if not batch:
                break
            events.extend(batch)
            seen.extend(str(e["id"]) for e in batch)
        return pending, events
    finally:
        store.close()


def _with_sqlite(db_path: Path) -> tuple[int, list[dict[str, Any]]]:
    try:
        # Read-only: deciding whether to refuse must never change the queue.
        con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise ProvisioningError(f"cannot open the queue {db_path}: {exc}") from None
    try:
        cols = {row[1] for row in con.execute(f"PRAGMA table_info({FALLBACK_TABLE})")}
        if not {"id", "seq", "state"} <= cols:
            raise ProvisioningError(
                f"cannot tell whether {db_path} holds unsent sales (no '{FALLBACK_TABLE}' table "
                f"this version knows). Copy the file to the club before wiping it by hand.")
        marks = ",".join("?" * len(UNACKED_STATES))
        has_body = "body" in cols
        select = ", ".join(c for c in ("id", "seq", "type", "at", "body") if c in cols)
        rows = con.execute(
            f"SELECT {select} FROM {FALLBACK_TABLE} WHERE state IN ({marks}) ORDER BY seq",  # noqa: S608
            UNACKED_STATES).fetchall()
    except sqlite3.Error as exc:
        raise ProvisioningError(f"cannot read the queue {db_path}: {exc}") from None
    finally:
        con.close()
    names = [c for c in ("id", "seq", "type", "at", "body") if c in cols]
    events = []
    for row in rows:
        record = dict(zip(names, row, strict=True))
        body = record.pop("body", None) if has_body else None
        event: dict[str, Any] = {}
        if isinstance(body, str | bytes):
            try:
                parsed = json.loads(body)
                if isinstance(parsed, dict):
                    event.update(parsed)
            except ValueError:
                text = body if isinstance(body, str) else body.decode("utf-8", "replace")
                event["body_raw"] = text
        event.update(record)
        events.append(event)
    return len(events), events


def unacked_events(cfg: Config) -> tuple[int, list[dict[str, Any]]]:
    """(count, events) the club has not acknowledged; (0, []) without a database."""
    if not cfg.db_path.exists():
        return 0, []
    try:
        via_store = _with_store(cfg)
    except ClubtermError:
        raise
    except Exception as exc:  # the store's own errors should be ClubtermError already
        raise ProvisioningError(f"cannot read the queue: {exc}") from None
    return via_store if via_store is not None else _with_sqlite(cfg.db_path)


def export_events(events: list[dict[str, Any]], path: Path) -> None:
    """JSON lines, 0600 (events carry member tokens), durable before anything is wiped."""
    text = "".join(json.dumps(e, ensure_ascii=False, sort_keys=True) + "\n" for e in events)
    write_atomic(path, text.encode("utf-8"), mode=0o600)


def decommission(cfg: Config, *, force: bool = False, export: Path | None = None,
                 progress: Callable[[str], None] = lambda m: None) -> DecommissionResult:
    """Refuse with pending events unless forced (then export), then wipe."""
    count, events = unacked_events(cfg)
    exported = None
    if count:
        if not force:
            raise ProvisioningError(
                f"{count} event(s) have not reached the club yet; connect the terminal and "
                f"wait until 'clubterm queue' shows 0 pending, or use --force --export FILE to "
                f"export them first. Nothing was changed.")
        target = export or cfg.state_dir.parent / f"clubterm-{cfg.terminal_id}-pending.jsonl"
        if target.resolve().is_relative_to(cfg.state_dir.resolve()):
            raise ProvisioningError(f"the export file {target} is inside the state folder, "
                                    f"which is about to be wiped; choose another path")
        export_events(events, target)
        exported = target
        progress(f"Exported {count} pending event(s) to {target}; give this file to the club.")
    elif export is not None:
        export_events([], export)
        exported = export

    wiped: list[Path] = []
    identity = cfg.state_dir / IDENTITY_DIR
    for path in (cfg.key_file, cfg.pan_key_file):
        # Named files first, even if they live outside our generations.
        if path is not None and path.exists():
            wipe_file(path)
            wiped.append(path)
    if identity.exists():
        wipe_tree(identity)
        wiped.append(identity)
    pending_key = cfg.state_dir / PENDING_KEY
    if pending_key.exists():
        wipe_file(pending_key)
        wiped.append(pending_key)
    for suffix in ("", "-wal", "-shm", "-journal"):
        db = cfg.db_path.with_name(cfg.db_path.name + suffix)
        if db.exists():
            wipe_file(db)
            wiped.append(db)
    if cfg.path.exists():
        cfg.path.unlink()
        wiped.append(cfg.path)
    progress(f"Wiped {len(wiped)} item(s): keys, pan_key, member cache and queue, configuration.")
    return DecommissionResult(count, exported, tuple(wiped))
