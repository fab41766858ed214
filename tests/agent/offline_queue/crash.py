"""Kill -9 a process appending in a loop, many times; then check nothing was lost.

``python -m tests.agent.offline_queue.crash child DB`` appends sales (and now
and then acks older ones) forever, printing ``seq id`` after each append has
returned. :func:`crash_loop` starts it, SIGKILLs it at a random moment (during
start-up and migration too), and repeats; :func:`verify` then checks the file.
Used by the test (short) and by ``python -m bench.store --crash N`` (long).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


@dataclass
class CrashReport:
    kills: int
    confirmed: dict[int, str]  # seq -> id of appends that returned
    last_seq: int
    integrity: list[str]
    seconds: float


def child(db: str) -> None:
    from datetime import UTC, datetime

    from agent.offline_queue import Store
    from tests.agent.offline_queue.helpers import sale_body

    store = Store.open(db, "T-CRASH", "M-7")
    if store.members.member("m-1") is None and store.members.members_version() == 0:
        from tests.agent.offline_queue.helpers import member_record

        store.members.apply_changes({"from_version": 0, "to_version": 1,
                             "members": [member_record()], "removed": []})
    n = 0
    while True:
        e = store.outbox.append("sale", sale_body(redeemed_points=1, redeemed_value=1, earned=(3,)),
                         at=datetime.now(UTC), staff_id="s-1", offline=True)
        sys.stdout.write(f"{e.seq} {e.id}\n")
        sys.stdout.flush()
        n += 1
        if n % 7 == 0:
            batch = store.outbox.next_batch(max_events=5)
            store.outbox.mark_sent([b["id"] for b in batch])
            store.outbox.apply_ack([b["id"] for b in batch[:3]], [], None)


def crash_loop(db: Path, kills: int, *, max_delay: float = 0.6,
               seed: int | None = None) -> CrashReport:
    rng = random.Random(seed)
    confirmed: dict[int, str] = {}
    started = time.monotonic()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for _ in range(kills):
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.agent.offline_queue.crash", "child", str(db)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, env=env)
        lines: list[str] = []
        assert proc.stdout is not None

        def read(stream=proc.stdout, out=lines) -> None:  # type: ignore[no-untyped-def]
            for raw in stream:
                out.append(raw.decode())

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        time.sleep(rng.uniform(0.0, max_delay) + (0.3 if rng.random() < 0.7 else 0.0))
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise AssertionError(f"the appending child died by itself: {err[-2000:]}")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        reader.join(timeout=10)
        if proc.stderr is not None:
            proc.stderr.close()
        for line in lines:
            if line.endswith("\n"):  # a line cut by the kill was not confirmed
                seq, event_id = line.split()
                assert int(seq) not in confirmed, f"seq {seq} handed out twice"
                confirmed[int(seq)] = event_id
    from agent.offline_queue import Store

    store = Store.open(db, "T-CRASH", "M-7")
    try:
        integrity = store.integrity_check()
        stored = {e.seq: e.id for e in store.outbox.iter_events()}
        last = store.outbox.last_seq()
        missing = {s: i for s, i in confirmed.items() if stored.get(s) != i}
        assert not missing, f"appends that returned are gone: {sorted(missing)[:10]}"
        assert sorted(stored) == list(range(1, last + 1)), "seq gap"
        # The balance projection matches the events that are there.
        points = sum(e.event["points_earned"][0]["points"] - e.event["redeemed_points"]
                     for e in store.outbox.iter_events() if e.state != "rejected")
        assert store.members.usable_balances("m-1")["points"] == 1000 + points
    finally:
        store.close()
    return CrashReport(kills=kills, confirmed=confirmed, last_seq=last, integrity=integrity,
                       seconds=time.monotonic() - started)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "child":
        child(sys.argv[2])
