"""(1.3) House accounts end to end under chaos: sales on account, refunds and payments of
the account through the real agent process while it is SIGKILLed and the broker
restarted; at the end every charge, refund and payment is at the club exactly once, each
charge with its sale, and the account's `owed` at the club equals the terminal's."""

from __future__ import annotations

import json
import random
import socket
import sqlite3
import time
from typing import Any

import pytest

from agent.errors import ApiError
from agent.localapi import CONFLICT, QUOTE_EXPIRED
from agent.localapi.client import ApiUnavailable, SyncClient
from hw_sim.broker import mosquitto_available
from tests.e2e.chaos import (
    FAST_LINK,
    Cashier,
    ChaosReport,
    agent_and_broker_chaos,
    chaos_world,
)
from tests.e2e.terminal import club_terminal

pytestmark = [pytest.mark.needs_mosquitto, pytest.mark.slow]

ACCOUNT = "ac-2001"
BUYERS = ("tel:+989121234567", "code:CLUB-1002")  # Sara K. and Reza M., authorised
POOL, POOLED = "pl-3001", ("code:CLUB-1005", "code:CLUB-1006")  # the Karimi family
OPS = 45


class AccountCashier(Cashier):
    """The chaos cashier, paying on account and taking payments of the account."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.charges: dict[str, int] = {}  # confirmed sale id -> charged
        self.payments: dict[str, int] = {}  # confirmed payment event id -> amount
        self.lost_payments = 0
        self.refunded: set[str] = set()
        self.pooled: dict[str, int] = {}  # confirmed pooled sale id -> points earned

    def sell_on_account(self) -> None:
        deadline = time.monotonic() + 60
        quote = self._until_up("sale.quote", {"amount": self.rng.randrange(100, 3000),
                                              "token": self.rng.choice(BUYERS)}, deadline)
        commit = {"quote_id": quote["quote_id"], "session": None,
                  "tenders": [{"method": "account", "amount": quote["payable"],
                               "account_id": ACCOUNT}]}
        self.report.attempts += 1
        if self.rng.random() < 0.3:
            # Sent, hung up without reading, sent again: one sale, one charge.
            self._until_up("agent.status", {}, deadline)  # signs in
            self.report.hangups += 1
            self._hang_up_after_sending({**commit, "session": self.session})
        try:
            result = self._until_up("sale.commit", commit, deadline)
        except ApiError as exc:
            # The agent was killed between the quote and the commit: the quote went with
            # it and nothing was recorded (the end checks that no sale appears).
            if exc.code != QUOTE_EXPIRED:
                raise
            self.report.lost_not_recorded += 1
            return
        except ApiUnavailable:
            self.report.lost_answers += 1
            try:  # the same quote again: the recorded sale, or nothing was recorded
                result = self._until_up("sale.commit", commit, deadline)
                self.report.lost_then_found += 1
            except ApiError as exc:
                if exc.code != QUOTE_EXPIRED:
                    raise
                self.report.lost_not_recorded += 1
                return
        self.report.confirmed[result["sale_id"]] = {"seq": result["seq"]}
        self.charges[result["sale_id"]] = int(quote["payable"])

    def sell_pooled(self) -> None:
        """(1.3) A sale of father or son of the Karimi family: points on the pool."""
        deadline = time.monotonic() + 60
        quote = self._until_up("sale.quote", {"amount": self.rng.randrange(100, 3000),
                                              "token": self.rng.choice(POOLED)}, deadline)
        commit = {"quote_id": quote["quote_id"], "payment": "cash", "session": None}
        try:
            result = self._until_up("sale.commit", commit, deadline)
        except ApiError as exc:
            if exc.code != QUOTE_EXPIRED:
                raise
            return
        self.pooled[result["sale_id"]] = sum(p["points"] for p in quote["points_earned"])

    def take_payment(self) -> None:
        """A payment with the till's key: a lost answer is retried with the same key
        (through agent restarts) and answers the payment recorded, never a second."""
        amount = self.rng.randrange(50, 1500)
        key = f"pay-{self.rng.getrandbits(64):016x}"
        params = {"account_id": ACCOUNT, "amount": amount, "method": "cash",
                  "payment_id": key, "session": None}
        if self.rng.random() < 0.5:
            # The register that sends, hangs up without reading, and sends again.
            self._until_up("agent.status", {}, time.monotonic() + 60)  # signs in
            line = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "account.pay",
                               "params": {**params, "session": self.session}}).encode()
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as raw:
                    raw.settimeout(2)
                    raw.connect(str(self.term.files.socket))
                    raw.sendall(line + b"\n")
                    time.sleep(0.2)  # let it be recorded, then hang up
            except OSError:
                pass  # the agent is restarting: the retry finds out what happened
        result = self._until_up("account.pay", params, time.monotonic() + 60)
        if result.get("repeated"):
            self.lost_payments += 1
        self.payments[result["event_id"]] = amount

    def refund_one(self) -> None:
        left = [s for s in self.charges if s not in self.refunded]
        if not left:
            return
        sale_id = self.rng.choice(left)
        deadline = time.monotonic() + 60
        while True:
            try:
                if self.session is None:
                    self.session = self._call("staff.login", {"staff_id": "2",
                                                              "pin": "4321"})["session"]
                self._call("sale.refund", {"sale_id": sale_id, "reason": "chaos",
                                           "session": self.session})
                break
            except ApiUnavailable:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
            except ApiError as exc:
                if exc.code == CONFLICT:  # recorded before the answer was lost
                    break
                self.session = None
                time.sleep(0.05)
        self.session = None  # back to the cashier
        self.refunded.add(sale_id)


@pytest.mark.skipif(not mosquitto_available(), reason="mosquitto is not installed")
def test_house_account_events_reach_the_club_exactly_once_under_chaos() -> None:
    started = time.monotonic()
    rng = random.Random(19)
    report = ChaosReport()
    with chaos_world() as (broker, club, pki), \
            club_terminal(broker, club, pki, link_tuning=FAST_LINK) as term:
        initial = int(club.ledger.member(ACCOUNT)["balances"]["owed"])
        pool_initial = int(club.ledger.member(POOL)["balances"]["points"])
        term.start()
        term.wait_synced()
        cashier = AccountCashier(term, report, rng, hangup_share=0.0)
        try:
            # a kill, a broker restart, a kill; then at random
            with agent_and_broker_chaos(term, broker, report, seed=20,
                                        script=(0.0, 1.0, 0.0)):
                i = 0
                until = time.monotonic() + 40
                while (i < OPS or report.kills < 2 or report.broker_restarts < 1) \
                        and time.monotonic() < until:
                    i += 1
                    if i % 3 == 2:
                        cashier.take_payment()
                    elif i % 10 == 9:
                        cashier.refund_one()
                    elif i % 4 == 0:
                        cashier.sell_pooled()
                    else:
                        cashier.sell_on_account()
                    time.sleep(0.02)
        finally:
            cashier._drop()
        if not broker.running:
            broker.start()
        term.wait_synced(60)
        deadline = time.monotonic() + 60
        while term.status()["queue"]["pending"] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert term.status()["queue"]["pending"] == 0

        events = club.ledger.events("T-0001")
        by_type: dict[str, list[dict[str, Any]]] = {}
        for e in events:
            by_type.setdefault(e["type"], []).append(e)
        ids = [e["id"] for e in events]
        assert len(ids) == len(set(ids)), "an event is at the club twice"
        charges = by_type.get("account_charge", [])
        sales = {e["id"]: e for e in by_type.get("sale", [])}
        # Each charge once, each with its sale, and exactly the confirmed sales on account.
        assert set(sales) == set(cashier.charges) | set(cashier.pooled)
        assert sorted(c["sale_id"] for c in charges) == sorted(cashier.charges)
        assert {c["sale_id"]: c["amount"] for c in charges} == cashier.charges
        payments = by_type.get("account_payment", [])
        # Exactly the confirmed payments, each once (a retried one answered, not taken again).
        assert {p["id"]: p["amount"] for p in payments} == cashier.payments
        refunds = by_type.get("account_refund", [])
        assert sorted(r["sale_id"] for r in refunds) == sorted(cashier.refunded)
        assert all(e["_state"] == "applied" for e in charges + payments + refunds)
        expected = (initial + sum(c["amount"] for c in charges)
                    - sum(p["amount"] for p in payments) - sum(r["amount"] for r in refunds))
        at_club = int(club.ledger.member(ACCOUNT)["balances"]["owed"])
        with SyncClient(term.files.socket) as client:
            session = client.call("staff.login", {"staff_id": "1", "pin": "1234"})["session"]
            here = client.call("account.status", {"session": session,
                                                  "account_id": ACCOUNT})["accounts"][0]["owed"]
            son = client.call("member.identify", {"code": "CLUB-1006"})["balances"]["points"]
        pool_at_club = int(club.ledger.member(POOL)["balances"]["points"])
        assert all(sales[s]["pool_id"] == POOL for s in cashier.pooled)
        assert pool_at_club == pool_initial + sum(cashier.pooled.values())
        assert son == pool_at_club
        print(f"figure: {len(charges)} charges, {len(payments)} payments "
              f"({cashier.lost_payments} retried after a lost answer), {len(refunds)} refunds; "
              f"{report.kills} agent kills, {report.broker_restarts} broker restarts, "
              f"{report.hangups} commits hung up and sent again; owed {initial} -> "
              f"{at_club} at the club, {here} at the terminal; "
              f"{len(cashier.pooled)} pooled sales, pool {pool_initial} -> {pool_at_club} "
              f"points (son sees {son}); "
              f"{time.monotonic() - started:.1f} s")
        assert at_club == expected
        assert here == at_club
        # The records themselves reached the terminal's cache in the change sets: the
        # cached owed and pool points are the club's (nothing left to project).
        version = club.ledger.members_version()
        deadline = time.monotonic() + 30
        while term.status()["members_version"] < version and time.monotonic() < deadline:
            time.sleep(0.2)
        db = sqlite3.connect(f"file:{term.files.db}?mode=ro", uri=True)
        try:
            cached = {m: json.loads(r) for m, r in db.execute(
                "SELECT member_id, record FROM members WHERE member_id IN (?, ?)",
                (ACCOUNT, POOL))}
        finally:
            db.close()
        assert cached[ACCOUNT]["balances"]["owed"] == at_club
        assert cached[ACCOUNT]["holder"] == "account"
        assert cached[POOL]["balances"]["points"] == pool_at_club
        assert report.kills >= 2 and report.broker_restarts >= 1
