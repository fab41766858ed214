"""The member cache: the club's records, their tokens, and usable balances.

A record is kept as the club sent it, plus ``applied[this terminal]``; usable
balances are the cached ones plus this terminal's own events the record does not
reflect yet (the running sums the outbox keeps in ``event_deltas``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from agent.errors import ClubtermError
from agent.offline_queue import events as ev
from agent.offline_queue.database import Database

#: Deltas of projected stats live beside the balance kinds under this prefix
#: (protocol balance kinds are ``points`` and ``credit.*``).
STATS_PREFIX = "stats."
#: A card reported lost is kept in ``member_tokens`` under this prefix (its member
#: no longer found by it): a tap is refused as lost, not as unknown (docs/store.md).
LOST_PREFIX = "lost|"
#: (1.3) The member record's key listing the cards reported lost (docs/protocol/club.md).
LOST_KEY = "lost_identifiers"
#: The local key of a record kept from an online lookup: when (epoch seconds) the
#: club answered it (docs/fleet.md, "Scoped member changes").
LOOKED_UP_KEY = "_looked_up_at"
#: At most this many members kept from online lookups: caching one more drops the
#: one looked up longest ago (docs/limits.md). A full snapshot drops them all.
MAX_LOOKED_UP = 5_000
# The index members_looked_up (schema v7) is on this expression, word for word.
_LOOKED_UP_AT = "json_extract(record, '$._looked_up_at')"


def looked_up_age_s(record: dict[str, Any], now_epoch: float) -> float | None:
    """Seconds since a cached record was looked up online; None for a record of the
    terminal's own scope (kept current by its change sets)."""
    at = record.get(LOOKED_UP_KEY)
    if not isinstance(at, int | float) or isinstance(at, bool):
        return None
    return max(0.0, now_epoch - float(at))


class InvalidRecord(ClubtermError, ValueError):
    """A member record, change set or snapshot line is malformed; nothing was applied
    (a snapshot keeps the chunks applied before the bad line; see docs/store.md)."""


class MemberCache:
    """The club's member records as this terminal caches them."""

    def __init__(self, db: Database, terminal_id: str):
        self.db = db
        self.terminal_id = terminal_id

    def members_version(self) -> int:
        """The club-wide member version the cache is at (0 = empty)."""
        with self.db.guard("reading the member cache"):
            return self.db.meta_int("members_version")

    def lookup(self, token: str) -> dict[str, Any] | None:
        """The cached record of the member holding ``token``, or None."""
        with self.db.guard("reading the member cache"):
            row = self.db.execute_sql(
                "SELECT m.record FROM member_tokens t JOIN members m ON m.member_id = t.member_id"
                " WHERE t.token = ?", (token,)).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def lost_holder(self, token: str) -> dict[str, Any] | None:
        """The cached record of the member who reported the card ``token`` lost
        (``lost_identifiers``, or a replacement linked here), or None."""
        return self.lookup(LOST_PREFIX + token)

    def member(self, member_id: str) -> dict[str, Any] | None:
        """The cached record of ``member_id`` (balances as cached), or None."""
        with self.db.guard("reading the member cache"):
            row = self.db.execute_sql("SELECT record FROM members WHERE member_id = ?",
                                      (member_id,)).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def member_count(self) -> int:
        """How many members the cache holds."""
        with self.db.guard("reading the member cache"):
            return int(self.db.execute_sql("SELECT count(*) FROM members").fetchone()[0])

    def find_members(self, name_part: str, limit: int) -> list[dict[str, Any]]:
        """At most ``limit`` cached records whose name holds ``name_part`` (any case),
        by name (a till's member search; phone and card go through :meth:`lookup`)."""
        pattern = "%" + name_part.replace("\\", "\\\\").replace("%", "\\%") \
            .replace("_", "\\_") + "%"
        with self.db.guard("reading the member cache"):
            rows = self.db.execute_sql(
                "SELECT record FROM members WHERE json_extract(record, '$.name') LIKE ? "
                "ESCAPE '\\' ORDER BY json_extract(record, '$.name') LIMIT ?",
                (pattern, int(limit))).fetchall()
        return [dict(json.loads(row[0])) for row in rows]

    def accounts_for(self, member_id: str, limit: int) -> list[dict[str, Any]]:
        """(1.3) At most ``limit`` cached house accounts (``"holder": "account"``) that
        list ``member_id`` among their ``authorised`` buyers, by name."""
        with self.db.guard("reading the member cache"):
            rows = self.db.execute_sql(
                "SELECT record FROM members WHERE json_extract(record, '$.holder') = "
                "'account' AND EXISTS (SELECT 1 FROM json_each(record, '$.authorised') a "
                "WHERE a.value = ?) ORDER BY json_extract(record, '$.name') LIMIT ?",
                (member_id, int(limit))).fetchall()
        return [dict(json.loads(row[0])) for row in rows]

    def _projection(self, member_id: str) -> tuple[dict[str, Any] | None, dict[str, int]]:
        """The cached record and the sum of own deltas with seq > applied[T], per kind
        (balance kinds and the ``stats.`` pseudo-kinds): total minus the running
        sum at applied[T], two index probes per kind."""
        with self.db.guard("reading balances"):
            row = self.db.execute_sql(
                "SELECT record, applied_here FROM members WHERE member_id = ?",
                (member_id,)).fetchone()
            applied = int(row[1]) if row else 0
            deltas = self.db.execute_sql(
                "SELECT t.kind, t.total - coalesce((SELECT d.running FROM event_deltas d "
                "WHERE d.member_id = t.member_id AND d.kind = t.kind AND d.seq <= ? "
                "ORDER BY d.seq DESC LIMIT 1), 0) FROM delta_totals t WHERE t.member_id = ?",
                (applied, member_id)).fetchall()
        record = json.loads(row[0]) if row else None
        return record, {str(k): int(v) for k, v in deltas}

    def usable_balances(self, member_id: str) -> dict[str, int]:
        """Cached balances plus this terminal's own events not yet reflected
        (``seq > applied[this terminal]``), per protocol.md."""
        record, deltas = self._projection(member_id)
        cached = (record or {}).get("balances") or {}
        return ev.sum_balances(cached, ((k, v) for k, v in deltas.items()
                                        if not k.startswith(STATS_PREFIX)))

    def member_view(self, member_id: str) -> dict[str, Any] | None:
        """The record with usable balances and stats projected over own unreflected
        sales (``purchase_count`` +sales, ``spend_30d`` +payable, ``last_purchase``)."""
        record, deltas = self._projection(member_id)
        if record is None:
            return None
        cached = record.get("balances") or {}
        record["balances"] = ev.sum_balances(cached, ((k, v) for k, v in deltas.items()
                                                      if not k.startswith(STATS_PREFIX)))
        applied = int((record.get("applied") or {}).get(self.terminal_id, 0))
        with self.db.guard("reading balances"):
            last = self.db.execute_sql(
                "SELECT at FROM events WHERE member_id = ? AND seq > ? AND type = 'sale' "
                "AND state != 'rejected' ORDER BY seq DESC LIMIT 1",
                (member_id, applied)).fetchone()
        stats = dict(record.get("stats") or {})
        stats["purchase_count"] = (int(stats.get("purchase_count") or 0)
                                   + deltas.get(STATS_PREFIX + "purchases", 0))
        stats["spend_30d"] = (int(stats.get("spend_30d") or 0)
                              + deltas.get(STATS_PREFIX + "spend", 0))
        window = stats.get("tier_window")
        if isinstance(window, dict):  # (1.3) the club's window for the next tier
            stats["tier_window"] = {
                **window,
                "spend": int(window.get("spend") or 0) + deltas.get(STATS_PREFIX + "spend", 0),
                "purchases": (int(window.get("purchases") or 0)
                              + deltas.get(STATS_PREFIX + "purchases", 0))}
        day = str(last[0])[:10] if last else None
        if day and (not stats.get("last_purchase") or day > str(stats["last_purchase"])):
            stats["last_purchase"] = day
        record["stats"] = stats
        return dict(record)

    def offline_counters(self, member_id: str, local_day_start: datetime,
                         local_day_end: datetime) -> tuple[int, int]:
        """(redeemed value, credits used) by ``member_id`` at this terminal in
        [start, end), refunds netted, rejected sales left out; never negative."""
        with self.db.guard("reading the day counters"):
            redeemed, used = self.db.execute_sql(
                "SELECT coalesce(sum(redeemed_value), 0), coalesce(sum(credit_used), 0) "
                "FROM events WHERE member_id = ? AND at_us >= ? AND at_us < ? "
                "AND state != 'rejected'",
                (member_id, ev.epoch_us(local_day_start), ev.epoch_us(local_day_end))
            ).fetchone()
        return max(0, int(redeemed)), max(0, int(used))

    @staticmethod
    def _parse_record(record: Any, where: str, *,
                      tombstone_version: int | None = None) -> dict[str, Any]:
        """A member record, or a tombstone ``{"member_id", "removed": true}`` (its
        ``version`` defaults to ``tombstone_version``: the change set's ``to_version``
        or the snapshot's)."""
        if not isinstance(record, dict):
            raise InvalidRecord(f"{where}: a member record must be a JSON object")
        if not isinstance(record.get("member_id"), str) or not record["member_id"]:
            raise InvalidRecord(f"{where}: member_id is missing")
        if record.get("removed") is True:
            version = record.get("version", tombstone_version)
            if not isinstance(version, int) or isinstance(version, bool):
                raise InvalidRecord(f"{where}: version of the tombstone of "
                                    f"{record['member_id']} is not an integer")
            return {"member_id": record["member_id"], "version": version, "removed": True}
        version = record.get("version")
        if not isinstance(version, int) or isinstance(version, bool):
            raise InvalidRecord(f"{where}: version of {record['member_id']} is not an integer")
        for key, kind in (("identifiers", list), ("balances", dict), ("applied", dict)):
            if record.get(key) is not None and not isinstance(record[key], kind):
                raise InvalidRecord(f"{where}: {key} of {record['member_id']} is malformed")
        return record

    def _upsert_in_tx(self, rows: list[tuple[dict[str, Any], str]], gen: int) -> None:
        """Replace whole records (and their tokens); the caller holds the transaction.

        A record older than the cached one (lower ``version``: a snapshot fetched
        before a change that was applied meanwhile) is skipped.
        """
        conn = self.db.connection()
        cached: dict[str, int] = {}
        ids = [r["member_id"] for r, _ in rows]
        for start in range(0, len(ids), 900):
            part = ids[start:start + 900]
            cached.update(conn.execute(
                "SELECT member_id, version FROM members WHERE member_id IN "  # noqa: S608 (placeholders only)
                f"({', '.join('?' for _ in part)})", part).fetchall())
        newer = [r["member_id"] for r, _ in rows if cached.get(r["member_id"], -1) > r["version"]]
        if newer:
            # Still named by the snapshot: not to be swept as gone.
            conn.executemany("UPDATE members SET gen = ? WHERE member_id = ?",
                             [(gen, m) for m in newer])
            rows = [(r, t) for r, t in rows if cached.get(r["member_id"], -1) <= r["version"]]
        conn.executemany(
            "INSERT INTO members (member_id, version, applied_here, gen, provisional, record) "
            "VALUES (?, ?, ?, ?, 0, ?) ON CONFLICT (member_id) DO UPDATE SET "
            "version = excluded.version, applied_here = excluded.applied_here, "
            "gen = excluded.gen, provisional = 0, record = excluded.record",
            [(r["member_id"], r["version"],
              int((r.get("applied") or {}).get(self.terminal_id, 0)), gen, text)
             for r, text in rows])
        conn.executemany("DELETE FROM member_tokens WHERE member_id = ?",
                         [(r["member_id"],) for r, _ in rows])
        conn.executemany(
            "INSERT OR REPLACE INTO member_tokens (token, member_id) VALUES (?, ?)",
            [(token, r["member_id"]) for r, _ in rows for token in (r.get("identifiers") or [])
             if isinstance(token, str)])
        conn.executemany(
            "INSERT OR REPLACE INTO member_tokens (token, member_id) VALUES (?, ?)",
            [(LOST_PREFIX + token, r["member_id"]) for r, _ in rows
             if isinstance(r.get(LOST_KEY), list)
             for token in r[LOST_KEY] if isinstance(token, str)])
        for r, _ in rows:
            replaces = r.get("replaces")
            if isinstance(replaces, list):
                self._adopt_in_tx(r["member_id"], [x for x in replaces if isinstance(x, str)])
        self._reapply_links_in_tx({r["member_id"]: r for r, _ in rows})

    def _reapply_links_in_tx(self, records: dict[str, dict[str, Any]]) -> None:
        """Own ``card_link`` events the club has not applied yet (waiting, past the
        record's ``applied[T]``) stay in force over a record that does not reflect
        them: the new card keeps finding the member and a replaced card stays lost
        until the club's record says so itself."""
        conn = self.db.connection()
        waiting = conn.execute(
            "SELECT seq, body FROM events WHERE type = 'card_link' "
            "AND state IN ('pending', 'sent') ORDER BY seq").fetchall()
        for seq, text in waiting:
            body = json.loads(text)
            record = records.get(str(body.get("member_id")))
            if record is None or int((record.get("applied") or {})
                                     .get(self.terminal_id, 0)) >= int(seq):
                continue
            token = str(body.get("identifier"))
            holder = conn.execute("SELECT member_id FROM member_tokens WHERE token = ?",
                                  (token,)).fetchone()
            if holder is not None and holder[0] != record["member_id"]:
                continue  # the club gave the card to someone else: it will refuse ours
            self.link_token_in_tx(record["member_id"], token, replaces=body.get("replaces"))

    def unlink_rejected_in_tx(self, event_id: str) -> None:
        """Undo a ``card_link`` the club rejected: the new card stops finding the member
        (unless the club's record lists it) and a card it replaced is found again
        (unless the club's record reports it lost)."""
        row = self.db.execute_sql("SELECT body FROM events WHERE id = ?", (event_id,)).fetchone()
        if row is None:
            return
        body = json.loads(row[0])
        member_id, token = str(body.get("member_id")), str(body.get("identifier"))
        found = self.db.execute_sql("SELECT record FROM members WHERE member_id = ?",
                                    (member_id,)).fetchone()
        if found is None:
            return
        record = json.loads(found[0])
        ids = [t for t in record.get("identifiers") or [] if t != token]
        lost = [t for t in record.get(LOST_KEY) or [] if isinstance(t, str)]
        replaced = body.get("replaces")
        self.db.execute_sql("DELETE FROM member_tokens WHERE token = ? AND member_id = ?",
                            (token, member_id))
        if isinstance(replaced, str) and replaced in lost:
            lost.remove(replaced)
            ids.append(replaced)
            self.db.execute_sql("DELETE FROM member_tokens WHERE token = ? AND member_id = ?",
                                (LOST_PREFIX + replaced, member_id))
            self.db.execute_sql("INSERT OR IGNORE INTO member_tokens (token, member_id) "
                                "VALUES (?, ?)", (replaced, member_id))
        record["identifiers"] = ids
        if lost:
            record[LOST_KEY] = lost
        else:
            record.pop(LOST_KEY, None)
        self.db.execute_sql("UPDATE members SET record = ? WHERE member_id = ?",
                            (json.dumps(record, separators=(",", ":"), ensure_ascii=False),
                             member_id))

    def _adopt_in_tx(self, member_id: str, local_ids: Sequence[str]) -> None:
        """The club's record of members enrolled here offline (``replaces``): every
        local reference moves to the club's id — the provisional record and its tokens
        go, this terminal's events (their member index, not their recorded bodies: the
        club resolves its aliases) and their balance deltas, and appointments booked
        for the local id. Only ``local:`` ids: a record never takes over a club member."""
        from agent.offline_queue.deltas import move_deltas  # deltas imports this module

        conn = self.db.connection()
        for local_id in local_ids:
            if not local_id.startswith("local:") or local_id == member_id:
                continue
            conn.execute("DELETE FROM members WHERE member_id = ? AND provisional = 1",
                         (local_id,))
            conn.execute("DELETE FROM member_tokens WHERE member_id = ?", (local_id,))
            conn.execute("UPDATE events SET member_id = ? WHERE member_id = ?",
                         (member_id, local_id))
            move_deltas(conn, local_id, member_id)
            conn.execute("UPDATE appointments SET customer = ? WHERE customer = ?",
                         (member_id, local_id))

    def _remove_older_in_tx(self, tombstones: Sequence[tuple[str, int]]) -> None:
        """Remove each member whose cached record is not newer than its tombstone
        (a member removed and then added again keeps the newer record)."""
        conn = self.db.connection()
        gone = [m for m, version in tombstones
                if conn.execute("DELETE FROM members WHERE member_id = ? AND version <= ? "
                                "AND provisional = 0", (m, version)).rowcount]
        conn.executemany("DELETE FROM member_tokens WHERE member_id = ?", [(m,) for m in gone])

    def _remove_in_tx(self, member_ids: Sequence[str]) -> None:
        conn = self.db.connection()
        conn.executemany("DELETE FROM member_tokens WHERE member_id = ?",
                         [(m,) for m in member_ids])
        conn.executemany("DELETE FROM members WHERE member_id = ?", [(m,) for m in member_ids])

    def apply_changes(self, change: dict[str, Any]) -> bool:
        """Apply a ``/members/changes`` message atomically.

        Returns False (and changes nothing) on a version gap (``from_version`` above
        the cache's): the caller then fetches a snapshot. A change the cache already
        has (``to_version`` ≤ the cache's version) is ignored and returns True. A set
        that overlaps the cache's version is applied record by record: a record or
        tombstone never replaces a newer cached record. Tombstones are
        ``{"member_id", "removed": true}`` rows in ``members`` and the v1 ``removed``
        ids (both at the set's ``to_version`` unless a row says its own).
        """
        try:
            from_v, to_v = int(change["from_version"]), int(change["to_version"])
            rows = [self._parse_record(r, "member change", tombstone_version=to_v)
                    for r in change.get("members") or []]
            records = [r for r in rows if not r.get("removed")]
            tombstones = [(r["member_id"], r["version"]) for r in rows if r.get("removed")]
            tombstones += [(str(m), to_v) for m in change.get("removed") or []]
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, InvalidRecord):
                raise
            raise InvalidRecord(f"malformed member change: {exc}") from None
        with self.db.write("applying member changes"):
            current = self.db.meta_int("members_version")
            if to_v <= current:
                return True
            if from_v > current:
                return False
            gen = self.db.meta_int("import_gen")
            self._upsert_in_tx([(r, json.dumps(r, separators=(",", ":"), ensure_ascii=False))
                                for r in records], gen)
            self._remove_older_in_tx(tombstones)
            self.db.set_meta("members_version", to_v)
        return True

    def import_snapshot(self, lines: Iterable[bytes | str], version: int, full: bool, *,
                        chunk_size: int = 5000) -> int:
        """Stream an NDJSON snapshot into the cache; returns how many records.

        Records are applied in chunks, each one transaction (sales are never kept
        waiting behind a million-row import); a record replaces the cached one
        whole unless the cached one is newer; a tombstone line
        (``{"member_id", "removed": true}``, at the snapshot's version unless it
        says its own) removes the member and its tokens unless the cached record
        is newer. ``full`` (``since=0``) then removes the members the snapshot did not
        name (local enrolments awaiting the club stay). ``members_version`` moves
        to ``version`` only at the very end, so an interrupted import is simply
        fetched again.
        """
        with self.db.write("importing members"):
            gen = self.db.meta_int("import_gen") + 1
            self.db.set_meta("import_gen", gen)
        count = 0
        chunk: list[tuple[dict[str, Any], str]] = []
        tombs: list[tuple[str, int]] = []
        for number, raw in enumerate(lines, start=1):
            text = raw.decode("utf-8") if isinstance(raw, bytes | bytearray) else raw
            text = text.strip()
            if not text:
                continue
            try:
                record = json.loads(text)
            except ValueError as exc:
                raise InvalidRecord(f"snapshot line {number} is not JSON: {exc}") from None
            parsed = self._parse_record(record, f"snapshot line {number}",
                                        tombstone_version=int(version))
            if parsed.get("removed"):
                # A tombstone (delta snapshots): the member was removed at the club.
                tombs.append((parsed["member_id"], parsed["version"]))
            else:
                chunk.append((parsed, text))
            if len(chunk) + len(tombs) >= chunk_size:
                self._import_chunk(chunk, tombs, gen)
                count += len(chunk)
                chunk, tombs = [], []
        if chunk or tombs:
            self._import_chunk(chunk, tombs, gen)
            count += len(chunk)
        if full:
            self._sweep_members(gen)
        with self.db.write("importing members"):
            # Never backwards: change sets applied during the import stay counted.
            self.db.execute_sql(
                "UPDATE meta SET value = max(CAST(value AS INTEGER), ?) "
                "WHERE key = 'members_version'", (int(version),))
        return count

    def _import_chunk(self, chunk: list[tuple[dict[str, Any], str]],
                      tombstones: list[tuple[str, int]], gen: int) -> None:
        with self.db.write("importing members"):
            self._upsert_in_tx(chunk, gen)
            self._remove_older_in_tx(tombstones)

    def _sweep_members(self, gen: int) -> None:
        last_rowid = 0
        while True:
            with self.db.write("importing members"):
                rows = self.db.execute_sql(
                    "SELECT rowid, member_id FROM members WHERE rowid > ? AND gen < ? AND "
                    "provisional = 0 ORDER BY rowid LIMIT 5000", (last_rowid, gen)).fetchall()
                if not rows:
                    return
                self._remove_in_tx([r[1] for r in rows])
                last_rowid = rows[-1][0]

    def provisional_member_in_tx(self, body: dict[str, Any]) -> None:
        """A member enrolled here offline is usable at once, until the club's record."""
        record = {
            "member_id": body["member_id"], "version": 0, "name": body.get("name"),
            "status": "active", "tier": None, "groups": [], "birthday": None, "joined": None,
            "identifiers": list(body.get("identifiers") or []), "balances": {}, "stats": {},
            "applied": {},
        }
        self.db.execute_sql(
            "INSERT OR IGNORE INTO members (member_id, version, applied_here, gen, provisional, "
            "record) VALUES (?, 0, 0, 0, 1, ?)",
            (record["member_id"], json.dumps(record, separators=(",", ":"), ensure_ascii=False)))
        for token in record["identifiers"]:
            self.db.execute_sql(
                "INSERT OR IGNORE INTO member_tokens (token, member_id) VALUES (?, ?)",
                (token, record["member_id"]))

    def provisional_gift_card_in_tx(self, card: dict[str, Any], sale_id: str) -> None:
        """(1.3) A gift card sold here is spendable here at once, until the club's
        record (the same ``card_id``) replaces it. Its token must be free: a card or
        member already found by it refuses the sale (``gift_card_token_taken``)."""
        from agent.offline_queue.value import (  # value imports this module
            ValueNotAvailable,
            encode_record,
            gift_card_record,
        )

        record = gift_card_record(card, sale_id)
        if self.db.execute_sql("SELECT 1 FROM member_tokens WHERE token = ?",
                               (card["token"],)).fetchone() is not None:
            raise ValueNotAvailable("gift_card_token_taken", "this gift card's code already "
                                    "belongs to a card or member; nothing was recorded",
                                    {"card_id": card["card_id"]})
        self.db.execute_sql(
            "INSERT OR IGNORE INTO members (member_id, version, applied_here, gen, provisional, "
            "record) VALUES (?, 0, 0, 0, 1, ?)", (record["member_id"], encode_record(record)))
        self.db.execute_sql("INSERT INTO member_tokens (token, member_id) VALUES (?, ?)",
                            (card["token"], record["member_id"]))

    def drop_provisional_cards_in_tx(self, sale_id: str) -> None:
        """(1.3) The club rejected the sale that sold these gift cards: they never were."""
        gone = [str(m) for (m,) in self.db.execute_sql(
            "SELECT member_id FROM members WHERE provisional = 1 "
            "AND json_extract(record, '$._sale_id') = ?", (sale_id,)).fetchall()]
        self._remove_in_tx(gone)

    def correct_enrolment_in_tx(self, body: dict[str, Any]) -> None:
        """A manager's correction of an enrolment made here shows at once (the club
        applies it to its record too): ``changes.name`` renames, ``changes.phone``
        (a ``tel:`` token) replaces the member's phone, ``void`` closes the member.

        Applied to the ``local:`` record and to the club's record that took over its
        identifiers, when the terminal already has it.
        """
        local_id = str(body.get("member_id"))
        row = self.db.execute_sql("SELECT record FROM members WHERE member_id = ?",
                                  (local_id,)).fetchone()
        targets = [local_id]
        if row is not None:
            for token in json.loads(row[0]).get("identifiers") or []:
                holder = self.db.execute_sql(
                    "SELECT member_id FROM member_tokens WHERE token = ?", (token,)).fetchone()
                if holder is not None and holder[0] not in targets:
                    targets.append(str(holder[0]))
        changes = body.get("changes") or {}
        phone = changes.get("phone")
        for member_id in targets:
            found = self.db.execute_sql("SELECT record FROM members WHERE member_id = ?",
                                        (member_id,)).fetchone()
            if found is None:
                continue
            record = json.loads(found[0])
            if body.get("action") == "void":
                record["status"] = "closed"
            if isinstance(changes.get("name"), str):
                record["name"] = changes["name"]
            if isinstance(phone, str):
                old = [t for t in record.get("identifiers") or [] if str(t).startswith("tel:")]
                for token in old:
                    self.db.execute_sql(
                        "DELETE FROM member_tokens WHERE token = ? AND member_id = ?",
                        (token, member_id))
                record["identifiers"] = [t for t in record.get("identifiers") or []
                                         if t not in old] + [phone]
                self.db.execute_sql("INSERT OR REPLACE INTO member_tokens (token, member_id) "
                                    "VALUES (?, ?)", (phone, member_id))
            self.db.execute_sql("UPDATE members SET record = ? WHERE member_id = ?",
                                (json.dumps(record, separators=(",", ":"), ensure_ascii=False),
                                 member_id))

    def check_link_in_tx(self, body: dict[str, Any]) -> None:
        """Refuse a ``card_link`` this cache can tell is wrong (the caller holds the
        write transaction): the card belongs to another member or was reported lost,
        or ``replaces`` is not one of the member's cards. Raises
        :class:`~agent.offline_queue.events.CardNotLinkable`."""
        member_id, token = str(body["member_id"]), str(body["identifier"])
        holder = self.db.execute_sql(
            "SELECT m.member_id, json_extract(m.record, '$.name') FROM member_tokens t "
            "JOIN members m ON m.member_id = t.member_id WHERE t.token = ?",
            (token,)).fetchone()
        if holder is not None and holder[0] != member_id:
            raise ev.CardNotLinkable("card_taken", f"this card already belongs to {holder[1]}",
                                     {"member_id": holder[0], "name": holder[1]})
        if holder is not None:
            # Linked already (a till retrying a link whose answer it lost finds it here).
            raise ev.CardNotLinkable("card_linked", "this card is already the member's",
                                     {"member_id": member_id, "name": holder[1]})
        if self.db.execute_sql("SELECT 1 FROM member_tokens WHERE token = ?",
                               (LOST_PREFIX + token,)).fetchone() is not None:
            raise ev.CardNotLinkable("card_lost", "this card was reported lost")
        replaces = body.get("replaces")
        if replaces is not None:
            owner = self.db.execute_sql("SELECT member_id FROM member_tokens WHERE token = ?",
                                        (str(replaces),)).fetchone()
            if owner is None or owner[0] != member_id or replaces == token:
                raise ev.CardNotLinkable("not_members_card",
                                         "the card to replace is not this member's")

    def link_token_in_tx(self, member_id: str, token: str, *,
                          replaces: object = None) -> None:
        """A card linked here finds its member at once (the club confirms later).

        ``replaces`` (a lost card's token, **1.1** key of the card_link event) stops
        finding the member at once and is kept as lost (``lost_identifiers``): tapped
        again it is refused as a lost card, not as an unknown one.
        """
        row = self.db.execute_sql("SELECT record FROM members WHERE member_id = ?",
                                  (member_id,)).fetchone()
        if row is None:
            return
        record = json.loads(row[0])
        ids = list(record.get("identifiers") or [])
        lost = [t for t in record.get(LOST_KEY) or [] if isinstance(t, str)]
        if isinstance(replaces, str) and replaces != token:
            ids = [t for t in ids if t != replaces]
            self.db.execute_sql("DELETE FROM member_tokens WHERE token = ? AND member_id = ?",
                                (replaces, member_id))
            self.db.execute_sql("INSERT OR REPLACE INTO member_tokens (token, member_id) "
                                "VALUES (?, ?)", (LOST_PREFIX + replaces, member_id))
            if replaces not in lost:
                lost.append(replaces)
        if token not in ids or ids != record.get("identifiers") \
                or lost != (record.get(LOST_KEY) or []):
            if token not in ids:
                ids.append(token)
            record["identifiers"] = ids
            if lost:
                record[LOST_KEY] = lost
            self.db.execute_sql("UPDATE members SET record = ? WHERE member_id = ?",
                                (json.dumps(record, separators=(",", ":"), ensure_ascii=False),
                                 member_id))
        self.db.execute_sql("INSERT OR REPLACE INTO member_tokens (token, member_id) "
                            "VALUES (?, ?)", (token, member_id))

    def cache_looked_up(self, record: dict[str, Any], at_epoch: float) -> None:
        """Keep a record the club answered an online lookup with (``agent.sync.lookup``),
        marked ``_looked_up_at`` (epoch seconds) so the services know it is not followed
        by the scope's change sets. A cached record with a higher ``version`` stays;
        ``members_version`` does not move; a full snapshot drops it (the next tap asks
        again)."""
        record = self._parse_record(dict(record), "member lookup")
        record[LOOKED_UP_KEY] = float(at_epoch)
        with self.db.write("caching a looked-up member"):
            self._upsert_in_tx([(record, json.dumps(record, separators=(",", ":"),
                                                    ensure_ascii=False))],
                               self.db.meta_int("import_gen"))
            self._bound_looked_up_in_tx()

    def looked_up_count(self) -> int:
        """How many members the cache keeps from online lookups."""
        return int(self.db.execute_sql(
            f"SELECT count(*) FROM members WHERE {_LOOKED_UP_AT} IS NOT NULL").fetchone()[0])  # noqa: S608 (a constant)

    def _bound_looked_up_in_tx(self) -> None:
        """Drop the members looked up longest ago beyond :data:`MAX_LOOKED_UP` (their
        own events stay in the outbox; a tap looks the member up again)."""
        conn = self.db.connection()
        over = self.looked_up_count() - MAX_LOOKED_UP
        if over <= 0:
            return
        oldest = [row[0] for row in conn.execute(
            f"SELECT member_id FROM members WHERE {_LOOKED_UP_AT} IS NOT NULL "  # noqa: S608 (a constant)
            f"ORDER BY {_LOOKED_UP_AT} LIMIT ?", (over,))]
        self._remove_in_tx(oldest)
