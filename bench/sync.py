"""Benchmarks of the club link (``python -m bench.sync``).

1. Drain N queued events (default 100,000) through a local mosquitto to the
   simulated club until all are acked, against raw paho QoS 1 publishing of N
   single messages of the same size to the same broker, in the same run.
2. Catch-up after one hour offline at one sale a second (3,600 events): time from
   start of the link to all acked. Goal: under 5 s.
3. Many terminals (default 200) reconnecting at once after a broker restart: time
   until all are drained, and the peak of broker connections per second.

``--fleet`` runs :mod:`bench.fleet` instead: lightweight terminals (1,000s) with
member changes club-wide vs scoped, and reconnect storms with and without jitter.

Everything runs on the plain listener of a private broker (TLS costs the same in
both halves of the comparison and is not what is measured here). The simulated
club runs in its own process (``python -m hw_sim.club``), as a real club would: in
this process it would share the interpreter lock with the terminal it measures.

Placement (1.): the club and the broker stand for other machines, so for the drain
and the raw run they get the last CPU and the terminal side (this process) the
others, the same in both halves: the simulated club, which costs more than the
terminal per event, does not take the measured terminal's CPU, and the raw
publisher keeps one CPU to itself (it is faster so than spread over two, where
its two threads hand the interpreter lock back and forth). ``--no-pin`` lets
everything share every CPU.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from agent.config import load_config
from agent.offline_queue import Store
from agent.rules import BundleState
from agent.sync import ClubLink, LinkTuning
from hw_sim.broker import MosquittoBroker
from provisioning.tomlwrite import dump_toml

BENCH_TUNING = LinkTuning(keepalive_s=10, reconnect_base_s=0.5, reconnect_cap_s=8.0,
                          ack_timeout_s=30.0, status_min_gap_s=1.0)


def open_store(path: Path, terminal_id: str, merchant_id: str) -> Store:
    return Store.open(path, terminal_id, merchant_id)


def bundle_state(club_id: str, merchant_id: str) -> BundleState:
    return BundleState({}, club=club_id, merchant=merchant_id)


def sale_body(i: int, members: int) -> dict[str, Any]:
    member = f"m-{i % members}" if i % 4 else None
    return {"member_id": member, "identified_by": None,
            "lines": [{"sku": "espresso", "category": "coffee", "qty": 2, "unit_price": 250},
                      {"sku": "cake", "category": "bakery", "qty": 1, "unit_price": 4550}],
            "gross": 5050, "discounts": [{"rule": "coffee-2", "amount": 200}],
            "redeemed_points": 0, "redeemed_value": 0, "credits_used": [], "payable": 4850,
            "points_earned": [{"rule": "base-points", "points": 48}] if member else [],
            "credits_earned": ([{"rule": "cashback", "kind": "credit.club", "amount": 97,
                                 "expires": "2027-02-23"}] if member else []),
            "lottery_entries": 0, "rules_version": 1, "payment": "card"}


def fill(store: Any, n: int, members: int = 200) -> float:
    t0 = time.perf_counter()
    for i in range(n):
        store.outbox.append("sale", sale_body(i, members), at=datetime.now(UTC), staff_id="s-1",
                     offline=True)
    return time.perf_counter() - t0


def write_config(directory: Path, terminal_id: str, club: ClubProcess, broker: MosquittoBroker,
                 merchant_id: str = "M-7") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "agent.toml"
    path.write_text(dump_toml({
        "terminal": {"id": terminal_id, "merchant_id": merchant_id, "club_id": club.club_id,
                     "profile": "sim"},
        "paths": {"state_dir": str(directory), "socket": str(directory / "agent.sock")},
        "club": {"broker_url": broker.url, "central_url": club.central_url,
                 "allow_plain": True},
    }))
    return path


class ClubProcess:
    """The simulated club in a subprocess; its ledger is read directly for checks."""

    def __init__(self, root: Path, broker: MosquittoBroker, members: int = 200):
        self.club_id = "bench"
        self.state = root / "club"
        seed = root / "members.json"
        seed.write_text(json.dumps({"members": [
            {"member_id": f"m-{i}", "balances": {"points": 1000}} for i in range(members)]}))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hw_sim.club", "--broker", broker.url, "--state",
             str(self.state), "--club", self.club_id, "--members", str(seed),
             "--log-level", "warning"], stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.central_url = ""
        for line in self.proc.stdout:
            if "central_url" in line:
                self.central_url = line.split("=", 1)[1].strip()
            if line.startswith("Ctrl-C"):
                break

    def applied_seq(self, terminal_id: str) -> int:
        db = sqlite3.connect(f"file:{self.state / 'club.db'}?mode=ro", uri=True)
        try:
            row = db.execute("SELECT applied_seq FROM terminals WHERE terminal_id=?",
                             (terminal_id,)).fetchone()
            return int(row[0]) if row else 0
        finally:
            db.close()

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(30)


class Terminal:
    def __init__(self, root: Path, terminal_id: str, club: ClubProcess,
                 broker: MosquittoBroker):
        self.config = load_config(write_config(root / terminal_id, terminal_id, club, broker))
        self.store = open_store(self.config.db_path, terminal_id, self.config.merchant_id)
        self.connects: list[float] = []
        self.link: ClubLink | None = None

    def on_event(self, event: dict[str, Any]) -> None:
        if event.get("type") == "link" and event.get("online"):
            self.connects.append(time.time())  # wall clock: compared across processes

    def start(self) -> None:
        self.link = ClubLink(self.config, self.store, bundle_state(self.config.club_id,
                                                                   self.config.merchant_id),
                             self.on_event, tuning=BENCH_TUNING)
        self.link.start()

    def stop(self) -> None:
        if self.link is not None:
            self.link.stop()

    def pending(self) -> int:
        """Queue depth as the link reports it (no store query: polling must not compete)."""
        if self.link is None:
            return int(self.store.outbox.queue_stats().pending)
        return self.link.state().pending


class Placement:
    """Which CPUs the terminal side and the club side (club and broker) run on."""

    def __init__(self, enabled: bool):
        self.all = set(os.sched_getaffinity(0))
        cpus = sorted(self.all)
        self.active = enabled and len(cpus) >= 2
        self.terminal = set(cpus[:-1]) if self.active else self.all
        self.club = {cpus[-1]} if self.active else self.all

    def describe(self) -> str:
        if not self.active:
            return f"terminal, club and broker share CPUs {sorted(self.all)}"
        return (f"terminal side on CPUs {sorted(self.terminal)}, club and broker on CPU "
                f"{sorted(self.club)[0]}")

    def apply(self, club_pids: list[int]) -> None:
        if self.active:
            _pin(os.getpid(), self.terminal)
            for pid in club_pids:
                _pin(pid, self.club)

    def release(self, club_pids: list[int]) -> None:
        if self.active:
            for pid in [os.getpid(), *club_pids]:
                _pin(pid, self.all)


def _pin(pid: int, cpus: set[int]) -> None:
    """Every thread of ``pid`` (threads started later inherit their creator's CPUs)."""
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            os.sched_setaffinity(int(task), cpus)
        except ProcessLookupError:  # a thread that just ended
            pass


def wait(pred: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.01)


def bench_drain(root: Path, broker: MosquittoBroker, club: ClubProcess, n: int,
                placement: Placement) -> dict[str, Any]:
    term = Terminal(root, "T-DRAIN", club, broker)
    fill_s = fill(term.store, n)
    sample = term.store.outbox.next_batch(50)
    size = int(statistics.mean(len(json.dumps(e, separators=(",", ":"))) for e in sample))
    assert broker.proc is not None
    club_pids = [club.proc.pid, broker.proc.pid]
    placement.apply(club_pids)
    try:
        t0 = time.perf_counter()
        term.start()
        wait(lambda: term.pending() == 0, 1800, "drain")
        drain_s = time.perf_counter() - t0
        applied = club.applied_seq("T-DRAIN")
        term.stop()
        assert applied == n, (applied, n)
        raw_s = raw_publish(broker, n, size)
    finally:
        placement.release(club_pids)
    return {"events": n, "event_bytes": size, "fill_s": fill_s, "drain_s": drain_s,
            "drain_eps": n / drain_s, "raw_s": raw_s, "raw_mps": n / raw_s,
            "batches": term.link.counters["batches_sent"] if term.link else None}


def raw_publish(broker: MosquittoBroker, n: int, size: int) -> float:
    """Raw paho QoS 1: n single messages of ``size`` bytes, until every PUBACK is in.

    paho keeps at most 65,535 messages (16-bit ids), so the producer stays at most
    10,000 ahead of the PUBACKs; paho's default of 20 in flight on the wire applies.
    """
    cond = threading.Condition()
    acked = 0

    def on_publish(client: Any, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        nonlocal acked
        with cond:
            acked += 1
            cond.notify_all()

    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-raw", protocol=mqtt.MQTTv5)
    c.on_publish = on_publish
    c.max_queued_messages_set(0)
    c.connect("127.0.0.1", broker.port)
    c.loop_start()
    payload = b"x" * size
    t0 = time.perf_counter()
    for i in range(n):
        if i - acked >= 10_000:
            with cond:
                cond.wait_for(lambda i=i: i - acked < 5_000, 60)
        info = c.publish("bench/raw", payload, qos=1)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise RuntimeError(f"raw publish failed: {mqtt.error_string(info.rc)}")
    with cond:
        cond.wait_for(lambda: acked >= n, 1800)
    elapsed = time.perf_counter() - t0
    c.disconnect()
    c.loop_stop()
    return elapsed


def bench_catchup(root: Path, broker: MosquittoBroker, club: ClubProcess) -> dict[str, Any]:
    term = Terminal(root, "T-CATCHUP", club, broker)
    fill(term.store, 3600)
    t0 = time.perf_counter()
    term.start()
    wait(lambda: term.pending() == 0, 600, "catch-up")
    elapsed = time.perf_counter() - t0
    connect_at = term.connects[0] - (time.monotonic() - (time.perf_counter() - t0)) \
        if term.connects else None
    term.stop()
    assert club.applied_seq("T-CATCHUP") == 3600
    return {"events": 3600, "catchup_s": elapsed, "connect_s": connect_at}


def bench_fleet(root: Path, broker: MosquittoBroker, club: ClubProcess, count: int,
                per_terminal: int, down_s: float, processes: int,
                jitter: bool = True) -> dict[str, Any]:
    """``count`` terminals in ``processes`` worker processes (paho uses select(), which
    cannot watch file descriptors above 1024, and one process would have ~1,400)."""
    per = [count // processes + (1 if i < count % processes else 0) for i in range(processes)]
    workers = []
    first = 0
    for n in per:
        workers.append(subprocess.Popen(
            [sys.executable, "-m", "bench.sync", "--fleet-worker", str(root), broker.url,
             club.club_id, club.central_url, str(first), str(n), str(per_terminal),
             "jitter" if jitter else "no-jitter"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
        first += n

    def each(command: str | None, expect: str) -> list[str]:
        for w in workers:
            if command is not None:
                assert w.stdin is not None
                w.stdin.write(command + "\n")
                w.stdin.flush()
        answers = []
        for w in workers:
            assert w.stdout is not None
            line = w.stdout.readline()
            if not line.startswith(expect):
                raise RuntimeError(f"fleet worker said {line!r}, expected {expect!r}")
            answers.append(line[len(expect):].strip())
        return answers

    each(None, "online")
    broker.stop()
    each("fill", "filled")  # sales recorded while the broker is away
    time.sleep(down_s)
    restart = time.time()
    broker.start()
    reports = [json.loads(a) for a in each("watch", "drained")]
    for w in workers:
        w.wait(60)
    drained_s = max(r["drained_at"] for r in reports) - restart
    connects = sorted(c - restart for r in reports for c in r["connects"])
    per_second = Counter(int(c) for c in connects)
    # The peak over any sliding one-second window, not just aligned seconds.
    peak = max(sum(1 for d in connects if c <= d < c + 1) for c in connects) if connects else 0
    applied = sum(club.applied_seq(f"T-{i:04d}") for i in range(count))
    return {"terminals": count, "events": count * per_terminal, "down_s": down_s,
            "drained_s": drained_s, "peak_connects_per_s": peak,
            "connect_spread_s": (connects[-1] if connects else 0),
            "by_second": dict(sorted(per_second.items())), "applied_total": applied}


def fleet_worker(argv: list[str]) -> int:
    """One process of the fleet: start terminals, then follow commands on stdin."""
    from types import SimpleNamespace
    root, broker_url, club_id, central_url = Path(argv[0]), argv[1], argv[2], argv[3]
    first, n, per_terminal = int(argv[4]), int(argv[5]), int(argv[6])
    if argv[7] == "no-jitter":  # the comparison: plain doubling, as paho's own delay
        import agent.sync.session
        from agent.sync.backoff import backoff_ceiling
        agent.sync.session.full_jitter_delay = (  # type: ignore[assignment]
            lambda attempt, base, cap, rng: backoff_ceiling(attempt, base, cap))
    club: Any = SimpleNamespace(club_id=club_id, central_url=central_url)
    broker: Any = SimpleNamespace(url=broker_url)
    terms = [Terminal(root, f"T-{i:04d}", club, broker) for i in range(first, first + n)]
    for t in terms:
        t.start()
    wait(lambda: all(t.link and t.link.state().online for t in terms), 300, "online")
    print("online", flush=True)
    for line in sys.stdin:
        if line.strip() == "fill":
            wait(lambda: not any(t.link and t.link.state().online for t in terms), 60,
                 "offline")
            for t in terms:
                fill(t.store, per_terminal)
                if t.link is not None:
                    t.link.wake()
                t.connects.clear()
            print("filled", flush=True)
        elif line.strip() == "watch":
            wait(lambda: all(t.pending() == 0 for t in terms), 900, "drained")
            drained_at = time.time()
            connects = [c for t in terms for c in t.connects]
            print("drained", json.dumps({"drained_at": drained_at, "connects": connects}),
                  flush=True)
            break
    for t in terms:
        t.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--fleet-worker"]:
        logging.basicConfig(level=logging.ERROR)
        return fleet_worker(argv[1:])
    if argv[:1] == ["--fleet-lite"]:  # one process of bench.fleet's lightweight terminals
        from bench import fleet
        return fleet.worker(argv[1:])
    if argv[:1] == ["--fleet-real"]:  # one process of bench.fleet's real agents
        from bench import fleet
        return fleet.real_worker(argv[1:])
    if "--fleet" in argv:  # issue #20: scoped vs club-wide member changes, storms
        return fleet_main([a for a in argv if a != "--fleet"])
    ap = argparse.ArgumentParser(prog="python -m bench.sync", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--terminals", type=int, default=200)
    ap.add_argument("--per-terminal", type=int, default=100,
                    help="events each fleet terminal records while the broker is down")
    ap.add_argument("--down", type=float, default=5.0, help="seconds the broker stays down")
    ap.add_argument("--no-jitter", action="store_true",
                    help="fleet: reconnect with plain doubling, for comparison")
    ap.add_argument("--processes", type=int, default=4,
                    help="worker processes the fleet terminals run in")
    ap.add_argument("--skip", action="append", default=[], choices=["drain", "catchup", "fleet"])
    ap.add_argument("--no-pin", action="store_true",
                    help="drain: let the terminal, the club and the broker share every CPU")
    args = ap.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    logging.basicConfig(level=logging.ERROR)  # the fleet's reconnect chatter is expected
    with tempfile.TemporaryDirectory(prefix="bench-sync-") as tmp:
        root = Path(tmp)
        broker = MosquittoBroker(root / "broker")
        broker.start()
        club = ClubProcess(root, broker)
        try:
            if "drain" not in args.skip:
                placement = Placement(not args.no_pin)
                print(f"drain and raw: {placement.describe()}")
                r = bench_drain(root, broker, club, args.events, placement)
                print(f"drain: {r['events']} events of ~{r['event_bytes']} B "
                      f"(queued in {r['fill_s']:.1f} s) acked in {r['drain_s']:.2f} s = "
                      f"{r['drain_eps']:,.0f} events/s in {r['batches']} batches")
                print(f"raw paho QoS 1: {r['events']} single messages of {r['event_bytes']} B "
                      f"in {r['raw_s']:.2f} s = {r['raw_mps']:,.0f} msg/s")
                print(f"drain / raw = {r['drain_eps'] / r['raw_mps']:.2f}x "
                      f"(goal >= 1.0x)")
            if "catchup" not in args.skip:
                r = bench_catchup(root, broker, club)
                print(f"catch-up: 3600 events (1 h at 1 sale/s) all acked "
                      f"{r['catchup_s']:.2f} s after the link started (goal < 5 s)")
            if "fleet" not in args.skip:
                r = bench_fleet(root, broker, club, args.terminals, args.per_terminal,
                                args.down, args.processes, not args.no_jitter)
                print(f"fleet{' (no jitter)' if args.no_jitter else ''}: "
                      f"{r['terminals']} terminals, broker down {r['down_s']:.0f} s, "
                      f"{r['events']} events queued: all drained {r['drained_s']:.1f} s after "
                      f"the broker came back; peak {r['peak_connects_per_s']} connections/s, "
                      f"reconnects spread over {r['connect_spread_s']:.1f} s "
                      f"(applied {r['applied_total']})")
                print(f"  connections by second after restart: {r['by_second']}")
        finally:
            club.stop()
            broker.stop()
    return 0


def fleet_main(argv: list[str]) -> int:
    """``python -m bench.sync --fleet [--sizes 200,1000,2000] [--storm 1000,2000]``."""
    from bench import fleet
    ap = argparse.ArgumentParser(prog="python -m bench.sync --fleet",
                                 description=fleet.__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="200,1000,2000",
                    help="fleet sizes of the fan-out runs (comma-separated)")
    ap.add_argument("--storm", default="1000,2000",
                    help="fleet sizes of the reconnect storms (comma-separated; empty: none)")
    ap.add_argument("--scoped-sizes", default="5000",
                    help="more fleet sizes run scoped only (club-wide there would take this "
                         "box minutes of broker CPU; empty: none)")
    ap.add_argument("--real", type=int, default=50,
                    help="real agents (link, core, SQLite store) in the fan-out comparison "
                         "(0: none)")
    ap.add_argument("--down", type=float, default=3.0, help="seconds the broker stays down")
    args = ap.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    fleet.run([int(n) for n in args.sizes.split(",") if n],
              [int(n) for n in args.storm.split(",") if n], args.down,
              scoped_sizes=tuple(int(n) for n in args.scoped_sizes.split(",") if n),
              real=args.real)
    return 0


if __name__ == "__main__":
    sys.exit(main())
