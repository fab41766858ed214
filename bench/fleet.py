"""Fleet figures: member changes club-wide vs scoped, and reconnect storms
(``python -m bench.sync --fleet``; issue #20, item 5).

Lightweight simulated terminals speak the protocol's MQTT side over loopback to a
private mosquitto: each connects (MQTT 3.1.1, its own client id), subscribes with
QoS 1 to its member-change topic (club-wide ``members/changes``, or its merchant's
``members/merchants/{merchant_id}/changes``), publishes one event batch, and applies
every change set it receives as the agent's core does (parse with the agent's own
:func:`agent.sync.messages.parse_change_set`, version check, PUBACK). They are
asyncio connections in one worker process (epoll: thousands of sockets, no thread
each), so the worker's CPU divided by the fleet is the per-terminal cost of
receiving and applying changes, without a SQLite write (the real agent's per-change
cost is larger by its store write: ``docs/sync.md``).

1. Fan-out: ``merchants = terminals / 5`` and member changes proportional to the
   club (``changes = merchants / 2``: a bigger fleet is a bigger club), each change
   to one merchant's members. Per-terminal messages and CPU per run, club-wide vs
   scoped, and the broker's CPU (``/proc``).
2. Reconnect storm: the broker is killed and restarted after ``--down`` seconds; the
   terminals reconnect with the agent's backoff (:func:`agent.sync.backoff.full_jitter_delay`,
   base 1 s, cap 120 s as in :class:`agent.sync.LinkTuning`) vs the same doubling
   without jitter. Peak connections accepted per second (sliding window) and the
   time until all are back.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.sync.backoff import backoff_ceiling, full_jitter_delay
from agent.sync.messages import MessageError, parse_change_set
from agent.sync.topics import scope_changes_topic

CLUB = "acme"
TERMINALS_PER_MERCHANT = 5
RECONNECT_BASE_S = 1.0  # LinkTuning.reconnect_base_s
RECONNECT_CAP_S = 120.0  # LinkTuning.reconnect_cap_s


# ---- a minimal MQTT 3.1.1 client (what the lightweight terminal needs) ----------

def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("!H", len(raw)) + raw


def _packet(kind: int, body: bytes) -> bytes:
    return bytes([kind]) + _varint(len(body)) + body


def connect_packet(client_id: str, keepalive: int = 120) -> bytes:
    return _packet(0x10, _string("MQTT") + bytes([4, 0x02]) + struct.pack("!H", keepalive)
                   + _string(client_id))  # clean session: each run starts fresh


def subscribe_packet(pid: int, topic: str) -> bytes:
    return _packet(0x82, struct.pack("!H", pid) + _string(topic) + b"\x01")


def publish_packet(pid: int, topic: str, payload: bytes) -> bytes:
    return _packet(0x32, _string(topic) + struct.pack("!H", pid) + payload)


async def read_packet(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readexactly(1)
    length, shift = 0, 0
    while True:
        byte = (await reader.readexactly(1))[0]
        length += (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    return head[0], await reader.readexactly(length)


class LiteTerminal:
    """One simulated terminal: its connection, its member version, its counts."""

    def __init__(self, index: int, topic: str):
        self.id = f"T-{index:05d}"
        self.topic = topic
        self.version = 0
        self.received = 0
        self.applied = 0
        self.connects: list[float] = []
        self.writer: asyncio.StreamWriter | None = None

    async def session(self, port: int, online: asyncio.Event | None = None) -> None:
        """Connect, subscribe, publish a batch, then apply change sets until the socket ends."""
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        self.writer = writer
        try:
            writer.write(connect_packet(self.id))
            kind, body = await read_packet(reader)
            if kind >> 4 != 2 or body[1] != 0:
                raise ConnectionError(f"refused: {body!r}")
            self.connects.append(time.time())
            writer.write(subscribe_packet(1, self.topic))
            batch = json.dumps({"batch": f"b-{self.id}", "terminal_id": self.id,
                                "events": []}).encode()
            writer.write(publish_packet(2, f"clubterm/v1/{CLUB}/terminals/{self.id}/events",
                                        batch))
            if online is not None:
                online.set()
            while True:
                kind, body = await read_packet(reader)
                if kind >> 4 == 3:
                    self._on_publish(kind, body, writer)
        finally:
            writer.close()

    def _on_publish(self, kind: int, body: bytes, writer: asyncio.StreamWriter) -> None:
        tlen = struct.unpack("!H", body[:2])[0]
        pos = 2 + tlen
        qos = (kind >> 1) & 3
        if qos:
            pid = body[pos:pos + 2]
            pos += 2
            writer.write(b"\x40\x02" + pid)
        self.received += 1
        try:
            change = parse_change_set(body[pos:])
        except MessageError:
            return
        if change.to_version > self.version:  # the core's rule, without the store write
            self.version = change.to_version
            self.applied += 1


# ---- the worker process: one fleet on one asyncio loop ---------------------------

def worker(argv: list[str]) -> int:
    """``--fleet-lite PORT N SCOPED(0/1) MODE``; commands on stdin, JSON answers."""
    port, count, scoped, mode = int(argv[0]), int(argv[1]), argv[2] == "1", argv[3]
    return asyncio.run(_worker(port, count, scoped, mode))


def _topic(index: int, scoped: bool) -> str:
    scope = f"merchant:M-{index // TERMINALS_PER_MERCHANT:04d}" if scoped else "club"
    return scope_changes_topic(CLUB, scope)


async def _worker(port: int, count: int, scoped: bool, mode: str) -> int:
    terms = [LiteTerminal(i, _topic(i, scoped)) for i in range(count)]
    rng = random.Random(20)

    async def keep(term: LiteTerminal) -> None:
        attempt = 0
        online = asyncio.Event()
        while True:
            try:
                online = asyncio.Event()
                await term.session(port, online)
            except (OSError, asyncio.IncompleteReadError, ConnectionError):
                pass
            if online.is_set():
                attempt = 0  # as the agent's session: a connection that was up resets
            if mode == "jitter":
                delay = full_jitter_delay(attempt, RECONNECT_BASE_S, RECONNECT_CAP_S, rng)
            else:
                delay = backoff_ceiling(attempt, RECONNECT_BASE_S, RECONNECT_CAP_S)
            attempt += 1
            await asyncio.sleep(delay)

    loop = asyncio.get_running_loop()
    tasks = []
    for i, term in enumerate(terms):
        tasks.append(asyncio.create_task(keep(term)))
        if i % 100 == 99:
            await asyncio.sleep(0.05)  # the first connect of a big fleet, not a storm
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)

    def say(what: str, data: dict[str, Any]) -> None:
        print(what, json.dumps(data), flush=True)

    deadline = time.monotonic() + 120
    while sum(1 for t in terms if t.connects) < count and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.5)  # the subscriptions are in
    say("online", {"connected": sum(1 for t in terms if t.connects)})
    while True:
        line = (await stdin.readline()).decode().strip()
        if line.startswith("expect"):
            expected = int(line.split()[1])
            cpu0 = time.process_time()
            deadline = time.monotonic() + 300
            while sum(t.received for t in terms) < expected and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            say("received", {"cpu_s": time.process_time() - cpu0,
                             "received": [t.received for t in terms],
                             "applied": sum(t.applied for t in terms)})
        elif line == "storm":
            for t in terms:
                t.connects.clear()
            say("armed", {})
            deadline = time.monotonic() + 600
            while sum(1 for t in terms if t.connects) < count and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            say("back", {"connects": sorted(t.connects[0] for t in terms if t.connects)})
        else:
            break
    for task in tasks:
        task.cancel()
    return 0


# ---- a few real agents: the real link, store and core --------------------------

def real_worker(argv: list[str]) -> int:
    """``--fleet-real PORT N SCOPED(0/1)``: N real ClubLinks with their stores in one
    process; ``expect K`` waits for K member change sets applied in all, answering the
    process's CPU for it (its idle rate measured first and taken off)."""
    import logging
    import threading

    from agent.config import load_config
    from agent.offline_queue import Store
    from agent.rules import BundleState
    from agent.sync import ClubLink, LinkTuning
    from provisioning.tomlwrite import dump_toml

    logging.basicConfig(level=logging.ERROR)
    port, count, scoped = int(argv[0]), int(argv[1]), argv[2] == "1"
    applied = 0
    online = 0
    lock = threading.Lock()

    def on_event(event: dict[str, Any]) -> None:
        nonlocal applied, online
        with lock:
            if event.get("type") == "members":
                applied += 1
            elif event.get("type") == "link" and event.get("online"):
                online += 1

    tuning = LinkTuning(keepalive_s=60, status_interval_s=3600.0, status_min_gap_s=5.0)
    links = []
    with tempfile.TemporaryDirectory(prefix="bench-fleet-real-") as tmp:
        for i in range(count):
            tid, merchant = f"T-{i:05d}", f"M-{i // TERMINALS_PER_MERCHANT:04d}"
            directory = Path(tmp) / tid
            directory.mkdir()
            club = {"broker_url": f"mqtt://127.0.0.1:{port}", "allow_plain": True}
            if scoped:
                club["member_scope"] = "merchant"
            path = directory / "agent.toml"
            path.write_text(dump_toml({
                "terminal": {"id": tid, "merchant_id": merchant, "club_id": CLUB,
                             "profile": "sim"},
                "paths": {"state_dir": str(directory), "socket": str(directory / "a.sock")},
                "club": club}))
            config = load_config(path)
            store = Store.open(config.db_path, tid, merchant)
            link = ClubLink(config, store, BundleState({}, club=CLUB, merchant=merchant),
                            on_event, tuning=tuning)
            link.start()
            links.append((link, store))
        deadline = time.monotonic() + 120
        while online < count and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)
        cpu0, wall0 = time.process_time(), time.monotonic()
        time.sleep(3.0)
        idle_rate = (time.process_time() - cpu0) / (time.monotonic() - wall0)
        print("online", json.dumps({"connected": online, "idle_cpu_per_s": idle_rate}),
              flush=True)
        for line in sys.stdin:
            if not line.startswith("expect"):
                break
            expected = int(line.split()[1])
            cpu0, wall0 = time.process_time(), time.monotonic()
            deadline = time.monotonic() + 300
            while applied < expected and time.monotonic() < deadline:
                time.sleep(0.02)
            wall = time.monotonic() - wall0
            cpu = time.process_time() - cpu0
            print("received", json.dumps({"cpu_s": max(0.0, cpu - idle_rate * wall),
                                          "raw_cpu_s": cpu, "wall_s": wall,
                                          "applied": applied}), flush=True)
        for link, store in links:
            link.stop(2.0)
            store.close()
    return 0


def real_fanout(broker: Any, count: int, scoped: bool, changes: int) -> dict[str, Any]:
    """``count`` real agents, ``changes`` member changes: the CPU a real agent spends."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    merchants = max(1, count // TERMINALS_PER_MERCHANT)
    proc = subprocess.Popen([sys.executable, "-m", "bench.sync", "--fleet-real",
                             str(broker.port), str(count), "1" if scoped else "0"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        online = json.loads(proc.stdout.readline().split(" ", 1)[1])
        club = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="club:acme")
        club.connect("127.0.0.1", broker.port)
        club.loop_start()
        proc.stdin.write(f"expect {changes * (TERMINALS_PER_MERCHANT if scoped else count)}\n")
        proc.stdin.flush()
        scope_version: dict[int, int] = {}
        infos = []
        for version in range(1, changes + 1):
            merchant = (version - 1) % merchants
            if scoped:
                start = scope_version.get(merchant, 0)
                scope_version[merchant] = version
                topic = scope_changes_topic(CLUB, f"merchant:M-{merchant:04d}")
            else:
                start, topic = version - 1, scope_changes_topic(CLUB, "club")
            change = {"from_version": start, "to_version": version,
                      "members": [_record(merchant, version)], "removed": []}
            infos.append(club.publish(topic, json.dumps(change).encode(), qos=1))
        for info in infos:
            info.wait_for_publish(60)
        got = json.loads(proc.stdout.readline().split(" ", 1)[1])
        club.loop_stop()
        club.disconnect()
        proc.stdin.write("quit\n")
        proc.stdin.flush()
        proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return {"terminals": count, "connected": online["connected"], "scoped": scoped,
            "changes": changes, "applied": got["applied"],
            "cpu_ms_per_terminal": got["cpu_s"] * 1000 / count,
            "cpu_ms_per_change_applied": got["cpu_s"] * 1000 / max(1, got["applied"]),
            "wall_s": got["wall_s"]}


# ---- the club side (this process) ------------------------------------------------

def _proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _record(i: int, version: int) -> dict[str, Any]:
    return {"member_id": f"m-{i:07d}", "version": version, "name": "Member", "status": "active",
            "tier": "silver", "groups": [], "identifiers": [f"nfc:{i:014X}"],
            "balances": {"points": 100 + version}, "stats": {"purchase_count": 3},
            "applied": {}, "scopes": [f"merchant:M-{i % 10_000:04d}"]}


class Fleet:
    """A worker process running ``count`` lite terminals."""

    def __init__(self, port: int, count: int, scoped: bool, mode: str = "jitter"):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.sync", "--fleet-lite", str(port), str(count),
             "1" if scoped else "0", mode], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True)

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def ask(self, command: str | None, expect: str) -> dict[str, Any]:
        assert self.proc.stdout is not None
        if command is not None:
            self.send(command)
        line = self.proc.stdout.readline()
        if not line.startswith(expect + " "):
            raise RuntimeError(f"fleet worker said {line!r}, expected {expect!r}")
        answer: dict[str, Any] = json.loads(line[len(expect) + 1:])
        return answer

    def close(self) -> None:
        try:
            self.send("quit")
        except OSError:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def fanout(broker: Any, count: int, scoped: bool) -> dict[str, Any]:
    """Member changes to a fleet of ``count``: per-terminal messages and CPU."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    merchants = max(1, count // TERMINALS_PER_MERCHANT)
    changes = max(10, merchants // 2)
    fleet = Fleet(broker.port, count, scoped)
    try:
        online = fleet.ask(None, "online")
        club = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="club:acme")
        club.max_inflight_messages_set(100)
        club.connect("127.0.0.1", broker.port)
        club.loop_start()
        rng = random.Random(7)
        scope_version: dict[int, int] = {}
        broker_cpu0 = _proc_cpu_s(broker.proc.pid)
        fleet.send(f"expect {changes * (TERMINALS_PER_MERCHANT if scoped else count)}")
        started = time.monotonic()
        infos = []
        for version in range(1, changes + 1):
            merchant = rng.randrange(merchants)
            record = _record(merchant, version)
            if scoped:
                start = scope_version.get(merchant, 0)
                scope_version[merchant] = version
                topic = scope_changes_topic(CLUB, f"merchant:M-{merchant:04d}")
            else:
                start, topic = version - 1, scope_changes_topic(CLUB, "club")
            change = {"from_version": start, "to_version": version, "members": [record],
                      "removed": []}
            infos.append(club.publish(topic, json.dumps(change).encode(), qos=1))
        for info in infos:
            info.wait_for_publish(60)
        got = fleet.ask(None, "received")
        seconds = time.monotonic() - started
        broker_cpu = _proc_cpu_s(broker.proc.pid) - broker_cpu0
        club.loop_stop()
        club.disconnect()
    finally:
        fleet.close()
    received = got["received"]
    return {"terminals": count, "connected": online["connected"], "merchants": merchants,
            "changes": changes, "scoped": scoped, "deliveries": sum(received),
            "msgs_per_terminal": sum(received) / count,
            "msgs_per_terminal_per_change": sum(received) / count / changes,
            "cpu_ms_per_terminal": got["cpu_s"] * 1000 / count,
            "cpu_us_per_delivery": got["cpu_s"] * 1e6 / max(1, sum(received)),
            "broker_cpu_s": broker_cpu, "seconds": seconds}


def storm(broker: Any, count: int, mode: str, down_s: float) -> dict[str, Any]:
    """Kill the broker under ``count`` terminals; how they come back."""
    fleet = Fleet(broker.port, count, True, mode)
    try:
        fleet.ask(None, "online")
        fleet.ask("storm", "armed")
        broker.stop(kill=True)
        time.sleep(down_s)
        restart = time.time()
        broker.start()
        back = fleet.ask(None, "back")
    finally:
        fleet.close()
    connects = [c - restart for c in back["connects"]]
    return {"terminals": count, "mode": mode, "down_s": down_s, "back": len(connects),
            "peak_per_s": peak(connects, 1.0), "peak_per_100ms": peak(connects, 0.1),
            "all_back_s": max(connects) if connects else None}


def peak(times: list[float], window: float) -> int:
    """The most of ``times`` in any window of ``window`` seconds (sliding)."""
    times = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while times[lo] < t - window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def store_apply_cost(changes: int = 300) -> dict[str, float]:
    """What one change set costs a real agent's core and store (CPU and wall, per change):
    the lite terminals leave the SQLite write out, this puts it back."""
    from agent.offline_queue import Store

    with tempfile.TemporaryDirectory(prefix="bench-fleet-store-") as tmp:
        store = Store.open(Path(tmp) / "clubterm.db", "T-00000", "M-0000")
        try:
            payloads = [json.dumps({"from_version": v - 1, "to_version": v,
                                    "members": [_record(v, v)], "removed": []}).encode()
                        for v in range(1, changes + 1)]
            cpu0, wall0 = time.process_time(), time.perf_counter()
            for payload in payloads:
                change = parse_change_set(payload)
                store.members.apply_changes(change.raw)
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        finally:
            store.close()
    return {"cpu_ms": cpu * 1000 / changes, "wall_ms": wall * 1000 / changes}


def run(sizes: list[int], storm_sizes: list[int], down_s: float,
        out: Callable[[str], None] = print, scoped_sizes: tuple[int, ...] = (),
        real: int = 0) -> dict[str, Any]:
    from hw_sim.broker import MosquittoBroker

    results: dict[str, Any] = {"fanout": [], "storm": []}
    cost = store_apply_cost()
    results["store_apply"] = cost
    out(f"a real agent applying one change set (core + SQLite): {cost['cpu_ms']:.2f} ms CPU, "
        f"{cost['wall_ms']:.2f} ms wall")
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as tmp:
        broker = MosquittoBroker(Path(tmp))
        broker.start()
        try:
            runs = [(n, scoped) for n in sizes for scoped in (False, True)]
            runs += [(n, True) for n in scoped_sizes]  # club-wide there is beyond this box
            for count, scoped in runs:
                r = fanout(broker, count, scoped)
                results["fanout"].append(r)
                out(f"fan-out {count:>6} terminals {'scoped    ' if scoped else 'club-wide '}"
                    f"{r['changes']:>4} changes: {r['msgs_per_terminal']:8.2f} msgs/terminal "
                    f"({r['msgs_per_terminal_per_change']:.4f} per change), "
                    f"{r['cpu_ms_per_terminal']:7.3f} ms CPU/terminal, broker "
                    f"{r['broker_cpu_s']:6.2f} s CPU, {r['seconds']:6.1f} s "
                    f"({r['connected']} connected)")
            if real:
                results["real"] = []
                for scoped in (False, True):
                    r = real_fanout(broker, real, scoped, changes=max(20, real * 2))
                    results["real"].append(r)
                    out(f"real    {real:>6} agents    {'scoped    ' if scoped else 'club-wide '}"
                        f"{r['changes']:>4} changes: {r['applied']} change sets applied, "
                        f"{r['cpu_ms_per_terminal']:7.2f} ms CPU/agent "
                        f"({r['cpu_ms_per_change_applied']:.2f} ms per change set applied), "
                        f"{r['wall_s']:.1f} s ({r['connected']} connected)")
                if len(results["real"]) == 2:
                    wide, narrow = results["real"]
                    out(f"ratio   {real:>6} real agents club-wide/scoped: CPU per agent "
                        f"{_ratio(wide, narrow, 'cpu_ms_per_terminal'):.1f}x")
            for count in storm_sizes:
                for mode in ("jitter", "no-jitter"):
                    r = storm(broker, count, mode, down_s)
                    results["storm"].append(r)
                    out(f"storm   {count:>6} terminals {mode:<10}: peak {r['peak_per_s']:>5}/s "
                        f"({r['peak_per_100ms']:>5} in 100 ms), all {r['back']} back after "
                        f"{r['all_back_s']:.1f} s")
        finally:
            broker.stop()
    by = {(r["terminals"], r["scoped"]): r for r in results["fanout"]}
    scoped_runs = sorted((r["terminals"], r) for r in results["fanout"] if r["scoped"])
    if len(scoped_runs) > 1:
        first, last = scoped_runs[0], scoped_runs[-1]
        out(f"scoped: CPU per terminal at {last[0]} terminals / at {first[0]}: "
            f"{_ratio(last[1], first[1], 'cpu_ms_per_terminal'):.2f}x (flat is 1x)")
    for count in sizes:
        wide, narrow = by[(count, False)], by[(count, True)]
        out(f"ratio   {count:>6} terminals club-wide/scoped: messages "
            f"{wide['msgs_per_terminal'] / max(narrow['msgs_per_terminal'], 1e-9):7.1f}x, "
            f"terminal CPU {_ratio(wide, narrow, 'cpu_ms_per_terminal'):6.1f}x, "
            f"broker CPU {_ratio(wide, narrow, 'broker_cpu_s', 0.01):6.1f}x"
            + (" (at least: the scoped run's broker CPU is under /proc's 10 ms tick)"
               if narrow["broker_cpu_s"] < 0.01 else ""))
    storms = {(r["terminals"], r["mode"]): r for r in results["storm"]}
    for count in storm_sizes:
        j, n = storms[(count, "jitter")], storms[(count, "no-jitter")]
        out(f"ratio   {count:>6} terminals peak connects/s without/with jitter: "
            f"{n['peak_per_s'] / max(j['peak_per_s'], 1):.1f}x")
    return results


def _ratio(a: dict[str, Any], b: dict[str, Any], key: str, floor: float = 1e-9) -> float:
    return float(a[key]) / max(float(b[key]), floor)
