"""Benchmarks of the agent as a service (``python -m bench.agent``).

1. Quote round trip over the local API (``sale.quote`` through the Unix socket,
   p50/p99) with a bundle of 1,000 rules and 100,000 cached members, against the
   baseline of the same quote computed in-process by ``agent.rules.quote``.
2. Virtual card tap → identification event: a vpcd card inserted into a private
   pcscd until the ``card`` event (with its member) reaches an API subscriber.
   Needs root (the private pcscd runs in its own mount namespace).
3. Start-up time: process start to READY=1 with 100,000 members (median of 5).
4. Idle resident memory with 100,000 members.
5. ``--chaos N``: the chaos run (tests/e2e/chaos.py) with N sales (10,000 for the
   long run); prints the counts.

Options: ``--members``, ``--rules``, ``--quotes``, ``--taps``, ``--json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def bench_quotes(files: Any, quotes: int, members: int) -> dict[str, Any]:
    """sale.quote over the socket vs agent.rules.quote in-process (same requests)."""
    from agent.localapi.client import SocketClient
    from agent.localapi.ports import rules_quote
    from agent.offline_queue import Store
    from agent.rules import BundleState, load_trusted_keys

    rng = random.Random(1)
    skus = [f"sku-{i:04d}" for i in range(1000)]
    requests = []
    for _ in range(quotes):
        lines = [{"sku": rng.choice(skus), "category": rng.choice(["coffee", "bakery", None]),
                  "qty": rng.randint(1, 3), "unit_price": rng.randint(100, 5000)}
                 for _ in range(rng.randint(1, 5))]
        requests.append({"lines": lines, "token": f"code:CLUB-{rng.randrange(members):07d}",
                         "redeem_points": rng.choice([None, "max", 100])})

    async def over_api() -> list[float]:
        client = SocketClient(files.socket)
        times = []
        for req in requests[:50]:  # warm-up
            await client.call("sale.quote", req)
        for req in requests:
            t0 = time.perf_counter()
            await client.call("sale.quote", req)
            times.append((time.perf_counter() - t0) * 1000)
        await client.close()
        return times

    api = asyncio.run(over_api())

    # Baseline: the rules engine alone, on the same member records and bundle.
    store = Store.open(files.db, readonly=True)
    state = BundleState(load_trusted_keys(files.trusted_keys), club="acme", merchant="M-7")
    bundle = state.restore(store.bundles.current_bundle())
    ctx = {"at": datetime.now(UTC), "offline": True, "redeemed_today": 0,
           "credit_used_today": 0, "pending_count": 0, "oldest_pending_age_s": None}
    core = []
    for req in requests:
        member = store.members.lookup(req["token"])
        assert member is not None
        member["balances"] = store.members.usable_balances(member["member_id"])
        request = {"lines": req["lines"], "token_kind": "code", "bin6": None,
                   "redeem_points": req["redeem_points"], "use_credit": []}
        t0 = time.perf_counter()
        rules_quote(bundle, request, member, ctx)
        core.append((time.perf_counter() - t0) * 1000)
    store.close()
    return {
        "quotes": quotes, "rules": len(bundle.rules), "members": members,
        "api_p50_ms": round(_pct(api, 0.50), 3), "api_p99_ms": round(_pct(api, 0.99), 3),
        "engine_p50_ms": round(_pct(core, 0.50), 3), "engine_p99_ms": round(_pct(core, 0.99), 3),
        "api_over_engine_p50": round(_pct(api, 0.50) / max(_pct(core, 0.50), 1e-9), 1),
    }


def bench_startup(files: Any, runs: int = 5) -> dict[str, Any]:
    """Process start to READY=1, and idle RSS, with the store as it is."""
    from tests.agent.daemon.support import AgentProcess, NotifyListener

    ready = []
    rss = float("nan")
    for i in range(runs):
        sock = files.root / f"notify-{i}.sock"
        notify = NotifyListener(sock)
        agent = AgentProcess(files, notify)
        try:
            notify.wait_for("READY=1", timeout=30)
            ready.append(notify.messages[0][0] - agent.started)
            if i == runs - 1:
                time.sleep(2.0)
                rss = _rss_mb(agent.proc.pid)
        finally:
            agent.stop()
            notify.close()
    return {"ready_median_s": round(statistics.median(ready), 3),
            "ready_max_s": round(max(ready), 3), "idle_rss_mb": round(rss, 1)}


def bench_taps(taps: int) -> dict[str, Any]:
    """vpcd card inserted → ``card`` event with the member at an API subscriber."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return {"skipped": "needs root for the private pcscd (unshare -m)"}
    from agent.localapi.client import SocketClient
    from hw_sim import cards
    from hw_sim.pcscd import PcscService, free_port_pair, pcscd_available
    from hw_sim.terminal import seed_store, write_config
    from tests.agent.daemon.support import AgentProcess, NotifyListener
    from tests.e2e.terminal import PCSC_ONLY

    if not pcscd_available():
        return {"skipped": "pcscd or vpcd is not installed"}
    root = Path(tempfile.mkdtemp(prefix="ctbt", dir="/tmp"))
    pcsc = PcscService(root=root / "pcscd", port=free_port_pair())
    pcsc.write_conf()
    pcsc.start()
    files = write_config(root / "t", profile_text=PCSC_ONLY)
    seed_store(files)
    notify = NotifyListener(root / "notify.sock")
    agent = AgentProcess(files, notify, env={"PCSCLITE_CSOCK_NAME": str(pcsc.socket)})
    try:
        notify.wait_for("READY=1", timeout=30)

        async def run() -> list[float]:
            client = SocketClient(files.socket)
            await client.call("events.subscribe")
            events = client.events().__aiter__()
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:  # wait for the reader to be ready
                status = await client.call("agent.status")
                if any(r["state"] == "ready" for r in status["readers"]):
                    break
                await asyncio.sleep(0.1)
            times = []
            for _ in range(taps):
                t0 = time.perf_counter()
                session = await asyncio.to_thread(pcsc.insert, cards.visa_contactless())
                while True:
                    ev = await asyncio.wait_for(events.__anext__(), 20)
                    if ev.get("type") == "card":
                        break
                times.append((time.perf_counter() - t0) * 1000)
                assert ev["member"] is not None
                await asyncio.to_thread(session.remove)
                await asyncio.sleep(1.7)  # past the debounce window
            await client.close()
            return times

        times = asyncio.run(run())
    finally:
        agent.stop()
        notify.close()
        pcsc.stop()
        shutil.rmtree(root, ignore_errors=True)
    return {"taps": taps, "tap_to_event_p50_ms": round(_pct(times, 0.5), 1),
            "tap_to_event_max_ms": round(max(times), 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.agent", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--quotes", type=int, default=2000)
    parser.add_argument("--taps", type=int, default=10)
    parser.add_argument("--chaos", type=int, default=0, metavar="SALES",
                        help="run only the chaos run with this many sales")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

    if args.chaos:
        from tests.e2e.chaos import run_chaos

        report = run_chaos(args.chaos, progress=not args.json)
        print(json.dumps({"chaos": report.summary()}, indent=None if args.json else 2))
        return 0

    from hw_sim.terminal import seed_store, write_config
    from tests.agent.daemon.support import AgentProcess, NotifyListener

    root = Path(tempfile.mkdtemp(prefix="ctbench", dir="/tmp"))
    results: dict[str, Any] = {}
    try:
        t0 = time.monotonic()
        files = write_config(root)
        # The demo bundle has 5 rules; add narrow SKU rules up to --rules.
        seed_store(files, members=args.members, extra_rules=max(0, args.rules - 5))
        results["setup_s"] = round(time.monotonic() - t0, 1)
        results["startup"] = bench_startup(files)
        notify = NotifyListener(root / "notify.sock")
        agent = AgentProcess(files, notify)
        try:
            notify.wait_for("READY=1", timeout=30)
            results["quote"] = bench_quotes(files, args.quotes, args.members)
        finally:
            agent.stop()
            notify.close()
        results["tap"] = bench_taps(args.taps)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if args.json:
        print(json.dumps(results))
    else:
        q, s, t = results["quote"], results["startup"], results["tap"]
        print(f"members {q['members']}, rules {q['rules']} (setup {results['setup_s']} s)")
        print(f"quote over the API   p50 {q['api_p50_ms']} ms   p99 {q['api_p99_ms']} ms   "
              f"({q['quotes']} quotes)")
        print(f"  engine alone       p50 {q['engine_p50_ms']} ms   p99 {q['engine_p99_ms']} ms   "
              f"(API/engine p50 ×{q['api_over_engine_p50']})")
        print(f"start to READY=1     median {s['ready_median_s']} s   max {s['ready_max_s']} s")
        print(f"idle memory (RSS)    {s['idle_rss_mb']} MB")
        if "skipped" in t:
            print(f"tap to event         skipped: {t['skipped']}")
        else:
            print(f"tap to event         p50 {t['tap_to_event_p50_ms']} ms   "
                  f"max {t['tap_to_event_max_ms']} ms   ({t['taps']} taps)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
