"""Faults: after each, the club has every event exactly once and balances agree."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from hw_sim.club.sim import SimClub
from hw_sim.netcut import NetCut
from tests.agent.sync.conftest import Terminal, club_and_terminal_agree

pytestmark = pytest.mark.needs_mosquitto


def exactly_once(club: SimClub, term: Terminal, n: int) -> None:
    club.wait_applied(term.id, n, timeout=90)
    term.wait_drained(60)
    assert club.ledger.event_counts(term.id) == {"applied": n}
    seqs = [e["seq"] for e in club.ledger.events(term.id)]
    assert seqs == list(range(1, n + 1))
    club_and_terminal_agree(club, term, "m-1")


def fill(term: Terminal, n: int) -> None:
    for i in range(n):
        term.sale("m-1", earned=1 + i % 3, redeemed=100 if i % 97 == 5 else 0)


def test_broker_stopped_and_restarted_mid_drain(mosquitto_factory, make_club,
                                                make_terminal) -> None:
    broker = mosquitto_factory()
    club = make_club(broker)
    club.upsert_members([{"member_id": "m-1", "balances": {"points": 100000}}])
    club.faults.delay_acks_s = 0.3  # slow enough to stop the broker in the middle
    term = make_terminal(club, broker.tls_url, start=False)
    # More than the window holds (8 batches of ~390), so the stop finds most unsent.
    fill(term, 6000)
    term.start()
    club.wait_for(lambda: club.ledger.applied_seq(term.id) >= 500, 60, "some events applied")
    broker.stop()
    assert club.ledger.applied_seq(term.id) < 6000
    time.sleep(1.0)
    broker.start()
    fill(term, 200)
    club.faults.delay_acks_s = 0
    exactly_once(club, term, 6200)


def test_acks_lost_delayed_and_doubled(sim_club: SimClub, mosquitto, make_terminal) -> None:
    sim_club.upsert_members([{"member_id": "m-1", "balances": {"points": 100000}}])
    term = make_terminal(sim_club, mosquitto.tls_url)
    sim_club.faults.drop_acks = 3
    fill(term, 1200)
    exactly_once(sim_club, term, 1200)
    assert term.link.counters["ack_timeouts"] >= 1
    # Acks later than the timeout: batches are sent again and answered twice.
    sim_club.faults.delay_acks_s = term.tuning.ack_timeout_s + 1
    sim_club.faults.ack_twice = True
    fill(term, 700)
    exactly_once(sim_club, term, 1900)
    dupes = [e for e in sim_club.ledger.events(term.id) if e["_times_received"] > 1]
    assert dupes  # the club did see resends, and applied them once


def test_network_cut_and_healed(sim_club: SimClub, mosquitto, make_terminal) -> None:
    sim_club.upsert_members([{"member_id": "m-1", "balances": {"points": 100000}}])
    proxy = NetCut(mosquitto.tls_port or 0)
    try:
        term = make_terminal(sim_club, f"mqtts://localhost:{proxy.port}")
        fill(term, 300)
        sim_club.wait_applied(term.id, 300)
        proxy.cut()
        fill(term, 400)  # recorded while the uplink is dead
        cut_for = float(os.environ.get("CLUBTERM_CUT_SECONDS", "8"))
        term.wait(lambda: not term.link.state().online, 20, "the link notices the cut")
        time.sleep(max(0.0, cut_for - 5))
        assert sim_club.ledger.applied_seq(term.id) < 700
        proxy.heal()
        exactly_once(sim_club, term, 700)
    finally:
        proxy.close()


def test_agent_killed_mid_drain_and_restarted(make_club, mosquitto_factory,
                                              make_terminal) -> None:
    total = 6000
    broker = mosquitto_factory()
    club = make_club(broker)
    club.upsert_members([{"member_id": "m-1", "balances": {"points": 100000}}])
    club.faults.delay_acks_s = 0.3
    term = make_terminal(club, broker.tls_url, start=False)
    # More than the window holds (8 batches of ~390), so the kill finds most unsent.
    fill(term, total)
    term.store.close()

    def spawn() -> subprocess.Popen[str]:
        proc = subprocess.Popen([sys.executable, "-m", "tests.agent.sync.link_process",
                                 str(term.config.path)], stdout=subprocess.PIPE, text=True,
                                cwd=os.getcwd())
        assert proc.stdout is not None and proc.stdout.readline().strip() == "started"
        return proc

    proc = spawn()
    try:
        club.wait_for(lambda: club.ledger.applied_seq(term.id) >= 500, 60, "some applied")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert club.ledger.applied_seq(term.id) < total
        club.faults.delay_acks_s = 0
        proc = spawn()
        club.wait_applied(term.id, total, timeout=90)
        club.wait_status(term.id, lambda st: st.get("queue", {}).get("pending") == 0)
    finally:
        proc.terminate()
        proc.wait(10)
    from tests.agent.sync.conftest import open_store
    term.store = open_store(term.config.db_path, term.id, term.config.merchant_id)
    assert term.store.outbox.queue_stats().pending == 0
    assert club.ledger.event_counts(term.id) == {"applied": total}
    club_and_terminal_agree(club, term, "m-1")


def test_club_stalls_longer_than_the_ack_timeout(sim_club: SimClub, mosquitto,
                                                 make_terminal) -> None:
    sim_club.upsert_members([{"member_id": "m-1", "balances": {"points": 100000}}])
    term = make_terminal(sim_club, mosquitto.tls_url)
    term.wait(lambda: term.link.state().online, what="online")
    sim_club.faults.pause_events = True  # the club's back end hangs; batches pile up
    fill(term, 900)
    term.wait(lambda: term.link.counters["ack_timeouts"] >= 1, 20, "an ack timeout")
    # The timeout may come while the last sales are still being counted.
    term.wait(lambda: term.link.state().pending == 900, 5, "900 pending")
    assert sim_club.ledger.event_counts(term.id) == {}  # nothing got through meanwhile
    sim_club.release_held()
    exactly_once(sim_club, term, 900)
