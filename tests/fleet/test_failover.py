"""A broker node dies under a real agent: during a drain of many sales, then during
member changes. The agent (the real process, ``python -m agent run``) lists two
nodes of an aedes cluster that shares sessions through Redis; the simulated club is
on a third node that stays up. Every sale must reach the club exactly once, the
balances must agree, and every member change must reach the terminal (from its
session on the other node, or a snapshot where aedes delivered out of order).
"""

from __future__ import annotations

import random
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from agent.localapi.client import SyncClient
from hw_sim.club.__main__ import load_members_file
from hw_sim.club.sim import SimClub
from hw_sim.terminal import seed_store, write_config
from tests.agent.daemon.support import NotifyListener
from tests.e2e.chaos import MEMBERS, Cashier, ChaosReport, check
from tests.e2e.terminal import ClubTerminal
from tests.fixtures.club import ClubPki
from tests.fleet.brokers import AedesCluster

pytestmark = pytest.mark.timeout(150)

FAST_LINK = {"reconnect_base_s": 0.2, "reconnect_cap_s": 1.0, "ack_timeout_s": 3.0,
             "keepalive_s": 5, "max_batch_events": 10}  # a drain of many batches
SALES_QUEUED = 600  # recorded while the terminal's nodes are down: the drain the kill cuts
SALES_DURING = 60  # recorded while the node dies and the agent fails over
CHANGE_SETS = 120  # member change sets published around the second kill


@contextmanager
def fleet_terminal(club: SimClub, pki: ClubPki, broker_urls: list[str], *,
                   mqtt_version: str = "3.1.1") -> Iterator[ClubTerminal]:
    """The real agent, configured with several brokers, with the demo members."""
    seed = load_members_file(None)
    club.upsert_members(seed["members"])
    club.publish_bundle("M-7", 1)
    root = Path(tempfile.mkdtemp(prefix="ctf", dir="/tmp"))
    try:
        keys = root / "rule-keys"
        club.signing_key.write_public(keys)
        certs = pki.terminal_cert("T-0001")
        files = write_config(
            root, central_url=club.central_url, club_id=club.club_id,
            tls=(pki.ca.cert_file, certs.cert, certs.key), trusted_keys=keys,
            pan_key_hex=seed["pan_key_hex"],
            club_settings={"broker_urls": broker_urls, "mqtt_version": mqtt_version,
                           **FAST_LINK})
        seed_store(files, demo_members=False, bundle=False)  # staff only
        notify = NotifyListener(root / "notify.sock")
        term = ClubTerminal(files, club, None, {}, notify)  # type: ignore[arg-type]
        try:
            yield term
        finally:
            if term.agent is not None:
                term.agent.stop()
            notify.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll until true; returns when (monotonic)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)
    return time.monotonic()


def on_node(term: ClubTerminal, cluster: AedesCluster, i: int) -> bool:
    try:
        status = term.status()
    except Exception:
        return False
    port = cluster.nodes[i].tls_port
    return bool(status["online"]) and f":{port}" in str(status.get("broker"))


def link_log(term: ClubTerminal) -> str:
    """The agent's log lines of the club link (for a failure's message)."""
    assert term.agent is not None
    return "\n".join(str(r.get("msg")) for r in term.agent.log_records()
                     if r.get("logger") == "agent.sync")


def node_of(term: ClubTerminal, cluster: AedesCluster) -> int:
    broker = str(term.status().get("broker"))
    return next(i for i, n in enumerate(cluster.nodes) if f":{n.tls_port}" in broker)


def test_node_dies_mid_drain_and_mid_member_changes(
        aedes_cluster: AedesCluster, club_pki: ClubPki, tmp_path: Path) -> None:
    cluster = aedes_cluster
    started = time.monotonic()
    club = SimClub(tmp_path / "club", cluster.nodes[2].tls_url, club_id=str(cluster.club_id),
                   tls=club_pki.club_tls(str(cluster.club_id)), mqtt_version="3.1.1")
    club.start()
    urls = [cluster.nodes[0].tls_url, cluster.nodes[1].tls_url]
    try:
        with fleet_terminal(club, club_pki, urls) as term:
            initial = {m: club.ledger.member(m)["balances"].get("points", 0) for m in MEMBERS}
            term.start()
            term.wait_synced(30)
            report = ChaosReport()
            cashier = Cashier(term, report, random.Random(20), hangup_share=0.0)

            # 1. A backlog: both of the terminal's nodes are down, the till goes on.
            cluster.kill_node(0)
            cluster.kill_node(1)
            wait_until(lambda: not term.status()["online"], 10, "the agent offline")
            t0 = time.monotonic()
            for _ in range(SALES_QUEUED):
                cashier.sell()
            sell_rate = SALES_QUEUED / (time.monotonic() - t0)
            # 2. The nodes come back, the drain starts (small batches, acks a little
            # slow: a drain of many batches) and the terminal's node dies in the middle.
            club.faults.delay_acks_s = 0.05
            cluster.start_node(0)
            cluster.start_node(1)
            wait_until(lambda: club.ledger.event_counts("T-0001").get("applied", 0)
                       >= SALES_QUEUED // 4, 30, "a quarter of the drain")
            first = node_of(term, cluster)
            killed = time.monotonic()
            cluster.kill_node(first)
            applied_at_kill = club.ledger.event_counts("T-0001").get("applied", 0)
            assert applied_at_kill < SALES_QUEUED, "the drain was over before the kill"
            club.faults.delay_acks_s = 0.0
            during = threading.Thread(target=lambda: [cashier.sell()
                                                      for _ in range(SALES_DURING)])
            during.start()
            back = wait_until(lambda: on_node(term, cluster, 1 - first), 30,
                              "the agent on the other node")
            failover_s = back - killed
            during.join(60)
            last_seq = max(c["seq"] for c in report.confirmed.values())
            club.wait_applied("T-0001", last_seq, timeout=60)
            wait_until(lambda: term.status()["queue"]["pending"] == 0, 30, "queue drained")
            received = club.ledger.events("T-0001")
            resent = sum(1 for e in received if e["_times_received"] > 1)
            check(report, club, term, initial)  # exactly once, none unconfirmed, balances

            # 3. Member changes; the node the terminal is on now dies while they flow.
            cluster.start_node(first)
            second = node_of(term, cluster)
            snapshots = len(club.snapshot_requests)
            stop_at = CHANGE_SETS // 3
            killed_at: list[float] = []

            def publish() -> None:
                for i in range(CHANGE_SETS):
                    club.upsert_members([{"member_id": f"m-f{i % 40}",
                                          "identifiers": [f"code:FLEET-{i % 40}"],
                                          "balances": {"points": 1000 + i}}])
                    if i == stop_at:
                        killed_at.append(time.monotonic())
                        cluster.kill_node(second)
                    time.sleep(0.01)

            publisher = threading.Thread(target=publish)
            publisher.start()
            publisher.join(60)
            back2 = wait_until(lambda: on_node(term, cluster, first), 30,
                               "the agent back on the first node")
            # Traffic goes on: the next change set shows the terminal any change set the
            # broker lost (aedes loses some queued ones, docs/fleet.md) and it fetches
            # the snapshot. Without it a loss at the very end would stay unseen.
            club.upsert_members([{"member_id": "m-f0", "identifiers": ["code:FLEET-0"],
                                  "balances": {"points": 5000}}])
            version = club.ledger.members_version()
            wait_until(lambda: term.status()["members_version"] == version, 30,
                       "every change set at the terminal")
            with SyncClient(term.files.socket) as api:
                for i in range(40):
                    here = api.call("member.identify", {"code": f"FLEET-{i}"})
                    assert here["balances"] == club.ledger.member(f"m-f{i}")["balances"]
            # aedes delivers a restored session's queue interleaved with what is
            # published meanwhile, and loses some of it (docs/fleet.md): the agent then
            # sees a gap, fetches a snapshot and ignores late change sets. What counts is
            # the outcome above; the snapshots it cost are a figure, bounded here.
            gap_snapshots = len(club.snapshot_requests) - snapshots
            assert gap_snapshots <= 10, link_log(term)
            print(f"figure: failover after a node kill mid-drain {failover_s:.2f} s; "
                  f"sales {len(report.confirmed)} (queued {SALES_QUEUED}, "
                  f"{applied_at_kill} applied at the kill, {SALES_DURING} during the "
                  f"failover), at the club exactly once, duplicates applied 0, "
                  f"events received more than once {resent}; sell rate "
                  f"{sell_rate:.0f}/s; member changes: {CHANGE_SETS} change sets, node "
                  f"killed after {stop_at}, back on a node in {back2 - killed_at[0]:.2f} s, "
                  f"{gap_snapshots} snapshots after a gap; "
                  f"test {time.monotonic() - started:.1f} s")
    finally:
        club.stop()
