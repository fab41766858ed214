"""``sale.quote`` and ``sale.commit``: quotes held in memory, committed at most once.

A quote is kept under its ``quote_id`` for ``quote_ttl_s`` within the caps below
(documented in docs/local-api.md, "Limits"). ``sale.commit`` looks the quote up
and registers its commit task with no await in between, so two commits of one
quote (any connections, any timing) share one write; the store re-checks the
member's balances inside the write transaction (``check_funds``).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from agent.carddata.detect import find_card_data
from agent.errors import ApiError, LimitExceeded, RulesError
from agent.localapi import INVALID_PARAMS, LIMIT, NOT_FOUND, QUOTE_EXPIRED
from agent.localapi.services.catalogue import CatalogueMethods
from agent.localapi.services.core import Caller, balance_holder
from agent.localapi.services.params import (
    CARD_AS_IDENTIFIER,
    TOO_LARGE,
    Params,
    _iso,
    _p,
    _promotion_params,
    _sentence,
    _within_bounds,
    basket_lines,
)
from agent.localapi.services.receipts import named_lines, print_after_commit
from agent.localapi.services.sales import (
    PROMOTION_KEYS,
    SALE_KEYS,
    restored_receipt,
    sale_receipt,
)
from agent.localapi.services.value import ValueMethods, ValueSale
from agent.localapi.sessions import Session
from agent.offline_queue import QuoteAlreadyRecorded
from agent.offline_queue.events import MAX_AMOUNT
from agent.rules import Line, LineBenefit, MemberView, QuoteContext, QuoteRequest, line_benefits
from agent.rules.model import RedeemRequest
from agent.rules.stored_value import ValueRefused, ValueTender, outside_rules, split_tenders
from agent.rules.tenders import (
    TENDER_METHODS,
    VALUE_TENDER_METHODS,
    Settlement,
    TenderRefused,
    parse_tenders,
    settle,
    single,
    tender_account,
)
from agent.staff import permissions as perm

if TYPE_CHECKING:
    from agent.offline_queue import QueueStats
    from agent.rules import Bundle, Quote

# Quotes are kept in memory only (documented in docs/local-api.md, "Limits").
# Open quotes of one connection: its oldest one goes to make room for a new one.
MAX_QUOTES_PER_CONNECTION = 100
# Open quotes of all connections, and basket lines held by them: a new quote is
# refused (-32003, limit "open_quotes") rather than taking another client's away.
MAX_QUOTES = 1_000
MAX_QUOTE_LINES = 20_000
# Results of commits kept to answer a retry exactly (older ones come from the store),
# also at most MAX_QUOTE_LINES basket lines together.
COMMITTED_KEEP_S = 600.0
MAX_COMMITTED = 1_000


def _retrieve(task: asyncio.Task[dict[str, Any]]) -> None:
    """Mark a commit's failure as seen: every waiter may have hung up."""
    if not task.cancelled():
        task.exception()


def _view(member: dict[str, Any] | None) -> MemberView | None:
    """The rules' view of a member record whose balances are the usable ones."""
    return MemberView(member, member.get("balances")) if member is not None else None


@dataclass
class StoredQuote:
    """A quote waiting to be committed."""

    quote_id: str
    created: float
    quote: Quote
    lines: list[dict[str, Any]]
    member: dict[str, Any] | None
    token: str | None
    masked: str | None
    # The connection that asked for it (the per-connection cap); any may commit it.
    conn_id: int | None = None
    # (1.3) The top-ups and gift cards it sells.
    value: ValueSale | None = None


class QuoteMethods(ValueMethods, CatalogueMethods):
    """``sale.quote`` and ``sale.commit``."""

    def _purge_quotes(self) -> None:
        """Forget expired quotes and old commit results (a quote being committed
        is held by its commit, not by this table)."""
        now = self.monotonic()
        while self._quotes:
            first = next(iter(self._quotes.values()))
            if now - first.created <= self.quote_ttl_s:
                break
            self._quotes.popitem(last=False)
        lines = sum(len(r["receipt"]["lines"] or ()) for _, r in self._committed.values())
        while self._committed:
            at, oldest = next(iter(self._committed.values()))
            if now - at <= COMMITTED_KEEP_S and len(self._committed) <= MAX_COMMITTED \
                    and lines <= MAX_QUOTE_LINES:
                break
            lines -= len(oldest["receipt"]["lines"] or ())
            self._committed.popitem(last=False)

    def _keep_quote(self, stored: StoredQuote) -> None:
        """Hold a new quote within the caps (see the constants at the top)."""
        self._purge_quotes()
        if stored.conn_id is not None:
            mine = [q.quote_id for q in self._quotes.values() if q.conn_id == stored.conn_id]
            # A till re-quotes as the basket changes: its oldest quotes are stale.
            for quote_id in mine[:max(0, len(mine) - MAX_QUOTES_PER_CONNECTION + 1)]:
                del self._quotes[quote_id]
        held = sum(len(q.lines) for q in self._quotes.values())
        if len(self._quotes) >= MAX_QUOTES or held + len(stored.lines) > MAX_QUOTE_LINES:
            raise ApiError(LIMIT, "The terminal holds too many open prices; please try again "
                           "in a minute.", {"limit": "open_quotes", "max_quotes": MAX_QUOTES,
                                            "max_lines": MAX_QUOTE_LINES})
        self._quotes[stored.quote_id] = stored

    async def sale_quote(self, params: Params, conn: Caller | None) -> dict[str, Any]:
        """``sale.quote``: compute the benefit; keep it 120 s under a ``quote_id``."""
        raw = params.get("lines")
        # Lines naming a catalogue product are priced once the member is known.
        from_catalogue = isinstance(raw, list) and params.get("amount") is None and any(
            isinstance(line, dict) and ("barcode" in line or (
                "unit_price" not in line and "sku" in line)) for line in raw[:500])
        if not from_catalogue:
            lines = basket_lines(params)
        token = params.get("token")
        if token is not None and (not isinstance(token, str) or ":" not in token
                                  or len(token) > 600):
            raise ApiError(INVALID_PARAMS, "The token is not a valid identifier token.",
                           {"param": "token"})
        if token is not None and token.partition(":")[0] in ("code", "nfc", "tel") \
                and find_card_data(token.partition(":")[2]):
            # A card number typed or scanned as a code never reaches a quote (or
            # the sale event the quote becomes).
            raise ApiError(INVALID_PARAMS, CARD_AS_IDENTIFIER, {"param": "token"})
        asked = params.get("redeem_points")
        redeem: RedeemRequest = None
        if asked == "max":
            redeem = "max"
        elif isinstance(asked, int) and not isinstance(asked, bool) and asked > 0:
            redeem = asked
        elif asked is not None and asked != 0:
            raise ApiError(INVALID_PARAMS, 'redeem_points must be a whole number or "max".',
                           {"param": "redeem_points"})
        use_credit = params.get("use_credit") or []
        if not isinstance(use_credit, list) or not all(isinstance(k, str) for k in use_credit):
            raise ApiError(INVALID_PARAMS, "use_credit must be a list of balance kinds.",
                           {"param": "use_credit"})
        member = await self._member_for(token) if token else None
        details: list[dict[str, Any]] = []
        if from_catalogue:
            assert isinstance(raw, list)
            if len(raw) > 500:
                basket_lines(params)  # the same refusal as any basket
            priced, details = await self.catalogue_basket(raw, member)
            lines = basket_lines({"lines": priced})
        if member is None and (redeem or use_credit):
            raise ApiError(LIMIT, "Points and credit can only be used by an identified member.",
                           {"limit": "member"})
        # (1.3) Top-ups and gift cards are sold at their price, outside the rules.
        value_idx = [i for i, d in enumerate(details)
                     if "topup" in d or "gift_card" in d or "units_price" in d]
        rule_lines = [ln for i, ln in enumerate(lines) if i not in value_idx]
        quote, member_view, limits = await self._compute(rule_lines, token, member, redeem,
                                                         use_credit, **_promotion_params(params))
        benefits = line_benefits(self.view.bundle(),
                                 [Line.from_dict(line) for line in rule_lines], quote)
        if value_idx:
            for i in value_idx:
                benefits.insert(i, LineBenefit())
            quote = outside_rules(quote, lines, value_idx)
        if not _within_bounds(quote.to_dict()):
            raise ApiError(INVALID_PARAMS, TOO_LARGE, {"param": "lines",
                                                        "reason": "amount_too_large",
                                                        "max": MAX_AMOUNT})
        value = await self.quote_value_rows(raw if isinstance(raw, list) else [], details,
                                            lines, member_view)
        quote_id = "q-" + uuid.uuid4().hex
        masked = self._recent_cards.get(token, (None, None))[0] if token else None
        self._keep_quote(StoredQuote(quote_id, self.monotonic(), quote, lines, member_view,
                                     token, masked, conn.id if conn is not None else None,
                                     value))
        result = quote.to_dict()
        bundle = self.view.bundle()
        result.update({
            # Beside ``lines`` (what is recorded): each line's name, unit, weight and
            # its share of the benefits.
            "line_details": [{**(details[i] if i < len(details) else {}),
                              "benefits": benefits[i].to_dict()} for i in range(len(lines))],
            "quote_id": quote_id,
            "expires_at": _iso(self.clock() + timedelta(seconds=self.quote_ttl_s)),
            "lines": lines,
            "offline": not self.view.online(),
            "member": (self._summary_from(member_view, token)
                       if member_view is not None else None),
            "redeem_limits": limits,
            "currency": bundle.currency if bundle is not None else None,
            "minor_units": bundle.minor_units if bundle is not None else None,
        })
        if value.topups or value.cards or value.units:  # (1.3) credit, issue, use
            result["topups"] = value.topups
            result["gift_cards"] = value.cards
            result["units_used"] = value.units
        return result

    async def _compute(self, lines: list[dict[str, Any]], token: str | None,
                       member: dict[str, Any] | None, redeem: RedeemRequest,
                       use_credit: list[str],
                       codes: Sequence[str] = (), rewards: Sequence[str] = (),
                       ) -> tuple[Quote, dict[str, Any] | None, dict[str, Any]]:
        bundle = self.view.bundle()
        promo = await self._promotion_counts(bundle, member)
        now = self.clock()
        start, end = self._day_bounds(now.astimezone(self._tz()).date())
        # (1.3) a pooled member redeems from the family pool's balances and day counters
        member_id = balance_holder(member) if member is not None else None

        def inputs() -> tuple[QueueStats, dict[str, int] | None, tuple[int, int]]:
            # One hop to the store thread for everything a quote reads.
            stats = self.outbox.queue_stats()
            if member_id is None:
                return stats, None, (0, 0)
            return (stats, self.members.usable_balances(member_id),
                    self.members.offline_counters(member_id, start, end))

        stats, balances, (redeemed_today, credit_today) = await self.db.read(inputs)
        oldest = stats.oldest_at
        oldest_age = (now - oldest).total_seconds() if oldest is not None else None
        member_view = None
        if member is not None and balances is not None:
            member_view = dict(member)
            member_view["balances"] = dict(balances)
        bin6 = self._recent_cards.get(token, (None, None))[1] if token else None
        try:
            request = QuoteRequest(
                lines=[Line.from_dict(line) for line in lines],
                token_kind=token.split(":", 1)[0] if token else None, bin6=bin6,
                redeem_points=redeem, use_credit=tuple(use_credit), codes=tuple(codes),
                rewards=tuple(rewards))
            ctx = QuoteContext(at=now, offline=not self.view.online(),
                               earn_only=self.earn_only(member),
                               redeemed_today=redeemed_today, credit_used_today=credit_today,
                               pending_count=stats.pending, oldest_pending_age_s=oldest_age,
                               **promo)
            quote = self.quote_fn(bundle, request, _view(member_view), ctx)
        except LimitExceeded as exc:
            raise ApiError(LIMIT, _sentence(str(exc)), {"limit": exc.limit}) from exc
        except RulesError as exc:
            raise ApiError(INVALID_PARAMS, _sentence(f"This sale cannot be computed: {exc}")) \
                from exc
        limits = self._redeem_limits(bundle, request, member_view, ctx)
        return quote, member_view, limits

    async def _promotion_counts(self, bundle: Bundle | None, member: dict[str, Any] | None,
                                ) -> dict[str, Any]:
        """Issue 21: the store's counts for limits, budgets, codes and coupons, only
        when a rule reads them; and a seed for coupon codes (unique per quote)."""
        if bundle is None or not bundle.needs_counts:
            return {}
        member_id = balance_holder(member) if member is not None else None
        counts = await self.db.read(self.outbox.promotion_counts, member_id, self._tz())
        counts["coupon_seed"] = uuid.uuid4().hex
        return counts

    def _redeem_limits(self, bundle: Bundle | None, request: QuoteRequest,
                       member: dict[str, Any] | None, ctx: QuoteContext) -> dict[str, Any]:
        """How much this member could redeem on this basket (for the till's buttons).

        The maximum comes from the rules engine itself (a second quote asking
        for "max"), so the button never offers what a commit would refuse.
        """
        if member is None:
            return {"points": None, "credits": [], "held_by": "no member"}
        balances = member["balances"]
        try:
            best = self.quote_fn(bundle, replace(request, redeem_points="max", use_credit=()),
                                 _view(member), ctx)
            points_max = best.redeemed_points
            held = best.limits_held
        except RulesError:
            points_max, held = 0, []
        points_cfg = bundle.points if bundle is not None else None
        credits_cfg = bundle.credits if bundle is not None else None
        credits = []
        for kind in (credits_cfg.accepted if credits_cfg is not None else ()):
            available = int(balances.get(kind, 0))
            if available > 0:
                # Also by the engine, after the points asked for (#15 item 5: the
                # offline day limit, the caps and redeemed points shrink it), and
                # with the limit that held it back.
                try:
                    trial: Quote | None = self.quote_fn(
                        bundle, replace(request, use_credit=(kind,)), _view(member), ctx)
                except RulesError:
                    trial = None
                usable = sum(amount for k, amount in (trial.credits_used if trial else ())
                             if k == kind)
                why = next((x.get("limit") for x in (trial.explain if trial else ())
                            if x.get("step") == "credit" and x.get("credit_kind") == kind), None)
                credits.append({"kind": kind, "available": available, "max": usable,
                                "held_by": None if why in (None, "balance") else why})
        return {
            "points": {"available": int(balances.get("points", 0)),
                       "min": points_cfg.min_redeem if points_cfg is not None else 0,
                       "max": points_max,
                       "value": points_cfg.value if points_cfg is not None else 0},
            "credits": credits,
            "held_by": held[0] if held else ("balance" if points_max else None),
        }

    async def sale_commit(self, params: Params, conn: Caller | None) -> dict[str, Any]:
        """``sale.commit``: record the quoted sale; answer once it is durable.

        A quote is committed at most once. Committing the same ``quote_id`` again
        answers the first result: while the first commit is being written the
        retry waits for it (on any connection); afterwards it is answered from
        memory, and after an agent restart from the sale event (which keeps the
        ``quote_id``, found through an index). A failed commit (storage, balance)
        leaves the quote usable; a retry waiting for it gets the same error.
        """
        quote_id = _p(params, "quote_id", str)
        session = await self._session(params, perm.SELL)
        payment = _p(params, "payment", str, required=False, default="cash")
        if payment not in TENDER_METHODS or payment in VALUE_TENDER_METHODS:
            raise ApiError(INVALID_PARAMS, f"The payment must be one of "
                           f"{', '.join(TENDER_METHODS)}.",
                           {"param": "payment", "reason": "bad_method"})
        tenders: list[tuple[str, int]] | None = None
        account_id: str | None = None
        account_token: str | None = None
        value_tenders: list[ValueTender] = []
        if payment == "account" and params.get("tenders") is None:
            raise ApiError(INVALID_PARAMS, "To pay on account give tenders naming the account.",
                           {"param": "payment", "reason": "bad_account"})
        if params.get("tenders") is not None:  # (1.1) split tenders; `payment` then unused
            try:
                money, value_tenders = split_tenders(params["tenders"])  # (1.3)
                tenders = parse_tenders(money) if money or not value_tenders else []
                tenders += [(t.method, t.amount) for t in value_tenders]
                raw_tenders = list(money)
                # (1.3) the account card shown: the account it belongs to.
                for i, row in enumerate(raw_tenders):
                    if row.get("method") == "account" and row.get("account_token") is not None \
                            and row.get("account_id") is None:
                        account_id, account_token = await self._account_of_card(
                            row["account_token"])
                        raw_tenders[i] = {**row, "account_id": account_id}
                account_id = tender_account(raw_tenders)
            except ValueRefused as exc:
                raise ApiError(INVALID_PARAMS, str(exc), {"param": "tenders",
                                                          "reason": exc.reason,
                                                          **exc.params}) from exc
            except TenderRefused as exc:
                raise ApiError(INVALID_PARAMS, str(exc), {"param": "tenders",
                                                          "reason": exc.reason,
                                                          **exc.params}) from exc
        # From here to the task being registered nothing awaits: two commits of one
        # quote cannot both find it free.
        self._purge_quotes()
        done = self._committed.get(quote_id)
        if done is not None:
            return done[1]
        running = self._commits.get(quote_id)
        if running is None:
            stored_quote = self._quotes.get(quote_id)
            if stored_quote is None or self.monotonic() - stored_quote.created > self.quote_ttl_s:
                self._quotes.pop(quote_id, None)
                earlier = await self._find_committed(quote_id) if len(quote_id) <= 64 else None
                if earlier is not None:
                    return earlier
                raise ApiError(QUOTE_EXPIRED, "This price is no longer valid (older than 2 "
                               "minutes). Please compute the sale again.")
            payable = stored_quote.quote.payable
            try:
                settled = single(payment, payable) if tenders is None \
                    else replace(settle(tenders, payable), account_id=account_id,
                                 account_token=account_token)
            except TenderRefused as exc:
                raise ApiError(INVALID_PARAMS, str(exc), {"param": "tenders",
                                                          "reason": exc.reason,
                                                          **exc.params}) from exc
            running = asyncio.ensure_future(self._commit_once(stored_quote, settled, session,
                                                              value_tenders))
            self._commits[quote_id] = running
            running.add_done_callback(_retrieve)
        # Shielded: a client hanging up does not stop the commit; its retry gets it.
        return await asyncio.shield(running)

    async def _account_of_card(self, token: object) -> tuple[str, str]:
        """(1.3) The house account whose card ``token`` is, and the token checked."""
        from agent.localapi.services.params import _checked_token
        from agent.rules.accounts import is_account

        checked = _checked_token(token, "account_token")
        record = await self.db.read(self.members.lookup, checked)
        if not is_account(record):
            raise ApiError(NOT_FOUND, "This card is not a house account's card.",
                           {"param": "tenders", "reason": "account_unknown"})
        assert record is not None
        return str(record["member_id"]), checked

    async def _commit_once(self, stored_quote: StoredQuote, settled: Settlement,
                           session: Session, value_tenders: list[ValueTender]
                           ) -> dict[str, Any]:
        """Record the sale of one quote (the only commit of it running)."""
        quote_id = stored_quote.quote_id
        try:
            return await self._write_sale(stored_quote, settled, session, value_tenders)
        finally:
            if self._commits.get(quote_id) is asyncio.current_task():
                del self._commits[quote_id]

    async def _write_sale(self, stored_quote: StoredQuote, settled: Settlement,
                          session: Session, value_tenders: list[ValueTender] | None = None
                          ) -> dict[str, Any]:
        quote_id = stored_quote.quote_id
        quote = stored_quote.quote.to_dict()
        member = stored_quote.member
        body: dict[str, Any] = {
            "member_id": member["member_id"] if member else None,
            "identified_by": stored_quote.token,
            "lines": stored_quote.lines,
        }
        body.update({k: quote.get(k) for k in SALE_KEYS})
        body.update({k: quote[k] for k in PROMOTION_KEYS if quote.get(k)})
        body["payment"] = settled.payment  # v1's value (agent/rules/tenders.py)
        body["tenders"] = settled.wire()  # (1.1)
        # Not a protocol key (the club ignores unknown keys): it makes a retried
        # commit idempotent across an agent restart (an indexed column in the store).
        body["quote_id"] = quote_id
        if member is not None and balance_holder(member) != member["member_id"]:
            body["pool_id"] = balance_holder(member)  # (1.3) the family pool's balances
        # (1.3) Stored value: tenders spending it (with their kind or card), top-ups and
        # gift cards sold; a gift card's payment is a companion event of the sale.
        value_rows, companions = await self.resolve_value_tenders(value_tenders or [], member)
        if value_rows:
            body["tenders"] = [t for t in body["tenders"]
                               if t["method"] not in VALUE_TENDER_METHODS] + value_rows
        value = stored_quote.value or ValueSale()
        if value.topups:
            body["topups"] = value.topups
        if value.cards:
            body["gift_cards_issued"] = self.issue_cards(value.cards)
        if value.units:
            body["units_used"] = value.units
        linked = bool(value_rows or value.topups or value.cards or value.units)
        try:
            # check_funds: the store re-reads the usable balances inside the write
            # transaction and refuses a redemption that no longer fits (another
            # till spent the points meanwhile): check and append are one step.
            if linked:
                stored = await self._record("a sale", self.outbox.append_linked, "sale", body,
                                            companions, at=self.clock(),
                                            staff_id=session.staff_id,
                                            offline=not self.view.online(),
                                            check_funds=member is not None,
                                            value_check=self._value_check(),
                                            account_offline_max=self._account_offline_max())
            else:
                stored = await self._record("a sale", self.outbox.append, "sale", body,
                                            at=self.clock(), staff_id=session.staff_id,
                                            offline=not self.view.online(),
                                            check_funds=member is not None,
                                            account_offline_max=self._account_offline_max())
        except ApiError as exc:
            if isinstance(exc.__cause__, QuoteAlreadyRecorded):
                # Recorded by an earlier agent run: answer that sale.
                earlier = await self._find_committed(quote_id)
                if earlier is not None:
                    self._quotes.pop(quote_id, None)
                    return earlier
            raise  # nothing recorded; the quote stays usable
        self._quotes.pop(quote_id, None)
        summary = (await self._summary(member, stored_quote.token)) if member else None
        receipt = sale_receipt(stored_quote.quote, stored, self.view, session, settled,
                               lines=stored_quote.lines, member=summary)
        if linked:  # (1.3) the recorded tenders, and what to print: codes of cards sold
            receipt["tenders"] = body["tenders"]
            for key in ("topups", "gift_cards_issued", "units_used"):
                if body.get(key):
                    receipt[key] = body[key]
        result = {"sale_id": receipt["sale_id"], "seq": receipt["seq"], "receipt": receipt}
        self._committed[quote_id] = (self.monotonic(), result)
        self._purge_quotes()
        self.view.broadcast({"type": "sale", "sale_id": receipt["sale_id"], "seq": receipt["seq"],
                             "member_id": body["member_id"], "payable": body["payable"],
                             "staff_id": session.staff_id})
        # Queued only; the sale is already durable. Printed with the products' names.
        print_after_commit(self.view, await named_lines(self, receipt))
        return result

    def _account_offline_max(self) -> int | None:
        """(1.3) The bundle's ``offline.max_account_charge`` (None: no limit)."""
        bundle = self.view.bundle()
        offline = bundle.offline if bundle is not None else None
        return offline.max_account_charge if offline is not None else None

    async def _find_committed(self, quote_id: str) -> dict[str, Any] | None:
        """The sale recorded for ``quote_id`` before a restart, as a commit result
        (``Store.sale_for_quote``: one index probe, however long the outbox)."""
        entry = await self.db.read(self.outbox.sale_for_quote, quote_id)
        if entry is None:
            return None
        event = entry.event
        receipt = restored_receipt(event, self.view)
        return {"sale_id": event["id"], "seq": event["seq"], "receipt": receipt}

