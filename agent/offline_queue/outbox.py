"""The outbox: protocol events recorded durably, sent in batches, acked, pruned.

An event is recorded with the next ``seq`` of this terminal in one write
transaction together with its balance deltas (and, for a sale, its promotions
index); it leaves the send list when the club acks it and the file when it was
accepted, applied and reflected (:meth:`Outbox.prune`). The read side is
:class:`agent.offline_queue.outbox_reads.OutboxReader`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta, tzinfo
from typing import Any

from agent.errors import LimitExceeded
from agent.offline_queue import events as ev
from agent.offline_queue.adjustments import append_adjustment, preview_adjustment
from agent.offline_queue.database import Database, utc_text
from agent.offline_queue.deltas import add_deltas, delta_rows, drop_deltas, prune_deltas
from agent.offline_queue.entries import StoredEvent
from agent.offline_queue.members import MemberCache
from agent.offline_queue.outbox_reads import STATES, OutboxReader, chunks
from agent.offline_queue.promotions import promotion_counts, record_promotions
from agent.offline_queue.uuid7 import uuid7_str
from agent.rules.adjust import AdjustmentsConfig
from agent.rules.refund import RefundRefused, drop_zero_rows, parse_lines, refund_part

__all__ = ["DEFAULT_KEEP", "MIN_KEEP", "PRUNE_BATCH", "STATES", "Outbox"]

#: Accepted events younger than this (by ``at`` and by ack) stay even when
#: reflected: day reports, refunds and their already-refunded check need them.
DEFAULT_KEEP = timedelta(days=35)
#: The shortest ``keep``: today's (local) day must stay whole for its report.
MIN_KEEP = timedelta(days=2)
#: Events pruned per transaction by default.
PRUNE_BATCH = 500


class Outbox(OutboxReader):
    """The outbox of one terminal (``store.outbox``)."""

    def __init__(self, db: Database, members: MemberCache, terminal_id: str,
                 merchant_id: str):
        super().__init__(db, terminal_id)
        self.members = members
        self.merchant_id = merchant_id

    def append(self, type: str, body: dict[str, Any], *, at: datetime,
               staff_id: str | None, offline: bool, check_funds: bool = False) -> StoredEvent:
        """Record one event durably and return it with its ``id`` and ``seq``.

        ``body`` holds the type's own keys (protocol.md); the store adds the common
        ones. Raises InvalidEvent for a malformed body and StorageError when it
        could not be made durable; in both cases nothing was recorded and no
        ``seq`` was used.

        A sale whose body has a ``quote_id`` (the local API's commit) is recorded
        at most once per quote: a second one raises QuoteAlreadyRecorded.
        ``check_funds`` (a sale of a member): inside the same write transaction,
        refuse with LimitExceeded (``points_balance`` / ``credit_balance`` /
        ``balance_bound``) when the points or credit it spends exceed the member's
        usable balances at this moment, or a balance would pass MAX_AMOUNT. The
        check and the append are one atomic step: no interleaving of sales on
        any thread or process takes a balance below zero.
        """
        ev.validate_body(type, body)
        at_text = ev.format_at(at)
        with self.db.write(f"recording a {type}"):
            return self.append_in_tx(type, body, at, at_text, staff_id, offline, check_funds)

    def append_in_tx(self, type_: str, body: dict[str, Any], at: datetime, at_text: str,
                     staff_id: str | None, offline: bool,
                     check_funds: bool = False) -> StoredEvent:
        """The body of :meth:`append` for a part that records a row with its event
        (local records): the caller validated ``body`` and holds the write
        transaction (``db.atomic()``), whose connection is used directly here:
        this is the hot path."""
        conn = self.db.connection()
        effect = self._effect_in_tx(type_, body)
        quote_id = body.get("quote_id") if type_ == "sale" else None
        if not isinstance(quote_id, str):
            quote_id = None
        if quote_id is not None:
            earlier = conn.execute("SELECT id FROM events WHERE quote_id = ?",
                                   (quote_id,)).fetchone()
            if earlier is not None:
                raise ev.QuoteAlreadyRecorded(quote_id, str(earlier[0]))
        if check_funds and type_ == "sale" and effect.member_id is not None:
            self._check_funds_in_tx(effect.member_id, body, effect)
        seq = int(conn.execute(
            "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'last_seq' "
            "RETURNING value").fetchone()[0])
        event_id = uuid7_str()
        wire = ev.wire_event(event_id=event_id, seq=seq, type_=type_, at=at_text,
                             merchant_id=self.merchant_id, terminal_id=self.terminal_id,
                             staff_id=staff_id, offline=offline, body=body)
        data = ev.encode_json(wire)
        if len(data) + self._overhead > ev.MAX_PAYLOAD_BYTES:
            raise ev.InvalidEvent(
                f"a {type_} event of {len(data)} bytes cannot be sent (batches are at most "
                f"{ev.MAX_PAYLOAD_BYTES} bytes)")
        now = self.db.now_text()
        conn.execute(
            "INSERT INTO events (seq, id, type, at, at_us, member_id, ref_id, recorded_by, "
            "state, recorded_at, state_at, redeemed_value, credit_used, purchases, spend, "
            "size, body, quote_id) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (seq, event_id, type_, at_text, ev.epoch_us(at), effect.member_id,
             body.get("sale_id") if type_ in ("refund", "refund_lines") else None,
             staff_id, now, now,
             effect.redeemed_value, effect.credit_used, effect.purchases, effect.spend,
             len(data), data.decode("utf-8"), quote_id))
        if effect.member_id is not None:
            add_deltas(conn, effect.member_id, seq, delta_rows(effect))
        if type_ == "member_enrol":
            self.members.provisional_member_in_tx(body)
        elif type_ == "card_link":
            self.members.link_token_in_tx(str(body["member_id"]), str(body["identifier"]),
                                          replaces=body.get("replaces"))
        elif type_ == "correction" and body.get("ref_type") == "member_enrol":
            self.members.correct_enrolment_in_tx(body)
        elif type_ == "sale":
            record_promotions(conn, seq, wire)
        return StoredEvent(id=event_id, seq=seq, type=type_, at=at_text, body=wire)

    def _check_funds_in_tx(self, member_id: str, body: dict[str, Any],
                           effect: ev.Effect) -> None:
        """Refuse a sale spending more than the usable balances (read in the same
        write transaction as the append, so nothing can spend them meanwhile)."""
        spent: dict[str, int] = {}
        if int(body.get("redeemed_points") or 0) > 0:
            spent[ev.POINTS] = int(body["redeemed_points"])
        for row in body.get("credits_used") or []:
            spent[str(row["kind"])] = spent.get(str(row["kind"]), 0) + int(row["amount"])
        balances = self.members.usable_balances(member_id)
        for kind, amount in spent.items():
            have = balances.get(kind, 0)
            if amount > 0 and amount > have:
                limit = "points_balance" if kind == ev.POINTS else "credit_balance"
                raise LimitExceeded(limit, f"the member has {have} {kind}, the sale spends "
                                           f"{amount}; nothing was recorded")
        for kind, change in effect.balance.items():
            if balances.get(kind, 0) + change > ev.MAX_AMOUNT:
                raise LimitExceeded("balance_bound", f"the member's {kind} balance would pass "
                                    f"{ev.MAX_AMOUNT}; nothing was recorded")

    def append_adjustment(self, body: dict[str, Any], *, at: datetime, staff_id: str | None,
                          offline: bool, config: AdjustmentsConfig | None,
                          day: tuple[datetime, datetime]) -> tuple[StoredEvent, dict[str, int]]:
        """(1.3) Check and record a ``balance_adjust`` in one write transaction
        (:func:`agent.offline_queue.adjustments.append_adjustment`)."""
        return append_adjustment(self, body, at=at, staff_id=staff_id, offline=offline,
                                 config=config, day=day)

    def preview_adjustment(self, body: dict[str, Any], *, staff_id: str | None, offline: bool,
                           config: AdjustmentsConfig | None,
                           day: tuple[datetime, datetime]) -> int:
        """(1.3) What :meth:`append_adjustment` would check, recording nothing; the
        balance of the kind before it (:func:`...adjustments.preview_adjustment`)."""
        return preview_adjustment(self, body, staff_id=staff_id, offline=offline,
                                  config=config, day=day)

    def _effect_in_tx(self, type_: str, body: dict[str, Any]) -> ev.Effect:
        if type_ == "sale":
            return ev.sale_effect(body)
        if type_ == "balance_adjust":
            return ev.adjust_effect(body)
        if type_ not in ("refund", "refund_lines"):
            return ev.Effect()
        sale_id = body["sale_id"]
        row = self.db.execute_sql(
            "SELECT type, state, body FROM events WHERE id = ?", (sale_id,)).fetchone()
        if row is None:
            if type_ == "refund_lines":
                raise ev.RefundNotPossible("unknown_sale", "a refund by line needs the sale "
                                           "on this terminal", {"sale_id": sale_id})
            # A sale of another terminal, or one pruned long ago: the club applies the
            # refund; this terminal sees it when the member record comes back.
            return ev.Effect()
        if row[0] != "sale":
            raise ev.InvalidEvent(f"refund.sale_id {sale_id} is a {row[0]}, not a sale")
        # What was refunded before is read from the outbox in this write transaction:
        # concurrent refunds of one sale are serialised here and never overlap.
        done = self.db.execute_sql(
            "SELECT id, type, body FROM events WHERE ref_id = ? AND type IN "
            "('refund', 'refund_lines') AND state != 'rejected' ORDER BY seq",
            (sale_id,)).fetchall()
        whole = next((r for r in done if r[1] == "refund"), None)
        if whole is not None:
            raise ev.AlreadyRefunded(f"sale {sale_id} was already refunded by {whole[0]}")
        if type_ == "refund" and done:
            raise ev.RefundNotPossible(
                "partly_refunded", f"sale {sale_id} has refunds by line; refund the lines "
                "that are left", {"sale_id": sale_id, "refunds": len(done)})
        sale = json.loads(row[2])
        if type_ == "refund":
            return ev.Effect() if row[1] == "rejected" else ev.sale_effect(sale).reversed()
        try:
            lines = parse_lines(body["lines"], len(sale.get("lines") or []))
            earlier = [parse_lines(json.loads(r[2]).get("lines"), len(sale.get("lines") or []))
                       for r in done]
            part = drop_zero_rows(refund_part(sale, lines, earlier))
        except RefundRefused as exc:
            raise ev.RefundNotPossible(exc.reason, str(exc), exc.params) from exc
        body.update(part)
        ev.validate_body(type_, body)
        if row[1] == "rejected":
            return ev.Effect()
        return ev.refund_lines_effect(sale, part)

    def mark_sent(self, ids: Iterable[str]) -> None:
        """Note that these events were published (they stay in the send list)."""
        id_list = list(ids)
        if not id_list:
            return
        now = self.db.now_text()
        with self.db.write("marking events sent"):
            for chunk in chunks(id_list, 500):
                marks = ", ".join("?" for _ in chunk)
                self.db.execute_sql(
                    "UPDATE events SET sent_at = ?, attempts = attempts + 1, "  # noqa: S608 (placeholders only)
                    "state_at = CASE WHEN state = 'pending' THEN ? ELSE state_at END, "
                    # `+state`: find the rows by id; on `state` SQLite would walk
                    # every waiting event for each statement (O(queue) per call).
                    f"state = 'sent' WHERE +state IN ('pending', 'sent') AND id IN ({marks})",
                    (now, now, *chunk))

    def apply_ack(self, accepted: Sequence[str],
                  rejected: Sequence[tuple[str, str] | dict[str, Any]],
                  applied_seq: int | None) -> None:
        """Apply a club ack: accepted and rejected events leave the send list.

        A rejected event keeps its reason for the manager and stops counting in the
        balances. ``rejected`` holds ``(id, reason)`` pairs or the ack's own
        ``{"id", "reason"}`` objects. ``applied_seq`` only ever moves forward. Unknown ids (already
        pruned) are ignored; an ack never turns a rejected event into an accepted one.
        """
        now = self.db.now_text()
        with self.db.write("recording an ack") as conn:
            for chunk in chunks(list(accepted), 500):
                marks = ", ".join("?" for _ in chunk)
                self.db.execute_sql(
                    # An accepted event was sent even when the link skipped its
                    # "sent" mark (acked before the mark was due, docs/sync.md).
                    "UPDATE events SET state = 'accepted', acked_at = ?1, state_at = ?1, "  # noqa: S608 (placeholders only)
                    "sent_at = coalesce(sent_at, ?1), attempts = max(attempts, 1) "
                    f"WHERE +state IN ('pending', 'sent') AND id IN ({marks})",  # by id
                    (now, *chunk))
            for item in rejected:
                if isinstance(item, dict):
                    event_id, reason = str(item.get("id")), str(item.get("reason") or "")
                else:
                    event_id, reason = item
                row = self.db.execute_sql(
                    "UPDATE events SET state = 'rejected', reason = ?, acked_at = ?, "
                    "state_at = ? WHERE id = ? AND +state IN ('pending', 'sent') "
                    "RETURNING seq, member_id, type", (str(reason), now, now, event_id)
                ).fetchone()
                if row is None:
                    continue
                seq, member_id, type_ = row
                if member_id is not None:
                    drop_deltas(conn, [(member_id, seq)])
                if type_ == "sale":
                    # A refund of a sale the club refused undoes nothing.
                    drop_deltas(conn, ((r_member, r_seq) for r_seq, r_member in conn.execute(
                        "SELECT seq, member_id FROM events WHERE ref_id = ? AND "
                        "member_id IS NOT NULL", (event_id,)).fetchall()))
            if applied_seq is not None:
                self.db.execute_sql(
                    "UPDATE meta SET value = max(CAST(value AS INTEGER), ?) "
                    "WHERE key = 'club_applied_seq'", (int(applied_seq),))

    def prune(self, *, now: datetime | None = None, keep: timedelta = DEFAULT_KEEP,
              batch: int = PRUNE_BATCH, limit: int | None = None) -> int:
        """Delete accepted events the club applied and the member cache reflects.

        An event goes only when all of these hold: it is **accepted**; it was acked
        and happened (``at``) more than ``keep`` ago; its seq ≤ the club's
        ``applied_seq``; and, for an event of a member in the cache, seq ≤ that
        member's ``applied[this terminal]`` (protocol.md: events are kept until
        the cache reflects them; however old, an unreflected event stays).
        Pending, sent and rejected events are never pruned, and ``seq`` numbers
        are never reused (the counter is in ``meta``).

        Works in transactions of at most ``batch`` events and stops after
        ``limit`` (None: until nothing is left), so a caller that shares the
        store with sales can keep each step short. Returns how many went.
        """
        if keep < MIN_KEEP:
            raise ValueError(f"keep must be at least {MIN_KEEP.days} days (today's report "
                             f"reads today's events), not {keep}")
        if batch < 1:
            raise ValueError("batch must be at least 1")
        cutoff = (now or self.db.clock()) - keep
        keep_before, keep_before_us = utc_text(cutoff), ev.epoch_us(cutoff)
        total = 0
        while limit is None or total < limit:
            size = batch if limit is None else min(batch, limit - total)
            with self.db.write("pruning the outbox") as conn:
                applied = self.db.meta_int("club_applied_seq")
                rows = self.db.execute_sql(
                    # Oldest first through the at_us index: the scan stops after
                    # `size` candidates instead of walking every accepted event.
                    "SELECT e.seq, e.member_id FROM events e INDEXED BY events_at "
                    "LEFT JOIN members m ON m.member_id = e.member_id "
                    "WHERE e.at_us < ? AND e.state = 'accepted' AND e.acked_at < ? "
                    "AND e.seq <= ? AND (e.member_id IS NULL OR m.member_id IS NULL "
                    "OR m.applied_here >= e.seq) ORDER BY e.at_us LIMIT ?",
                    (keep_before_us, keep_before, applied, size)).fetchall()
                if not rows:
                    return total
                prune_deltas(conn, [(member_id, seq) for seq, member_id in rows
                                    if member_id is not None])
                seqs = [r[0] for r in rows]
                marks = ", ".join("?" for _ in seqs)
                conn.execute(f"DELETE FROM sale_promotions WHERE seq IN ({marks})", seqs)  # noqa: S608 (placeholders only)
                conn.execute(f"DELETE FROM events WHERE seq IN ({marks})", seqs)  # noqa: S608 (placeholders only)
                total += len(seqs)
            if len(rows) < size:
                return total
        return total

    def promotion_counts(self, member_id: str | None, tz: tzinfo) -> dict[str, Any]:
        """What the rules engine needs for limits, budgets and codes (see
        :func:`agent.offline_queue.promotions.promotion_counts`)."""
        with self.db.guard("reading the promotion counters"):
            return promotion_counts(self.db.connection(), member_id, tz)
