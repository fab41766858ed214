"""The chaos run: sales through the API while the agent is SIGKILLed and the broker restarted.

Shared by tests/e2e/test_chaos.py (a few hundred sales) and ``python -m bench.agent
--chaos N`` (10,000). A sale counts as *confirmed* only when ``sale.commit``
answered; a commit whose answer was lost (the agent died) is retried with the same
``quote_id`` after the restart, which answers the recorded sale or
``quote_expired`` when nothing was recorded. At the end every confirmed sale must
be at the club exactly once, no other sale may be, and balances must agree.
"""

from __future__ import annotations

import json
import random
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.errors import ApiError
from agent.localapi import NOT_ALLOWED, QUOTE_EXPIRED
from agent.localapi.client import ApiUnavailable, SyncClient
from hw_sim.broker import MosquittoBroker, TlsFiles
from hw_sim.club.pki import ClubCA
from hw_sim.club.sim import SimClub
from tests.agent.daemon.support import AgentProcess
from tests.e2e.terminal import ClubTerminal, club_terminal
from tests.fixtures.club import ClubPki

MEMBERS = {"m-1001": "tel:+989121234567", "m-1002": "code:CLUB-1002",
           "m-1003": "tel:+989351112233"}
FAST_LINK = {"reconnect_base_s": 0.2, "reconnect_cap_s": 1.0, "ack_timeout_s": 3.0}


@dataclass
class ChaosReport:
    confirmed: dict[str, dict[str, Any]] = field(default_factory=dict)
    attempts: int = 0
    kills: int = 0
    broker_restarts: int = 0
    lost_answers: int = 0
    lost_then_found: int = 0
    lost_not_recorded: int = 0
    hangups: int = 0
    doubled: int = 0
    phantom: int = 0
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        return {"confirmed_sales": len(self.confirmed), "attempts": self.attempts,
                "agent_kills": self.kills, "broker_restarts": self.broker_restarts,
                "lost_answers": self.lost_answers, "lost_then_found": self.lost_then_found,
                "lost_not_recorded": self.lost_not_recorded,
                "hangups_retried_at_once": self.hangups,
                "doubled_sales": self.doubled, "phantom_sales": self.phantom,
                "seconds": round(self.seconds, 1)}


@contextmanager
def chaos_world() -> Iterator[tuple[MosquittoBroker, SimClub, ClubPki]]:
    """A private club CA, TLS broker and simulated club (no pytest needed)."""
    root = Path(tempfile.mkdtemp(prefix="ctchaos", dir="/tmp"))
    ca = ClubCA.create(root / "pki")
    server = ca.issue(root / "pki", "localhost", server=True)
    pki = ClubPki(root / "pki", ca, server)
    broker = MosquittoBroker(root / "broker", tls=TlsFiles(ca.cert_file, server.cert, server.key),
                             club_id="chaos")
    broker.start()
    club = SimClub(root / "club", broker.tls_url, club_id="chaos", tls=pki.club_tls("chaos"))
    club.start()
    try:
        yield broker, club, pki
    finally:
        club.stop()
        broker.stop()
        shutil.rmtree(root, ignore_errors=True)


class StaffAtTill:
    """The manager (staff 2) at the till: signs in again after a restart, retries a
    lost answer (the caller sends its ``request_id`` again)."""

    def __init__(self, term: ClubTerminal) -> None:
        self.term = term
        self.client: SyncClient | None = None
        self.session: str | None = None
        self.lost = 0

    def _drop(self) -> None:
        if self.client is not None:
            try:
                self.client.close()
            except Exception:
                pass
        self.client, self.session = None, None

    def call(self, method: str, params: dict[str, Any], deadline: float) -> Any:
        while True:
            try:
                if self.client is None:
                    self.client = SyncClient(self.term.files.socket, timeout_s=10)
                if self.session is None:
                    self.session = self.client.call(
                        "staff.login", {"staff_id": "2", "pin": "4321"})["session"]
                return self.client.call(method, {**params, "session": self.session})
            except ApiUnavailable:
                self._drop()
                self.lost += 1
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
            except ApiError as exc:
                if exc.code == NOT_ALLOWED and (exc.data or {}).get("reason") in (
                        "session_expired", "shutting_down", "no_session"):
                    self.session = None
                    time.sleep(0.05)
                    continue
                raise


@contextmanager
def agent_and_broker_chaos(term: ClubTerminal, broker: MosquittoBroker, report: ChaosReport,
                           *, seed: int, every: tuple[float, float] = (0.3, 0.9),
                           script: tuple[float, ...] = ()) -> Iterator[None]:
    """While the block runs, a thread now and then SIGKILLs the agent and starts it
    again (60 %) or restarts the broker, killed or stopped (40 %), counting both in
    ``report``; ``script`` gives the first draws (below 0.6: a kill)."""
    stop = threading.Event()
    rng = random.Random(seed)
    first = list(script)

    def run() -> None:
        while not stop.wait(rng.uniform(*every)):
            if (first.pop(0) if first else rng.random()) < 0.6:
                assert term.agent is not None
                term.agent.kill()  # SIGKILL
                report.kills += 1
                time.sleep(rng.uniform(0, 0.3))
                term.agent = AgentProcess(term.files, term.notify, env=term.env)
            else:
                broker.stop(kill=rng.random() < 0.3)
                report.broker_restarts += 1
                time.sleep(rng.uniform(0, 0.5))
                broker.start()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(10)


class Cashier:
    """A script at the till: reconnects, signs in again, retries a lost commit.

    Now and then it behaves like the cash register that found a double sale: it
    sends ``sale.commit``, hangs up at once without reading the answer, and retries
    on a new connection straight away (``hangup_share`` of the commits).
    """

    def __init__(self, term: ClubTerminal, report: ChaosReport, rng: random.Random,
                 hangup_share: float = 0.2):
        self.term = term
        self.report = report
        self.rng = rng
        self.hangup_share = hangup_share
        self.client: SyncClient | None = None
        self.session: str | None = None

    def _call(self, method: str, params: dict[str, Any]) -> Any:
        if self.client is None:
            self.client = SyncClient(self.term.files.socket, timeout_s=10)
        try:
            return self.client.call(method, params)
        except ApiUnavailable:
            self._drop()
            raise

    def _drop(self) -> None:
        if self.client is not None:
            try:
                self.client.close()
            except Exception:
                pass
        self.client = None
        self.session = None

    def _until_up(self, method: str, params: dict[str, Any], deadline: float) -> Any:
        """Call, waiting through agent restarts (and signing in again when needed)."""
        while True:
            try:
                if method != "staff.login" and self.session is None:
                    self.session = self._call("staff.login",
                                              {"staff_id": "1", "pin": "1234"})["session"]
                if "session" in params:
                    params = {**params, "session": self.session}
                return self._call(method, params)
            except ApiUnavailable:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
            except ApiError as exc:
                if exc.code == NOT_ALLOWED and (exc.data or {}).get("reason") in (
                        "session_expired", "shutting_down", "no_session"):
                    self.session = None
                    time.sleep(0.05)
                    continue
                raise

    def _hang_up_after_sending(self, params: dict[str, Any]) -> None:
        """Send a commit on a connection of its own and close it without reading."""
        line = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "sale.commit",
                           "params": params}).encode() + b"\n"
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as raw:
                raw.settimeout(2)
                raw.connect(str(self.term.files.socket))
                raw.sendall(line)
        except OSError:
            pass  # the agent is restarting: the retry below finds out what happened

    def sell(self) -> None:
        deadline = time.monotonic() + 60
        member_id = self.rng.choice([*MEMBERS, None])
        params: dict[str, Any] = {"amount": self.rng.randrange(100, 20000)}
        if member_id:
            params["token"] = MEMBERS[member_id]
        self.report.attempts += 1
        quote = self._until_up("sale.quote", params, deadline)
        commit = {"quote_id": quote["quote_id"], "payment": "cash", "session": None}
        try:
            if self.session is None:
                self.session = self._call("staff.login",
                                          {"staff_id": "1", "pin": "1234"})["session"]
                commit["session"] = self.session
            if self.rng.random() < self.hangup_share:
                self.report.hangups += 1
                self._hang_up_after_sending({**commit, "session": self.session})
            result = self._call("sale.commit", {**commit, "session": self.session})
        except ApiUnavailable:
            # The answer is lost: was the sale recorded? Ask again with the same quote.
            self.report.lost_answers += 1
            try:
                result = self._until_up("sale.commit", commit, deadline)
                self.report.lost_then_found += 1
            except ApiError as exc:
                if exc.code != QUOTE_EXPIRED:
                    raise
                self.report.lost_not_recorded += 1
                return
        except ApiError as exc:
            if exc.code == NOT_ALLOWED:
                self.session = None
                return
            raise
        self.report.confirmed[result["sale_id"]] = {
            "member_id": member_id, "seq": result["seq"],
            "points": sum(p["points"] for p in quote["points_earned"]),
            "payable": quote["payable"]}


def run_chaos(sales: int, *, seed: int = 7, kill_every: tuple[float, float] = (0.2, 0.8),
              pace_s: float = 0.01, progress: bool = False) -> ChaosReport:
    """Run ``sales`` sales under chaos and check the outcome; returns the counts."""
    rng = random.Random(seed)
    report = ChaosReport()
    started = time.monotonic()
    with chaos_world() as (broker, club, pki), \
            club_terminal(broker, club, pki, link_tuning=FAST_LINK) as term:
        initial = {m: club.ledger.member(m)["balances"].get("points", 0) for m in MEMBERS}
        term.start()
        term.wait_synced()
        cashier = Cashier(term, report, rng)
        try:
            with agent_and_broker_chaos(term, broker, report, seed=seed + 1, every=kill_every):
                for i in range(sales):
                    cashier.sell()
                    time.sleep(pace_s)  # a till, not a load generator
                    if progress and i % 500 == 0:
                        print(f"  {i} sales, {report.summary()}", flush=True)
        finally:
            cashier._drop()
        if not broker.running:
            broker.start()
        term.wait_synced(60)
        last_seq = max((c["seq"] for c in report.confirmed.values()), default=0)
        club.wait_applied("T-0001", last_seq, timeout=120)
        deadline = time.monotonic() + 60
        while term.status()["queue"]["pending"] and time.monotonic() < deadline:
            time.sleep(0.2)
        check(report, club, term, initial)
    report.seconds = time.monotonic() - started
    return report


def check(report: ChaosReport, club: SimClub, term: ClubTerminal,
          initial: dict[str, int]) -> None:
    """Every confirmed sale at the club exactly once, no other; balances agree."""
    events = [e for e in club.ledger.events("T-0001") if e["type"] == "sale"]
    ids = [e["id"] for e in events]
    quotes = [e.get("quote_id") for e in events if e.get("quote_id")]
    report.doubled = len(quotes) - len(set(quotes))
    report.phantom = len(set(ids) - set(report.confirmed))
    assert len(ids) == len(set(ids)), "a sale is at the club twice"
    assert report.doubled == 0, f"{report.doubled} quotes were recorded as two sales"
    assert set(ids) == set(report.confirmed), (
        f"club has {report.phantom} unconfirmed sales and misses "
        f"{len(set(report.confirmed) - set(ids))} confirmed ones")
    assert all(e["_state"] == "applied" for e in events)
    with SyncClient(term.files.socket) as client:
        for member_id, token in MEMBERS.items():
            earned = sum(c["points"] for c in report.confirmed.values()
                         if c["member_id"] == member_id)
            at_club = club.ledger.member(member_id)["balances"].get("points", 0)
            here = client.call("member.identify", {"token": token})["balances"].get("points", 0)
            assert at_club == initial[member_id] + earned, member_id
            assert here == at_club, (member_id, here, at_club)
