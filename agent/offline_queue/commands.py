"""The club's commands, each answered once (table ``command_results``)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from agent.offline_queue.database import Database, utc_text

#: How long command results are kept (a resent command id gets the same answer).
COMMAND_RESULTS_KEEP = timedelta(days=7)


class CommandResults:
    """A command is recorded ``running`` before it runs and gets one final result."""

    def __init__(self, db: Database):
        self.db = db

    def command_result(self, command_id: str) -> dict[str, Any] | None:
        """The result already given to command ``command_id`` (``state`` ``running``
        while it runs), or None."""
        with self.db.guard("reading command results"):
            return self._result(command_id)

    def _result(self, command_id: str) -> dict[str, Any] | None:
        row = self.db.execute_sql("SELECT result FROM command_results WHERE id = ?",
                                  (command_id,)).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def begin_command(self, command_id: str, command_type: str) -> dict[str, Any] | None:
        """Record command ``command_id`` as ``running`` before it runs (durably: the
        commit is on disk when this returns). Returns None when the caller is to run
        it; otherwise the record already there (a final result, or ``running``: it
        is running now or was when the agent stopped) and the caller must not run it.
        """
        running = {"id": command_id, "state": "running", "type": command_type}
        with self.db.write("recording a command as running") as conn:
            stored = self._result(command_id)
            if stored is not None:
                return stored
            conn.execute("INSERT INTO command_results (id, result, at) VALUES (?, ?, ?)",
                         (command_id, json.dumps(running), self.db.now_text()))
        return None

    def save_command_result(self, command_id: str, result: dict[str, Any]) -> dict[str, Any]:
        """Record the final result of a command (replacing its ``running`` record);
        the first final result recorded wins and is returned (a command is never
        answered two ways)."""
        with self.db.write("saving a command result") as conn:
            stored = self._result(command_id)
            if stored is None:
                conn.execute("INSERT INTO command_results (id, result, at) VALUES (?, ?, ?)",
                             (command_id, json.dumps(result), self.db.now_text()))
                return dict(result)
            if stored.get("state") != "running":
                return stored
            conn.execute("UPDATE command_results SET result = ?, at = ? WHERE id = ?",
                         (json.dumps(result), self.db.now_text(), command_id))
        return dict(result)

    def interrupt_running_commands(self) -> list[dict[str, Any]]:
        """At start: every command still ``running`` (the agent stopped while it ran)
        gets the final result ``interrupted``, so it is never run again. Returns
        those results, to be sent to the club."""
        out: list[dict[str, Any]] = []
        with self.db.write("closing interrupted commands") as conn:
            now = self.db.now_text()
            for command_id, text in conn.execute(
                    "SELECT id, result FROM command_results").fetchall():
                stored = json.loads(text)
                if not isinstance(stored, dict) or stored.get("state") != "running":
                    continue
                result = {"id": command_id, "ok": False, "state": "interrupted",
                          "detail": f"the agent stopped while the command "
                                    f"{stored.get('type', '')} was running; it is not run "
                                    f"again (send a new command id to run it)"}
                conn.execute("UPDATE command_results SET result = ?, at = ? WHERE id = ?",
                             (json.dumps(result), now, command_id))
                out.append(result)
        return out

    def prune_command_results(self, *, now: datetime | None = None,
                              keep: timedelta = COMMAND_RESULTS_KEEP) -> int:
        """Delete final command results recorded more than ``keep`` ago (a ``running``
        record is never pruned). Returns how many went."""
        cutoff = utc_text((now or self.db.clock()) - keep)
        with self.db.write("pruning command results") as conn:
            cur = conn.execute(
                "DELETE FROM command_results WHERE at < ? "
                "AND coalesce(json_extract(result, '$.state'), '') != 'running'", (cutoff,))
            return int(cur.rowcount)
