"""A minimal stand-in for agent.offline_queue.Store, used until the real store lands.

Only what the link needs, in plain sqlite3. Not shipped.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


@dataclass
class QueueStats:
    pending: int
    oldest_at: str | None
    rejected: int
    by_type: dict[str, int]


class MiniStore:
    def __init__(self, path: Path, terminal_id: str, merchant_id: str):
        self.terminal_id, self.merchant_id = terminal_id, merchant_id
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.lock = threading.RLock()
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript("""
        CREATE TABLE IF NOT EXISTS ev (id TEXT PRIMARY KEY, seq INTEGER UNIQUE, type TEXT,
            at TEXT, wire TEXT, state TEXT, reason TEXT);
        CREATE TABLE IF NOT EXISTS mem (member_id TEXT PRIMARY KEY, record TEXT);
        CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v TEXT);
        """)

    @classmethod
    def open(cls, path: Path, terminal_id: str, merchant_id: str) -> MiniStore:
        return cls(path, terminal_id, merchant_id)

    def close(self) -> None:
        self.db.close()

    def _get(self, k: str) -> Any:
        row = self.db.execute("SELECT v FROM kv WHERE k=?", (k,)).fetchone()
        return json.loads(row[0]) if row else None

    def _put(self, k: str, v: Any) -> None:
        self.db.execute("INSERT OR REPLACE INTO kv VALUES (?,?)", (k, json.dumps(v)))

    def append(self, type_: str, body: dict[str, Any], *, at: datetime,
               staff_id: str | None = None, offline: bool = False) -> Any:
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            seq = (self.db.execute("SELECT max(seq) FROM ev").fetchone()[0] or 0) + 1
            ev = {"id": str(uuid.uuid4()), "seq": seq, "type": type_,
                  "at": at.isoformat(), "merchant_id": self.merchant_id,
                  "terminal_id": self.terminal_id, "staff_id": staff_id, "offline": offline,
                  **body}
            self.db.execute("INSERT INTO ev VALUES (?,?,?,?,?,'pending',NULL)",
                            (ev["id"], seq, type_, ev["at"], json.dumps(ev)))
            self.db.execute("COMMIT")
        return ev

    def next_batch(self, max_events: int = 500, max_bytes: int = 262144,
                   exclude_ids: Iterable[str] = ()) -> list[dict[str, Any]]:
        excl = set(exclude_ids)
        out, size = [], 0
        with self.lock:
            for (wire,) in self.db.execute(
                    "SELECT wire FROM ev WHERE state IN ('pending','sent') ORDER BY seq"):
                ev = json.loads(wire)
                if ev["id"] in excl:
                    continue
                n = len(wire) + 1
                if out and size + n > max_bytes:
                    break
                out.append(ev)
                size += n
                if len(out) >= max_events:
                    break
        return out

    def mark_sent(self, ids: list[str]) -> None:
        with self.lock:
            self.db.executemany("UPDATE ev SET state='sent' WHERE id=? AND state='pending'",
                                [(i,) for i in ids])

    def apply_ack(self, accepted: list[str], rejected: list[tuple[str, str]],
                  applied_seq: int | None) -> None:
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.executemany("UPDATE ev SET state='acked' WHERE id=? AND state!='rejected'",
                                [(i,) for i in accepted])
            self.db.executemany("UPDATE ev SET state='rejected', reason=? WHERE id=?",
                                [(r, i) for i, r in rejected])
            if applied_seq is not None:
                self._put("applied_seq", max(applied_seq, self._get("applied_seq") or 0))
            self.db.execute("COMMIT")

    def queue_stats(self) -> QueueStats:
        with self.lock:
            pending, oldest = self.db.execute(
                "SELECT count(*), min(at) FROM ev WHERE state IN ('pending','sent')").fetchone()
            rejected = self.db.execute(
                "SELECT count(*) FROM ev WHERE state='rejected'").fetchone()[0]
        return QueueStats(pending, oldest, rejected, {})

    def events(self, state: str | None = None) -> list[dict[str, Any]]:
        q = "SELECT wire, state, reason FROM ev"
        rows = self.db.execute(q + (" WHERE state=?" if state else "") + " ORDER BY seq",
                               (state,) if state else ()).fetchall()
        return [{**json.loads(w), "state": s, "reason": r} for w, s, r in rows]

    def members_version(self) -> int:
        return int(self._get("members_version") or 0)

    def apply_changes(self, change: dict[str, Any]) -> bool:
        with self.lock:
            if change["from_version"] != self.members_version():
                return False
            for rec in change.get("members", []):
                self.db.execute("INSERT OR REPLACE INTO mem VALUES (?,?)",
                                (rec["member_id"], json.dumps(rec)))
            for mid in change.get("removed", []):
                self.db.execute("DELETE FROM mem WHERE member_id=?", (mid,))
            self._put("members_version", change["to_version"])
        return True

    def import_snapshot(self, lines: Iterable[bytes | str], version: int, full: bool) -> None:
        with self.lock:
            if full:
                self.db.execute("DELETE FROM mem")
            for line in lines:
                rec = json.loads(line)
                self.db.execute("INSERT OR REPLACE INTO mem VALUES (?,?)",
                                (rec["member_id"], json.dumps(rec)))
            self._put("members_version", version)

    def member(self, member_id: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT record FROM mem WHERE member_id=?", (member_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def usable_balances(self, member_id: str) -> dict[str, int]:
        rec = self.member(member_id) or {"balances": {}, "applied": {}}
        bal = dict(rec["balances"])
        applied = rec.get("applied", {}).get(self.terminal_id, 0)
        for ev in self.events():
            if ev["seq"] <= applied or ev["state"] == "rejected" or ev["type"] != "sale" \
                    or ev.get("member_id") != member_id:
                continue
            bal["points"] = bal.get("points", 0) - ev["redeemed_points"] + sum(
                r["points"] for r in ev["points_earned"])
            for r in ev["credits_used"]:
                bal[r["kind"]] = bal.get(r["kind"], 0) - r["amount"]
            for r in ev["credits_earned"]:
                bal[r["kind"]] = bal.get(r["kind"], 0) + r["amount"]
        return bal

    def save_bundle(self, envelope: dict[str, Any], version: int) -> None:
        self._put("bundle", envelope)

    def current_bundle(self) -> dict[str, Any] | None:
        return self._get("bundle")  # type: ignore[no-any-return]

    def save_refused_bundle(self, envelope: dict[str, Any], reason: str) -> None:
        self._put("refused", {"envelope": envelope, "reason": reason,
                              "at": datetime.now(UTC).isoformat()})

    def refused_bundle(self) -> dict[str, Any] | None:
        return self._get("refused")  # type: ignore[no-any-return]

    def command_result(self, command_id: str) -> dict[str, Any] | None:
        return self._get("cmd:" + command_id)  # type: ignore[no-any-return]

    def save_command_result(self, command_id: str, result: dict[str, Any]) -> None:
        self._put("cmd:" + command_id, result)


class MiniBundleState:
    """Stand-in for agent.rules.BundleState until the rules engine lands."""

    def __init__(self, trusted: dict[str, Any], *, club: str, merchant: str):
        self.trusted, self.club, self.merchant = trusted, club, merchant
        self.current: dict[str, Any] | None = None
        self.envelope: dict[str, Any] | None = None
        self.refused: str | None = None

    @property
    def version(self) -> int | None:
        return self.current["version"] if self.current else None

    def problem(self) -> str | None:
        return self.refused

    def _check(self, envelope: Any, current: int | None, now: datetime | None) -> dict[str, Any]:
        import base64
        key = self.trusted.get(envelope.get("key_id"))
        if key is None:
            raise ValueError("unknown_key: not trusted")
        payload = base64.b64decode(envelope["payload"])
        try:
            key.verify(base64.b64decode(envelope["sig"]), payload)
        except Exception:
            raise ValueError("bad_signature: does not verify") from None
        b = json.loads(payload)
        if b["club"] != self.club:
            raise ValueError("foreign_club: other club")
        if b["merchant"] != self.merchant:
            raise ValueError("foreign_merchant: other merchant")
        if current is not None and b["version"] <= current:
            raise ValueError(f"downgrade: {b['version']} <= {current}")
        if now is not None and datetime.fromisoformat(b["expires_at"]) <= now:
            raise ValueError("expired: expired")
        return b  # type: ignore[no-any-return]

    def restore(self, envelope: Any) -> Any:
        self.current, self.envelope = self._check(envelope, None, None), envelope
        return self.current

    def offer(self, envelope: Any, now: datetime) -> bool:
        if self.envelope is not None and envelope.get("sig") == self.envelope.get("sig"):
            return False
        try:
            b = self._check(envelope, self.version, now)
        except ValueError as exc:
            self.refused = str(exc)
            return False
        self.current, self.envelope, self.refused = b, envelope, None
        return True


def mini_trusted(directory: Path) -> dict[str, Any]:
    from cryptography.hazmat.primitives import serialization
    return {p.stem: serialization.load_pem_public_key(p.read_bytes())
            for p in sorted(directory.glob("*.pub"))}
