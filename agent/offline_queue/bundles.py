"""The rule bundle in force and the last refused one (table ``bundles``)."""

from __future__ import annotations

import json
from typing import Any

from agent.offline_queue.database import Database


class Bundles:
    """Slots ``current`` (the accepted bundle) and ``refused`` (the last refused one)."""

    def __init__(self, db: Database):
        self.db = db

    def save_bundle(self, envelope: dict[str, Any], version: int) -> None:
        """Keep ``envelope`` as the current (accepted) bundle."""
        self._put("current", envelope, version, None)

    def save_refused_bundle(self, envelope: dict[str, Any], reason: str) -> None:
        """Keep the last refused bundle and why, for the status and a technician."""
        self._put("refused", envelope, None, reason)

    def _put(self, slot: str, envelope: dict[str, Any], version: int | None,
             reason: str | None) -> None:
        with self.db.write("saving a rule bundle") as conn:
            conn.execute("INSERT OR REPLACE INTO bundles (slot, version, envelope, reason, "
                         "saved_at) VALUES (?, ?, ?, ?, ?)",
                         (slot, version, json.dumps(envelope), reason, self.db.now_text()))

    def current_bundle(self) -> dict[str, Any] | None:
        """The envelope of the current bundle, or None."""
        row = self._row("current")
        return None if row is None else dict(json.loads(row[1]))

    def current_bundle_version(self) -> int | None:
        """The version saved with the current bundle, or None."""
        row = self._row("current")
        return None if row is None else int(row[0])

    def refused_bundle(self) -> dict[str, Any] | None:
        """``{"envelope", "reason", "at"}`` of the last refused bundle, or None."""
        row = self._row("refused")
        if row is None:
            return None
        return {"envelope": json.loads(row[1]), "reason": row[2], "at": row[3]}

    def clear_refused_bundle(self) -> None:
        """Forget the refused bundle (a good one arrived after it)."""
        with self.db.write("clearing the refused bundle") as conn:
            conn.execute("DELETE FROM bundles WHERE slot = 'refused'")

    def _row(self, slot: str) -> tuple[Any, ...] | None:
        with self.db.guard("reading the rule bundle"):
            row: tuple[Any, ...] | None = self.db.execute_sql(
                "SELECT version, envelope, reason, saved_at FROM bundles WHERE slot = ?",
                (slot,)).fetchone()
        return row
