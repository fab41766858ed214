"""Attacks on sale.commit over the real local-API socket (issues #13.1, #22.1).

Real server, services, store (SQLite, WAL, fsync) and rules, as the till sees them:
many connections committing one quote, a register that hangs up right after sending
and retries at once on a new connection, concurrent redemptions of one member, an
unknown quote_id on a long outbox.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from agent.errors import ApiError
from agent.localapi.client import SocketClient
from agent.localapi.ports import DbThread
from agent.localapi.services import AgentView, Services
from agent.offline_queue import Store
from agent.rules import parse_bundle
from tests.agent.localapi.harness import WEDNESDAY, Harness, read_json, run
from tests.agent.rules.conftest import SPEC_BUNDLE

# A member with little to spend: 125 points (the spec bundle's min_redeem is 100).
LOW = {"member_id": "m-9", "version": 1, "name": "Low", "status": "active", "tier": "silver",
       "groups": [], "identifiers": ["nfc:L0W"], "balances": {"points": 125, "credit.club": 300},
       "stats": {}, "applied": {}}


def sales(h: Harness) -> list[dict[str, Any]]:
    return [e for e in h.outbox() if e["type"] == "sale"]


async def outcome(coro: Any) -> tuple[str, Any]:
    """("ok", result) or ("error", code) of one call."""
    try:
        return "ok", await coro
    except ApiError as exc:
        return "error", exc.code


async def connected(h: Harness, n: int) -> list[SocketClient]:
    clients = [h.client() for _ in range(n)]
    await asyncio.gather(*(c.call("agent.status") for c in clients))
    return clients


def test_many_connections_commit_one_quote_once() -> None:
    """8 connections commit the same quote at once: one sale, eight equal answers."""
    trials, conns = 10, 8

    async def scenario(h: Harness) -> None:
        session = await h.login()
        clients = await connected(h, conns)
        doubles = 0
        for trial in range(trials):
            # Every other trial redeems points (the old code awaited a balance
            # read between finding the quote and taking it).
            params: dict[str, Any] = {"amount": 2000 + trial}
            if trial % 2:
                params.update(token="nfc:04A1B2", redeem_points=100)
            q = await clients[0].call("sale.quote", params)
            before = len(sales(h))
            answers = await asyncio.gather(*(outcome(c.call(
                "sale.commit", {"quote_id": q["quote_id"], "session": session}))
                for c in clients))
            recorded = len(sales(h)) - before
            doubles += recorded - 1
            assert recorded == 1, f"trial {trial}: {recorded} sales for one quote"
            assert all(kind == "ok" for kind, _ in answers), answers
            assert len({json.dumps(r, sort_keys=True) for _, r in answers}) == 1
        print(f"figure: {trials} trials x {conns} connections on one quote: "
              f"{len(sales(h))} sales, {doubles} duplicates")
    run(scenario)


def test_hang_up_and_retry_at_once_gets_the_sale() -> None:
    """#22.1: the register sends commit, hangs up, retries on a new connection at once."""
    trials = 40

    async def scenario(h: Harness) -> None:
        session = await h.login()
        quoter = h.client()
        expired = 0
        for trial in range(trials):
            params: dict[str, Any] = {"amount": 100 + trial}
            if trial % 4 == 0:
                params.update(token="nfc:04A1B2")  # a member sale (balances re-read)
            q = await quoter.call("sale.quote", params)
            commit = {"jsonrpc": "2.0", "id": 1, "method": "sale.commit",
                      "params": {"quote_id": q["quote_id"], "session": session}}
            _r, w = await h.raw()
            w.write(json.dumps(commit).encode() + b"\n")
            await w.drain()
            w.close()  # hangs up without reading the answer
            r2, w2 = await h.raw()
            w2.write(json.dumps(commit).encode() + b"\n")
            await w2.drain()
            answer = await read_json(r2, timeout=10)
            w2.close()
            if "error" in answer:
                expired += answer["error"]["code"] == -32004
                raise AssertionError(f"trial {trial}: the retry got {answer['error']}")
            sale_id = answer["result"]["sale_id"]
            mine = [e for e in sales(h) if e.get("quote_id") == q["quote_id"]]
            assert [e["id"] for e in mine] == [sale_id], f"trial {trial}: {len(mine)} sales"
        assert len(sales(h)) == trials
        print(f"figure: {trials} hang-up-and-retry commits: {len(sales(h))} sales, "
              f"{expired} answered -32004")
    run(scenario)


def test_four_concurrent_redemptions_of_one_member_never_go_negative() -> None:
    """Four quotes of a member with 125 points, each redeeming 100, committed at once."""

    async def scenario(h: Harness) -> None:
        assert h.store.members.apply_changes({"from_version": 10, "to_version": 11,
                                              "members": [LOW]})
        session = await h.login()
        clients = await connected(h, 4)
        quotes = [await clients[0].call("sale.quote", {"amount": 500, "token": "nfc:L0W",
                                                       "redeem_points": 100})
                  for _ in range(4)]
        answers = await asyncio.gather(*(outcome(c.call(
            "sale.commit", {"quote_id": q["quote_id"], "session": session}))
            for c, q in zip(clients, quotes, strict=True)))
        ok = [r for kind, r in answers if kind == "ok"]
        refused = [code for kind, code in answers if kind == "error"]
        points = h.store.members.usable_balances("m-9")["points"]
        print(f"figure: 4 concurrent redemptions of 100 from 125 points: {len(ok)} recorded, "
              f"{len(refused)} refused, balance {points}")
        assert len(ok) == 1 and refused == [-32003] * 3
        assert points == 125 - 100 + 4 >= 0
        # A refused commit leaves its quote usable: once there are points again it goes.
    run(scenario)


def test_refused_commit_leaves_the_quote_usable() -> None:
    async def scenario(h: Harness) -> None:
        assert h.store.members.apply_changes({"from_version": 10, "to_version": 11,
                                              "members": [LOW]})
        session = await h.login()
        c = h.client()
        a = await c.call("sale.quote", {"amount": 500, "token": "nfc:L0W", "redeem_points": 100})
        b = await c.call("sale.quote", {"amount": 500, "token": "nfc:L0W", "redeem_points": 100})
        await c.call("sale.commit", {"quote_id": a["quote_id"], "session": session})
        try:
            await c.call("sale.commit", {"quote_id": b["quote_id"], "session": session})
            raise AssertionError("spent twice")
        except ApiError as exc:
            # #17: every error carries data.reason.
            assert exc.code == -32003 and exc.data == {"limit": "points_balance",
                                                       "reason": "limit"}
            assert "no longer has enough points" in str(exc)
        # The club credits the member meanwhile: the same quote now commits.
        assert h.store.members.apply_changes({"from_version": 11, "to_version": 12, "members": [
            {**LOW, "version": 2, "balances": {"points": 500}}]})
        r = await c.call("sale.commit", {"quote_id": b["quote_id"], "session": session})
        assert r["sale_id"] == sales(h)[-1]["id"] and len(sales(h)) == 2
    run(scenario)


def test_the_store_refuses_a_second_sale_of_a_quote_even_if_memory_forgot() -> None:
    """Defence in depth: with the agent's memory of the commit gone but the quote
    still there, the store's unique quote_id answers the first sale."""
    async def scenario(h: Harness) -> None:
        session = await h.login()
        c = h.client()
        q = await c.call("sale.quote", {"amount": 900})
        stored = h.services._quotes[q["quote_id"]]
        first = await c.call("sale.commit", {"quote_id": q["quote_id"], "session": session})
        h.services._committed.clear()
        h.services._quotes[q["quote_id"]] = stored
        again = await c.call("sale.commit", {"quote_id": q["quote_id"], "session": session})
        assert again["sale_id"] == first["sale_id"] and again["receipt"]["restored"] is True
        assert len(sales(h)) == 1 and q["quote_id"] not in h.services._quotes
    run(scenario)


def test_unknown_quote_on_a_long_outbox_is_one_index_probe() -> None:
    """An unknown quote_id at commit is answered from the index, not by a scan."""
    events = 5000

    async def scenario(h: Harness) -> None:
        session = await h.login()
        body = {"member_id": None, "identified_by": None,
                "lines": [{"sku": None, "category": None, "qty": 1, "unit_price": 100}],
                "gross": 100, "discounts": [], "redeemed_points": 0, "redeemed_value": 0,
                "credits_used": [], "payable": 100, "points_earned": [], "credits_earned": [],
                "lottery_entries": 0, "rules_version": 42, "payment": "cash"}
        conn = h.store.db.connection()
        with h.store.db.atomic():
            for i in range(events):
                h.store.outbox.append_in_tx("sale", {**body, "quote_id": f"q-old-{i}"}, h.now,
                                      h.now.isoformat(timespec="milliseconds"), "c1", False)
        plan = " ".join(str(r[-1]) for r in conn.execute(
            "EXPLAIN QUERY PLAN SELECT id FROM events WHERE quote_id = ?", ("q-x",)))
        assert "USING INDEX events_quote" in plan or "USING COVERING INDEX events_quote" in plan
        c = h.client()
        started = time.monotonic()
        for _ in range(20):
            try:
                await c.call("sale.commit", {"quote_id": "q-unknown", "session": session})
            except ApiError as exc:
                assert exc.code == -32004
        took = (time.monotonic() - started) / 20
        # And one recorded before a restart is found by the same probe.
        found = await c.call("sale.commit", {"quote_id": "q-old-7", "session": session})
        assert found["receipt"]["restored"] is True and found["seq"] == 8
        print(f"figure: unknown quote_id at commit with {events} events: {took * 1000:.1f} ms "
              f"a call; plan: {plan}")
    run(scenario)


# ---------------------------------------------------------------- stateful model

class _Conn:
    """What the services read of a connection (its id, for the per-connection cap)."""

    def __init__(self, conn_id: int):
        self.id = conn_id
        self.subscribed = False


@dataclass
class _Effect:
    points_earned: int
    points_spent: int
    credit_earned: int
    credit_spent: int


TALLY = {"runs": 0, "commits": 0, "sales": 0, "refused": 0, "refunds": 0}


class CommitMachine(RuleBasedStateMachine):
    """Quotes, concurrent commits (duplicated), refunds and club balance updates
    against the real services and store; balances are checked against a plain model."""

    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.TemporaryDirectory(prefix="ctcommit")
        self.store = Store.open(Path(self.tmp.name) / "s.db", "T-0001", "M-7",
                                clock=lambda: WEDNESDAY)
        self.version = 1
        self.store.members.import_snapshot([json.dumps({**LOW, "balances": {"points": 300,
                                                                    "credit.club": 300}})],
                                   1, True)
        self.base = {"points": 300, "credit.club": 300}
        self.loop = asyncio.new_event_loop()
        self.db = DbThread()
        bundle = parse_bundle(json.dumps(SPEC_BUNDLE).encode())
        view = AgentView("T-0001", "M-7", "98", bundle=lambda: bundle)
        self.services = Services(view, self.db, outbox=self.store.outbox,
                                 members=self.store.members,
                                 records=self.store.records, clock=lambda: WEDNESDAY)
        # Sessions are checked against the staff on record at every call.
        self.store.records.put_staff("mg", "Max", "manager", by=None)
        self.session = self.services.sessions.open("mg", "Max", "manager").token
        self.quotes: list[str] = []
        self.effects: dict[str, _Effect] = {}
        self.sales: dict[str, str] = {}  # quote_id -> sale_id
        self.refunded: dict[str, str] = {}  # sale_id -> refund_id
        self.base_changes: list[tuple[float, int]] = []  # (after seq, new cached points)

    def teardown(self) -> None:
        TALLY["runs"] += 1
        TALLY["sales"] += len(self.sales)
        TALLY["refunds"] += len(self.refunded)
        print(f"figure: model after {TALLY['runs']} runs: {TALLY['commits']} commit calls, "
              f"{TALLY['sales']} sales, {TALLY['refused']} refused (-32003), "
              f"{TALLY['refunds']} refunds")
        self.loop.close()
        self.db.close()
        self.store.close()
        self.tmp.cleanup()

    def _run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    @rule(amount=st.integers(100, 3000), redeem=st.sampled_from([None, 100, 150]),
          credit=st.booleans(), conn=st.integers(0, 2))
    def quote(self, amount: int, redeem: int | None, credit: bool, conn: int) -> None:
        params: dict[str, Any] = {"amount": amount, "token": "nfc:L0W",
                                  "redeem_points": redeem,
                                  "use_credit": ["credit.club"] if credit else []}
        try:
            q = self._run(self.services.sale_quote(params, _Conn(conn)))
        except ApiError as exc:
            assert exc.code == -32003  # not enough to redeem at quote time
            return
        self.quotes.append(q["quote_id"])
        self.effects[q["quote_id"]] = _Effect(
            points_earned=sum(p["points"] for p in q["points_earned"]),
            points_spent=q["redeemed_points"],
            credit_earned=sum(c["amount"] for c in q["credits_earned"]),
            credit_spent=sum(c["amount"] for c in q["credits_used"]))

    @initialize(amounts=st.lists(st.integers(100, 3000), min_size=3, max_size=6))
    def some_quotes(self, amounts: list[int]) -> None:
        for i, amount in enumerate(amounts):
            self.quote(amount, (None, 100, 150)[i % 3], i % 4 == 3, i % 3)

    @rule(points=st.integers(0, 400))
    def club_sets_points(self, points: int) -> None:
        # The club's record changes (applied[T] unchanged: every own event still counts).
        self.version += 1
        assert self.store.members.apply_changes({"from_version": self.version - 1,
                                         "to_version": self.version, "members": [
            {**LOW, "version": self.version,
             "balances": {"points": points, "credit.club": self.base["credit.club"]}}]})
        self.base["points"] = points
        # Events up to last_seq were recorded before this change.
        self.base_changes.append((self.store.outbox.last_seq() + 0.5, points))

    @precondition(lambda self: bool(self.quotes))
    @rule(picks=st.lists(st.tuples(st.integers(0, 99), st.integers(1, 3)), min_size=1,
                         max_size=4),
          refunds=st.lists(st.integers(0, 99), max_size=3))
    def at_once(self, picks: list[tuple[int, int]], refunds: list[int]) -> None:
        """Commit some quotes (each up to 3 times) and refund some sales, all at once."""
        ops: list[tuple[str, str, Any]] = []
        for index, times in picks:
            quote_id = self.quotes[index % len(self.quotes)]
            for _ in range(times):
                ops.append(("commit", quote_id, self.services.sale_commit(
                    {"quote_id": quote_id, "session": self.session}, _Conn(9))))
        sold = sorted(self.sales.values())
        for index in refunds if sold else []:
            sale_id = sold[index % len(sold)]
            ops.append(("refund", sale_id, self.services.sale_refund(
                {"sale_id": sale_id, "reason": "test", "session": self.session}, _Conn(9))))

        async def all_at_once() -> list[tuple[str, Any]]:
            return list(await asyncio.gather(*(outcome(coro) for _, _, coro in ops)))

        answers = self._run(all_at_once())
        TALLY["commits"] += sum(1 for kind, _, _ in ops if kind == "commit")
        TALLY["refused"] += sum(1 for (kind, _, _), (status, value) in zip(ops, answers,
                                                                          strict=True)
                                if kind == "commit" and status == "error" and value == -32003)
        by_quote: dict[str, set[str]] = {}
        for (kind, key, _), (status, value) in zip(ops, answers, strict=True):
            if kind == "commit":
                by_quote.setdefault(key, set()).add(
                    value["sale_id"] if status == "ok" else f"error {value}")
                if status == "ok":
                    assert self.sales.setdefault(key, value["sale_id"]) == value["sale_id"]
                else:
                    assert value in (-32003, -32004), value
            elif status == "ok":
                assert key not in self.refunded, "refunded twice"
                self.refunded[key] = value["refund_id"]
        for (kind, key, _), (status, value) in zip(ops, answers, strict=True):
            if kind == "refund" and status != "ok":
                assert value == -32008 and key in self.refunded, value  # a second refund
        for quote_id, seen in by_quote.items():
            # One sale per quote, and never "expired" for a recorded one. A commit
            # refused for funds leaves the quote usable (documented): a later one of
            # the same batch may succeed once a refund in it gave the funds back.
            sold_as = {v for v in seen if not v.startswith("error")}
            assert len(sold_as) <= 1, f"{quote_id} recorded as two sales: {seen}"
            assert not (sold_as and "error -32004" in seen), \
                f"{quote_id} answered 'expired' although it was recorded: {seen}"
            assert len(seen) == 1 or (sold_as and seen - sold_as == {"error -32003"}), \
                f"{quote_id} answered two ways: {seen}"

    @invariant()
    def balances_match_the_model(self) -> None:
        entries = {e.id: e for e in self.store.outbox.events()}
        # One sale per quote, whatever happened.
        per_quote: dict[str, int] = {}
        for e in entries.values():
            if e.type == "sale":
                per_quote[e.event["quote_id"]] = per_quote.get(e.event["quote_id"], 0) + 1
        assert all(n == 1 for n in per_quote.values()), per_quote
        assert set(per_quote) == set(self.sales)
        # Replay in seq order: each sale's redemption fitted the balance at its turn.
        sale_quote = {sale_id: q for q, sale_id in self.sales.items()}
        steps = [(entries[s].seq, +1, self.effects[q]) for s, q in sale_quote.items()]
        steps += [(entries[r].seq, -1, self.effects[sale_quote[s]])
                  for s, r in self.refunded.items()]
        # usable = the club's cached balance at that moment + every own event so far.
        cached, own_points, own_credit = 300, 0, 0
        changes = list(self.base_changes)
        for seq, sign, eff in sorted(steps, key=lambda t: t[0]):
            while changes and changes[0][0] < seq:
                cached = changes.pop(0)[1]
            points, credit = cached + own_points, self.base["credit.club"] + own_credit
            if sign > 0:
                assert eff.points_spent == 0 or eff.points_spent <= points
                assert eff.credit_spent == 0 or eff.credit_spent <= credit
            own_points += sign * (eff.points_earned - eff.points_spent)
            own_credit += sign * (eff.credit_earned - eff.credit_spent)
            # A sale never takes a balance below zero (one may be there already: the
            # club lowered it, or a refund took back earned points).
            assert sign < 0 or (cached + own_points >= min(points, 0)
                                and self.base["credit.club"] + own_credit >= min(credit, 0))
        points = self.base["points"] + own_points
        credit = self.base["credit.club"] + own_credit
        usable = self.store.members.usable_balances("m-9")
        assert usable.get("points", 0) == points
        assert usable.get("credit.club", 0) == credit


CommitMachine.TestCase.settings = settings(max_examples=25, stateful_step_count=15,
                                           deadline=None)
TestCommitModel = CommitMachine.TestCase
