"""``python -m bench.readers``: time from virtual card insert to the reader event.

For each virtual card kind of ``hw_sim.cards``, inserts the card ``--taps`` times
(200 by default) into an isolated pcscd's vpcd reader, with the real pyscard
driver watching, and reports the median and p99 of the time from the insert
(the vpcd connection) to the CardPresented / ReadFailed event, and the APDUs
exchanged. Each insert waits a random 0-400 ms first, so taps do not line up
with pcscd's 400 ms card-presence polling (real taps do not either).

Also: the protocol alone (same cards wired directly, no pcscd) per read, and
the serial framer and keyboard decoder throughput. Needs root (or
CAP_SYS_ADMIN) for the isolated pcscd; ``--no-pcscd`` skips that part.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def bench_pcscd(taps: int, kinds: list[str], seed: int) -> None:
    from hw_sim.cards import CARDS
    from hw_sim.pcscd import PcscService, free_port_pair, pcscd_available

    if not pcscd_available():
        print("pcscd/vpcd/unshare not available: skipping the PC/SC part")
        return
    root = Path(tempfile.mkdtemp(prefix="bench-pcscd-"))
    service = PcscService(root=root, port=free_port_pair())
    service.write_conf()
    service.start()
    os.environ["PCSCLITE_CSOCK_NAME"] = str(service.socket)
    from agent.drivers.events import CardPresented, ReaderEvent, ReaderState
    from agent.drivers.pcsc import PcscReader

    events: list[tuple[float, ReaderEvent]] = []
    cond = threading.Condition()

    def emit(event: ReaderEvent) -> None:
        with cond:
            events.append((time.monotonic(), event))
            cond.notify_all()

    reader = PcscReader("chip", "Virtual PCD 00 00", bytes(32))
    reader.start(emit)
    rng = random.Random(seed)
    try:
        with cond:
            cond.wait_for(lambda: any(isinstance(e, ReaderState) and e.detail.startswith(
                "Virtual PCD") for _, e in events), timeout=15)
        print(f"PC/SC through pcscd {service.log_path.parent.name} + vpcd, {taps} taps per card")
        print(f"{'card':18} {'result':14} {'median ms':>10} {'p99 ms':>8} {'max ms':>8} "
              f"{'APDUs':>6}")
        for name in kinds:
            info = CARDS[name]
            times: list[float] = []
            apdus = 0
            results: dict[str, int] = {}
            for _ in range(taps):
                time.sleep(rng.uniform(0, 0.4))
                with cond:
                    since = len(events)
                t0 = time.monotonic()
                session = service.insert(info.make())  # type: ignore[arg-type]
                with cond:
                    ok = cond.wait_for(lambda s=since: any(
                        not isinstance(e, ReaderState) for _, e in events[s:]), timeout=10)
                    got = [(t, e) for t, e in events[since:] if not isinstance(e, ReaderState)]
                session.remove()
                service.wait_card_state(present=False)
                if not ok:
                    results["timeout"] = results.get("timeout", 0) + 1
                    continue
                t, event = got[0]
                times.append(t - t0)
                kind = "token " + event.token_kind if isinstance(event, CardPresented) \
                    else "read again"
                results[kind] = results.get(kind, 0) + 1
                if isinstance(event, CardPresented):
                    apdus = event.apdus
                else:
                    apdus = session.apdus
            result = ", ".join(f"{k}" + (f" x{v}" if v != taps else "") for k, v in results.items())
            print(f"{name:18} {result:14} {statistics.median(times) * 1000:10.0f} "
                  f"{_pct(times, 0.99) * 1000:8.0f} {max(times) * 1000:8.0f} {apdus:6d}")
            sys.stdout.flush()
    finally:
        reader.stop()
        service.stop()
        shutil.rmtree(root, ignore_errors=True)


def bench_protocol(reads: int) -> None:
    from agent.drivers import bankcard
    from agent.drivers.pcsc import read_presented_card
    from hw_sim.cards import CARDS, DirectTransport

    terminal = bankcard.TerminalData(today=date.today())
    print(f"\nProtocol only (virtual card wired directly, no pcscd), {reads} reads per card")
    print(f"{'card':18} {'us per read':>12} {'APDUs':>6}")
    for name, info in CARDS.items():
        t0 = time.perf_counter()
        apdus = 0
        for _ in range(reads):
            transport = DirectTransport(info.make())  # type: ignore[arg-type]
            event = read_presented_card(transport, reader="bench", pan_key=bytes(32),
                                        terminal=terminal)
            apdus = getattr(event, "apdus", len(transport.log))
        per = (time.perf_counter() - t0) / reads * 1e6
        print(f"{name:18} {per:12.0f} {apdus:6d}")


def bench_decoders(n: int) -> None:
    from agent.drivers import keymaps
    from agent.drivers.evdev import ScanDecoder
    from agent.drivers.serial import SwipeFramer
    from hw_sim import keys
    from hw_sim.serial_msr import track_data

    text = track_data("4111111111111111")
    data = (b"\x00\xff" + text.encode() + b"\r") * n
    t0 = time.perf_counter()
    framer = SwipeFramer()
    frames = []
    for i in range(0, len(data), 16):
        frames += framer.feed(data[i:i + 16])
    dt = time.perf_counter() - t0
    assert len(frames) == n
    print(f"\nSerial framer: {n / dt:,.0f} swipes/s "
          f"({len(data) / dt / 1e6:.1f} MB/s, 16-byte chunks)")
    events = keys.type_text(text)
    decoder = ScanDecoder(keymaps.get_keymap("us"))
    t0 = time.perf_counter()
    scans = 0
    for _ in range(n):
        for e in events:
            scans += len(decoder.feed(e))
    dt = time.perf_counter() - t0
    assert scans == n
    print(f"Wedge decoder: {n / dt:,.0f} swipes/s ({n * len(events) / dt / 1e6:.2f} M events/s)")


def main(argv: list[str] | None = None) -> int:
    from hw_sim.cards import CARDS

    parser = argparse.ArgumentParser(prog="python -m bench.readers", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--taps", type=int, default=200, help="taps per card kind (200)")
    parser.add_argument("--cards", default=",".join(CARDS), help="comma-separated card kinds")
    parser.add_argument("--no-pcscd", action="store_true", help="skip the pcscd part")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if not args.no_pcscd:
        bench_pcscd(args.taps, args.cards.split(","), args.seed)
    bench_protocol(2000)
    bench_decoders(5000)
    return 0


if __name__ == "__main__":
    sys.exit(main())
