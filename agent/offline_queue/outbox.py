"""The outbox: protocol events recorded durably, sent in batches, acked, pruned.

An event is recorded with the next ``seq`` of this terminal in one write
transaction together with its balance deltas (and, for a sale, its promotions
index); it leaves the send list when the club acks it and the file when it was
accepted, applied and reflected (:meth:`Outbox.prune`). The read side is
:class:`agent.offline_queue.outbox_reads.OutboxReader`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from agent.errors import LimitExceeded
from agent.offline_queue import events as ev
from agent.offline_queue.adjustments import append_adjustment, preview_adjustment
from agent.offline_queue.database import Database, utc_text
from agent.offline_queue.deltas import add_deltas, delta_rows, drop_deltas, prune_deltas
from agent.offline_queue.entries import StoredEvent
from agent.offline_queue.members import MemberCache
from agent.offline_queue.outbox_reads import STATES, OutboxReader, chunks
from agent.offline_queue.package_uses import (
    UseCheck,
    append_package_freeze,
    append_package_use,
    check_package_refund_in_tx,
    with_own_freezes,
)
from agent.offline_queue.promotions import promotion_counts, record_promotions
from agent.offline_queue.uuid7 import uuid7_str
from agent.offline_queue.value import ValueCheck, check_value_in_tx
from agent.rules import accounts
from agent.rules.adjust import AdjustmentsConfig
from agent.rules.packages import member_packages
from agent.rules.refund import RefundRefused, drop_zero_rows, parse_lines, refund_part
from agent.rules.stored_value import has_value_rows

__all__ = ["DEFAULT_KEEP", "MIN_KEEP", "PRUNE_BATCH", "STATES", "Outbox"]

#: Accepted events younger than this (by ``at`` and by ack) stay even when
#: reflected: day reports, refunds and their already-refunded check need them.
DEFAULT_KEEP = timedelta(days=35)
#: The shortest ``keep``: today's (local) day must stay whole for its report.
MIN_KEEP = timedelta(days=2)
#: Events pruned per transaction by default.
PRUNE_BATCH = 500
#: (1.3) The ``quote_id`` column of an ``account_payment`` with a client's
#: ``payment_id``: this prefix and the id (one payment per id).
PAYMENT_KEY = "pay:"
#: Event types whose ``sale_id`` is kept as ``ref_id`` (refunds, (1.3) account events).
_REFERS_TO_SALE = ("refund", "refund_lines", "account_charge", "account_refund",
                   "gift_card_redeem")


class Outbox(OutboxReader):
    """The outbox of one terminal (``store.outbox``)."""

    def __init__(self, db: Database, members: MemberCache, terminal_id: str,
                 merchant_id: str):
        super().__init__(db, terminal_id)
        self.members = members
        self.merchant_id = merchant_id

    def append(self, type: str, body: dict[str, Any], *, at: datetime,
               staff_id: str | None, offline: bool, check_funds: bool = False,
               account_offline_max: int | None = None) -> StoredEvent:
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

        (1.3) A sale with a tender on a house account is checked against the account
        in the same transaction (AccountRefused: not authorised, closed, over its
        credit limit, or, ``offline`` with ``account_offline_max`` set, over what this
        terminal may charge unsynced) and recorded with its ``account_charge``; a
        refund of such a sale with its ``account_refund``: both or neither.
        """
        ev.validate_body(type, body)
        at_text = ev.format_at(at)
        with self.db.write(f"recording a {type}"):
            return self.append_in_tx(type, body, at, at_text, staff_id, offline, check_funds,
                                     account_offline_max)

    def append_in_tx(self, type_: str, body: dict[str, Any], at: datetime, at_text: str,
                     staff_id: str | None, offline: bool,
                     check_funds: bool = False,
                     account_offline_max: int | None = None) -> StoredEvent:
        """The body of :meth:`append` for a part that records a row with its event
        (local records): the caller validated ``body`` and holds the write
        transaction (``db.atomic()``), whose connection is used directly here:
        this is the hot path."""
        conn = self.db.connection()
        effect = self._effect_in_tx(type_, body)
        quote_id = body.get("quote_id") if type_ == "sale" else None
        if type_ == "account_payment" and isinstance(body.get("payment_id"), str):
            # (1.3) a payment is taken at most once per client key, like a sale per quote
            quote_id = PAYMENT_KEY + str(body["payment_id"])
        if not isinstance(quote_id, str):
            quote_id = None
        if quote_id is not None:
            earlier = conn.execute("SELECT id FROM events WHERE quote_id = ?",
                                   (quote_id,)).fetchone()
            if earlier is not None:
                raise ev.QuoteAlreadyRecorded(quote_id, str(earlier[0]))
        if check_funds and type_ == "sale" and effect.member_id is not None:
            self._check_funds_in_tx(effect.member_id, body, effect)
        on_account = ev.account_tender(body) if type_ == "sale" else None
        if on_account is not None:
            self._check_charge_in_tx(body, on_account, offline, account_offline_max)
        elif type_ == "account_payment":
            self._check_payment_in_tx(body)
        if type_ == "card_link":
            # Checked in this write transaction: of two links of one card at once,
            # the second sees the first (ev.CardNotLinkable).
            self.members.check_link_in_tx(body)
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
             body.get("sale_id") if type_ in _REFERS_TO_SALE else None,
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
            for card in body.get("gift_cards_issued") or []:  # (1.3) spendable here at once
                self.members.provisional_gift_card_in_tx(card, event_id)
        if on_account is not None and on_account[1] > 0:
            self._companion_in_tx("account_charge", {
                "account_id": on_account[0], "sale_id": event_id,
                "member_id": body.get("member_id"),
                "identified_by": self._account_token(body), "amount": on_account[1]},
                at, at_text, staff_id, offline)
        elif type_ in ("refund", "refund_lines"):
            self._reverse_charge_in_tx(type_, body, event_id, at, at_text, staff_id, offline)
        return StoredEvent(id=event_id, seq=seq, type=type_, at=at_text, body=wire)

    # ---- (1.3) house accounts ---------------------------------------------------

    @staticmethod
    def _account_token(body: dict[str, Any]) -> str | None:
        """The account card's token a sale's account tender names, if it was shown."""
        for row in body.get("tenders") or ():
            if row.get("method") == "account" and isinstance(row.get("identified_by"), str):
                return str(row["identified_by"])
        return None

    def _companion_in_tx(self, type_: str, body: dict[str, Any], at: datetime,
                         at_text: str, staff_id: str | None, offline: bool) -> StoredEvent:
        """A house-account event recorded in the caller's write transaction."""
        ev.validate_body(type_, body)
        return self.append_in_tx(type_, body, at, at_text, staff_id, offline)

    def _check_charge_in_tx(self, body: dict[str, Any], on_account: tuple[str, int],
                            offline: bool, offline_max: int | None) -> None:
        """Refuse a sale's charge the account does not allow (read in the write
        transaction that records it: two tills cannot both pass the limit)."""
        account_id, amount = on_account
        record = self.members.member(account_id)
        owed = self.members.usable_balances(account_id).get(ev.OWED, 0)
        cached = int(((record or {}).get("balances") or {}).get(ev.OWED, 0) or 0)
        refusal = accounts.charge_refusal(
            record, owed, amount, buyer=body.get("member_id"), token=self._account_token(body),
            unsynced=owed - cached, offline_max=offline_max if offline else None)
        if refusal is not None:
            raise ev.AccountRefused(refusal.reason, refusal.message, refusal.params)

    def _check_payment_in_tx(self, body: dict[str, Any]) -> None:
        account_id = str(body["account_id"])
        owed = self.members.usable_balances(account_id).get(ev.OWED, 0)
        refusal = accounts.payment_refusal(self.members.member(account_id), owed,
                                           int(body["amount"]))
        if refusal is not None:
            raise ev.AccountRefused(refusal.reason, refusal.message, refusal.params)

    def _reverse_charge_in_tx(self, type_: str, body: dict[str, Any], refund_id: str,
                              at: datetime, at_text: str, staff_id: str | None,
                              offline: bool) -> None:
        """A refund of a sale charged on account gives the account back its share."""
        conn = self.db.connection()
        sale = conn.execute("SELECT state FROM events WHERE id = ?",
                            (body["sale_id"],)).fetchone()
        if sale is None or sale[0] == "rejected":
            return  # the club refused the sale: its charge never counted
        rows = conn.execute(
            "SELECT type, body FROM events WHERE ref_id = ? AND type IN ('account_charge', "
            "'account_refund') AND state != 'rejected'", (body["sale_id"],)).fetchall()
        if not rows:
            return
        charged = reversed_before = 0
        account_id = None
        for kind, text in rows:
            row = json.loads(text)
            if kind == "account_charge":
                charged += int(row["amount"])
                account_id = str(row["account_id"])
            else:
                reversed_before += int(row["amount"])
        owed = self.members.usable_balances(account_id).get(ev.OWED, 0) \
            if account_id is not None else 0
        amount = accounts.refund_reversal(
            charged, reversed_before, None if type_ == "refund" else int(body["payable"]),
            owed)
        if account_id is None or amount <= 0:
            return
        self._companion_in_tx("account_refund", {
            "account_id": account_id, "sale_id": body["sale_id"], "refund_id": refund_id,
            "amount": amount}, at, at_text, staff_id, offline)

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

    def append_linked(self, type_: str, body: dict[str, Any],
                      companions: Sequence[dict[str, Any]], *, at: datetime,
                      staff_id: str | None, offline: bool, check_funds: bool = False,
                      value_check: ValueCheck | None = None,
                      account_offline_max: int | None = None) -> StoredEvent:
        """(1.3) Record an event and its companion ``gift_card_redeem`` events in ONE
        write transaction: all of them or none (an event affects one holder; a sale
        paid by a gift card touches two).

        Each companion body gets ``sale_id`` (a sale's id, or for a refund the refunded
        sale's) and, for a refund, ``refund_id``. ``value_check`` (a sale or refund that
        spends stored value): inside the transaction, refuse with ValueNotAvailable when
        a gift card or the member's ``value.<x>`` balance cannot pay (never below zero,
        expired lots and cards excluded, the offline day limit) — see
        :func:`agent.offline_queue.value.check_value_in_tx`.
        """
        ev.validate_body(type_, body)
        at_text = ev.format_at(at)
        with self.db.write(f"recording a {type_}"):
            if value_check is not None:
                check_value_in_tx(self.db.connection(), self.members, type_, body, companions,
                                  value_check)
            stored = self.append_in_tx(type_, body, at, at_text, staff_id, offline,
                                       check_funds, account_offline_max)
            for companion in companions:
                part = dict(companion)
                if type_ == "sale":
                    part["sale_id"] = stored.id
                else:
                    part["sale_id"] = body["sale_id"]
                    part["refund_id"] = stored.id
                ev.validate_body("gift_card_redeem", part)
                self.append_in_tx("gift_card_redeem", part, at, at_text, staff_id, offline)
            return stored

    def append_adjustment(self, body: dict[str, Any], *, at: datetime, staff_id: str | None,
                          offline: bool, config: AdjustmentsConfig | None,
                          day: tuple[datetime, datetime]) -> tuple[StoredEvent, dict[str, int]]:
        """(1.3) Check and record a ``balance_adjust`` in one write transaction
        (:func:`agent.offline_queue.adjustments.append_adjustment`)."""
        return append_adjustment(self, body, at=at, staff_id=staff_id, offline=offline,
                                 config=config, day=day)

    def append_package_use(self, body: dict[str, Any], *, at: datetime, staff_id: str | None,
                           offline: bool, check: UseCheck) -> tuple[StoredEvent, int | None]:
        """(1.3) Check and record a check-in in one write transaction
        (:func:`agent.offline_queue.package_uses.append_package_use`)."""
        return append_package_use(self, body, at=at, staff_id=staff_id, offline=offline,
                                  check=check)

    def append_package_freeze(self, body: dict[str, Any], *, at: datetime,
                              staff_id: str | None, offline: bool, today: date) -> StoredEvent:
        """(1.3) Check and record a freeze in one write transaction
        (:func:`agent.offline_queue.package_uses.append_package_freeze`)."""
        return append_package_freeze(self, body, at=at, staff_id=staff_id, offline=offline,
                                     today=today)

    def member_packages(self, member_id: str) -> list[Mapping[str, Any]]:
        """(1.3) The member's packages as the club's record has them, with this
        terminal's own freezes the record does not show yet."""
        with self.db.guard("reading packages"):
            record = self.members.member(member_id)
            out = []
            for pkg in member_packages(record):
                mine = with_own_freezes(self, member_id, pkg)
                if mine is not None:
                    out.append(mine)
            return out

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
        if type_ in ev.ACCOUNT_TYPES:
            return ev.account_effect(type_, body)
        if type_ == "gift_card_redeem":
            return ev.gift_card_effect(body)
        if type_ == "balance_adjust":
            return ev.adjust_effect(body)
        if type_ == "package_use":
            return ev.package_use_effect(body)
        if type_ == "package_freeze":  # no balance changes; the member is named
            return ev.Effect(member_id=str(body["member_id"]))
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
            "SELECT id, type, body, seq FROM events WHERE ref_id = ? AND type IN "
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
        if type_ == "refund_lines" and has_value_rows(sale):
            raise ev.RefundNotPossible(
                "refund_whole_value", "a sale that moved stored value (top-ups, gift cards) "
                "is refunded whole", {"sale_id": sale_id})
        if type_ == "refund":
            if row[1] == "rejected":
                return ev.Effect()
            # (1.3) refused while a package it sold was used; its visits go at once
            return _with_visits(ev.sale_effect(sale).reversed(), check_package_refund_in_tx(
                self, sale_id, sale, None, []))
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
        visits = check_package_refund_in_tx(
            self, sale_id, sale, dict(lines),
            [(int(r[3]), dict(e)) for r, e in zip(done, earlier, strict=True)])
        return _with_visits(ev.refund_lines_effect(sale, part), visits)

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
                if type_ == "card_link":
                    # The club refused the link (the card went to another member first,
                    # or was reported lost): the card stops finding the member here.
                    self.members.unlink_rejected_in_tx(event_id)
                if type_ == "sale":
                    # (1.3) Gift cards it sold were never issued.
                    self.members.drop_provisional_cards_in_tx(event_id)
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


def _with_visits(effect: ev.Effect, visits: Mapping[str, int]) -> ev.Effect:
    """(1.3) A refund's effect with the package visits it takes back here at once."""
    if not visits:
        return effect
    balance = dict(effect.balance)
    for kind, change in visits.items():
        balance[kind] = balance.get(kind, 0) + change
    return replace(effect, balance=balance)
