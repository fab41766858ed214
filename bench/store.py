"""Benchmark of the offline store (issue 5): ``python -m bench.store``.

Figures printed:
- durable appends per second through ``Store.append`` and, in the same run, the
  same rows inserted with the plain ``sqlite3`` module under the same pragmas
  (WAL, synchronous=FULL, one transaction per event): the ratio is the figure
  (goal >= 0.7);
- import of a snapshot of N members (default 1,000,000) streamed from an NDJSON
  file, run in a subprocess: time and peak memory (ru_maxrss; goal < 200 MB);
- member lookup by token in that cache: p50/p99 (goal p99 < 1 ms);
- balance projection with 5,000 pending events of one member: p50/p99 (goal < 2 ms);
- bytes written per sale (``/proc/self/io``: ``wchar``, what SQLite hands the
  kernel; ``write_bytes``, the page-cache bytes dirtied, 0 on tmpfs) by
  ``Store.append`` and by the plain ``sqlite3`` baseline above, in the same run:
  the ratio is the figure (issue 13);
- a terminal's life (issue 13): ``--sales N`` sales (default 1,000,000) at
  ``--per-day`` a day on a simulated clock, the club acking every 50 and sending
  the member records that reflect them, the daemon's pruning every simulated
  hour (``[store] keep_days`` = ``--keep-days``): database size, events held
  and bytes written per sale (everything: sale, ack, member update, pruning)
  every tenth of the way, and the longest prune batch. Both must level off;
- promotion counts (issue 21): ``--promo-sales N`` sales (default 100,000) of 1,000
  members, ``--promo-share`` of them (default 0.1) using a rule, a tenth of those
  a single-use code and a coupon, and a refund every 50th sale: p50/p99 of
  ``Outbox.promotion_counts`` (schema 4's ``sale_promotions`` index) and, on the
  same file in the same run, of the schema-3 definition that read every sale
  body through ``LIKE`` (``promotions.full_scan_counts``); the counts are
  checked equal;
- with ``--crash N``: the kill -9 loop of the tests, N times.

Options: ``--members N``, ``--appends N``, ``--sales N``, ``--per-day N``,
``--keep-days N``, ``--promo-sales N``, ``--promo-share F``, ``--crash N``,
``--only PART`` (``appends``, ``members``, ``sales``, ``promotions``;
repeatable), ``--fast`` (small counts, for tests), ``--dir PATH`` (where the
files go; default a temp dir on /tmp, i.e. the same disk as the
tests; fsync dominates the time of a long ``--sales`` run: on tmpfs,
``--dir /dev/shm``, it is CPU-bound and sizes and ``wchar`` are the same).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

T = "T-BENCH"
AT = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def _sale(member: str, i: int) -> dict[str, Any]:
    return {
        "member_id": member, "identified_by": "nfc:04A1B2C3", "lines": [
            {"sku": "espresso", "category": "coffee", "qty": 2, "unit_price": 250},
            {"sku": "cake", "category": "bakery", "qty": 1, "unit_price": 4550}],
        "gross": 5050, "discounts": [{"rule": "gold10", "amount": 505},
                                     {"rule": "coffee-2", "amount": 200}],
        "redeemed_points": 1000 if i % 3 == 0 else 0,
        "redeemed_value": 1000 if i % 3 == 0 else 0,
        "credits_used": [{"kind": "credit.club", "amount": 100}] if i % 5 == 0 else [],
        "payable": 3345, "points_earned": [{"rule": "base-points", "points": 33},
                                           {"rule": "tuesday-x2", "points": 33}],
        "credits_earned": [{"rule": "cashback", "kind": "credit.club", "amount": 66,
                            "expires": "2027-02-22"}],
        "lottery_entries": 0, "rules_version": 42, "payment": "card",
    }


def _record(i: int) -> dict[str, Any]:
    return {
        "member_id": f"m-{i}", "version": i, "name": f"Member {i}", "status": "active",
        "tier": ("bronze", "silver", "gold")[i % 3], "groups": ["vip"] if i % 10 == 0 else [],
        "birthday": "1990-03-21", "joined": "2021-01-05",
        "identifiers": [f"pan:{i:032x}", f"nfc:{i:014X}", f"tel:+98912{i:07d}"],
        "balances": {"points": i % 5000, "credit.club": i % 70000},
        "stats": {"purchase_count": i % 90, "last_purchase": "2026-11-20", "spend_30d": i % 10**6},
        "applied": {T: 0, "T-0002": 77},
    }


def _pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def _io() -> tuple[int, int]:
    """(wchar, write_bytes) of this process so far; zeros where /proc is missing."""
    try:
        fields = dict(line.split(": ") for line in
                      Path("/proc/self/io").read_text().splitlines())
    except OSError:
        return 0, 0
    return int(fields["wchar"]), int(fields["write_bytes"])


def _db_bytes(path: Path) -> int:
    """The database and its WAL, as they take space on disk."""
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())


# ---------------------------------------------------------------------- appends

def bench_appends(folder: Path, count: int, block: int = 20) -> dict[str, float]:
    """Store.append vs plain sqlite3, events/s.

    The two run in alternating blocks of ``block`` events on the same disk, so a
    burst of load from elsewhere on the machine hits both alike.
    """
    from agent.offline_queue import Store
    from agent.offline_queue import events as ev
    from agent.offline_queue.uuid7 import uuid7_str

    store = Store.open(folder / "append-store.db", T, "M-7")
    # The baseline: the same schema (made by the store), the same pragmas, one
    # transaction per event, the same rows, everything encoded beforehand.
    rpath = folder / "append-raw.db"
    Store.open(rpath, T, "M-7").close()
    conn = sqlite3.connect(rpath, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA temp_store=MEMORY")
    conn.execute(f"PRAGMA journal_size_limit={32 * 2**20}")
    bodies = [_sale("m-1", i) for i in range(count)]
    rows = []
    for i, body in enumerate(bodies):
        eid = uuid7_str()
        wire = ev.wire_event(event_id=eid, seq=i + 1, type_="sale", at=ev.format_at(AT),
                             merchant_id="M-7", terminal_id=T, staff_id="s-1",
                             offline=True, body=body)
        data = ev.encode_json(wire).decode()
        effect = ev.sale_effect(body)
        deltas = [(k, v) for k, v in [*effect.balance.items(), ("stats.purchases", 1),
                                      ("stats.spend", effect.spend)] if v]
        rows.append((eid, data, effect, deltas))

    def raw_append(eid: str, data: str, effect: Any, deltas: list[tuple[str, int]]) -> None:
        conn.execute("BEGIN IMMEDIATE")
        seq = int(conn.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 "
                               "WHERE key = 'last_seq' RETURNING value").fetchone()[0])
        conn.execute(
            "INSERT INTO events (seq, id, type, at, at_us, member_id, ref_id, recorded_by, "
            "state, recorded_at, state_at, redeemed_value, credit_used, purchases, spend, "
            "size, body) VALUES (?, ?, 'sale', ?, ?, ?, NULL, 's-1', 'pending', ?, ?, ?, ?, "
            "1, ?, ?, ?)",
            (seq, eid, "2026-11-24T10:00:00.000+00:00", 0, "m-1", "x", "x",
             effect.redeemed_value, effect.credit_used, effect.spend, len(data), data))
        conn.executemany(
            "INSERT INTO delta_totals (member_id, kind, total) VALUES (?, ?, ?) "
            "ON CONFLICT (member_id, kind) DO UPDATE SET total = total + excluded.total",
            [("m-1", k, v) for k, v in deltas])
        conn.executemany(
            "INSERT INTO event_deltas (member_id, kind, seq, amount, running) VALUES "
            "(?1, ?2, ?3, ?4, (SELECT total FROM delta_totals WHERE member_id = ?1 "
            "AND kind = ?2))", [("m-1", k, seq, v) for k, v in deltas])
        conn.execute("COMMIT")

    ours = theirs = 0.0
    pair_ratios: list[float] = []
    # Bytes each side hands the kernel (wchar) and dirties (write_bytes); the
    # blocks alternate in this one thread, so each delta is one side's own.
    io_ours = [0, 0]
    io_theirs = [0, 0]
    for start in range(0, count, block):
        b0 = _io()
        t0 = time.perf_counter()
        for body in bodies[start:start + block]:
            store.outbox.append("sale", body, at=AT, staff_id="s-1", offline=True)
        t1 = time.perf_counter()
        b1 = _io()
        for row in rows[start:start + block]:
            raw_append(*row)
        t2 = time.perf_counter()
        b2 = _io()
        ours += t1 - t0
        theirs += t2 - t1
        pair_ratios.append((t2 - t1) / (t1 - t0))
        for i in (0, 1):
            io_ours[i] += b1[i] - b0[i]
            io_theirs[i] += b2[i] - b1[i]
    store.close()
    conn.close()
    o, w = count / ours, count / theirs
    pair_ratios.sort()
    return {"store_per_s": o, "sqlite3_per_s": w, "ratio": o / w,
            "block_ratio_median": pair_ratios[len(pair_ratios) // 2],
            "store_wchar_per_sale": io_ours[0] / count,
            "sqlite3_wchar_per_sale": io_theirs[0] / count,
            "store_dirtied_per_sale": io_ours[1] / count,
            "sqlite3_dirtied_per_sale": io_theirs[1] / count,
            "bytes_ratio": io_ours[0] / io_theirs[0] if io_theirs[0] else float("nan")}


# ---------------------------------------------------------------------- snapshot

def write_snapshot(path: Path, members: int) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for i in range(1, members + 1):
            fh.write(json.dumps(_record(i), separators=(",", ":")) + "\n")


def import_child(db: str, snapshot: str, version: int) -> None:
    """Run in a subprocess so ru_maxrss is the import's own peak."""
    from agent.offline_queue import Store

    store = Store.open(db, T, "M-7")
    start = time.perf_counter()
    with open(snapshot, "rb") as fh:
        count = store.members.import_snapshot(fh, version, True)
    seconds = time.perf_counter() - start
    store.close()
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"count": count, "seconds": seconds, "maxrss_mb": rss_kb / 1024}))


def bench_import(folder: Path, members: int) -> tuple[Path, dict[str, float]]:
    snapshot = folder / "members.ndjson"
    start = time.perf_counter()
    write_snapshot(snapshot, members)
    gen_s = time.perf_counter() - start
    db = folder / "members.db"
    out = subprocess.run(
        [sys.executable, "-m", "bench.store", "--import-child", str(db), str(snapshot),
         str(members)], check=True, capture_output=True, text=True,
        cwd=Path(__file__).resolve().parents[1])
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["snapshot_mb"] = snapshot.stat().st_size / 2**20
    result["generate_s"] = gen_s
    snapshot.unlink()
    return db, result


# ---------------------------------------------------------------------- reads

def bench_lookup(db: Path, members: int, samples: int = 20000) -> dict[str, float]:
    from agent.offline_queue import Store

    store = Store.open(db, T, "M-7")
    rng = random.Random(5)
    kinds = (lambda i: f"pan:{i:032x}", lambda i: f"nfc:{i:014X}",
             lambda i: f"tel:+98912{i:07d}")
    tokens = [rng.choice(kinds)(rng.randint(1, members)) for _ in range(samples)]
    for t in tokens[:500]:  # warm the page cache a little, as a running agent would be
        store.members.lookup(t)
    times = []
    for t in tokens:
        start = time.perf_counter_ns()
        found = store.members.lookup(t)
        times.append((time.perf_counter_ns() - start) / 1e6)
        assert found is not None
    miss = []
    for i in range(2000):
        start = time.perf_counter_ns()
        assert store.members.lookup(f"nfc:FFFF{i:010X}") is None
        miss.append((time.perf_counter_ns() - start) / 1e6)
    store.close()
    return {"p50_ms": _pct(times, 0.5), "p99_ms": _pct(times, 0.99),
            "max_ms": max(times), "miss_p99_ms": _pct(miss, 0.99)}


def bench_projection(db: Path, pending: int = 5000, samples: int = 2000) -> dict[str, float]:
    from agent.offline_queue import Store
    from agent.offline_queue import events as ev

    store = Store.open(db, T, "M-7")
    member = "m-42"
    # Set-up only: record the pending events in one transaction (the durable
    # one-per-event path is measured above).
    with store.db.atomic():
        for i in range(pending):
            body = _sale(member, i)
            store.outbox.append_in_tx("sale", body, AT, ev.format_at(AT), "s-1", True)
    times, counters, views, stats = [], [], [], []
    day = AT.replace(hour=0)
    for _ in range(samples):
        start = time.perf_counter_ns()
        balances = store.members.usable_balances(member)
        times.append((time.perf_counter_ns() - start) / 1e6)
        start = time.perf_counter_ns()
        store.members.offline_counters(member, day, day + timedelta(days=1))
        counters.append((time.perf_counter_ns() - start) / 1e6)
    for _ in range(200):
        start = time.perf_counter_ns()
        store.members.member_view(member)
        views.append((time.perf_counter_ns() - start) / 1e6)
        start = time.perf_counter_ns()
        store.outbox.queue_stats()
        stats.append((time.perf_counter_ns() - start) / 1e6)
    expect_points = 42 % 5000 + sum(66 - (1000 if i % 3 == 0 else 0) for i in range(pending))
    assert balances["points"] == expect_points, (balances, expect_points)
    store.close()
    return {"p50_ms": _pct(times, 0.5), "p99_ms": _pct(times, 0.99),
            "counters_p50_ms": _pct(counters, 0.5), "counters_p99_ms": _pct(counters, 0.99),
            "member_view_p99_ms": _pct(views, 0.99),
            "queue_stats_p99_ms": _pct(stats, 0.99)}


# ---------------------------------------------------------------------- a terminal's life

class _SimClock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


def bench_sales(folder: Path, sales: int, per_day: int = 1000, keep_days: int = 35,
                members: int = 1000, ack_every: int = 50, prune_batch: int = 100,
                progress: Any = None) -> dict[str, Any]:
    """``sales`` durable sales through the whole cycle, pruning as the daemon does.

    The clock moves ``86400 / per_day`` s a sale. Every ``ack_every`` sales the
    club acks the waiting ones (all accepted) and sends the records of the members
    they touched with ``applied[T]`` at the acked seq; every simulated hour the
    store is pruned in calls of ``prune_batch`` with ``keep_days``. ``progress``
    is called with a row every tenth of the way.
    """
    from agent.offline_queue import Store

    db = folder / "life.db"
    clock = _SimClock(AT)
    store = Store.open(db, T, "M-7", clock=clock)
    store.members.import_snapshot((json.dumps(_record(i)) for i in range(members)), 1, True)
    version = store.members.members_version()
    step = timedelta(seconds=86400 / per_day)
    keep = timedelta(days=keep_days)
    per_hour = max(1, per_day // 24)
    touched: dict[str, int] = {}
    rows: list[dict[str, Any]] = []
    longest_prune = 0.0
    pruned = prune_calls = 0
    io0 = _io()
    io_mark, sales_mark = io0, 0
    started = time.perf_counter()

    def prune_now() -> None:
        nonlocal longest_prune, pruned, prune_calls
        while True:
            t0 = time.perf_counter()
            n = store.outbox.prune(keep=keep, batch=prune_batch, limit=prune_batch)
            longest_prune = max(longest_prune, time.perf_counter() - t0)
            pruned += n
            prune_calls += 1
            if n < prune_batch:
                return

    for i in range(1, sales + 1):
        clock.now += step
        member = None if i % 10 == 0 else f"m-{i % members}"
        e = store.outbox.append("sale", _sale(member, i) if member else {**_sale("x", i),
                                                                  "member_id": None,
                                                                  "identified_by": None},
                         at=clock.now, staff_id="s-1", offline=False)
        if member:
            touched[member] = e.seq
        if i % ack_every == 0:
            batch = store.outbox.next_batch_encoded(f"b-{i}", T, max_events=ack_every * 2)
            if batch is not None:
                store.outbox.apply_ack(batch.ids, [], applied_seq=batch.last_seq)
                records = []
                for m in sorted(touched):
                    n_ = int(m[2:])
                    rec = _record(n_)
                    version += 1
                    rec["version"] = version
                    rec["applied"] = {T: batch.last_seq}
                    records.append(rec)
                store.members.apply_changes({"from_version": version - len(records) if records
                                     else version, "to_version": version,
                                     "members": records, "removed": []})
                touched.clear()
        if i % per_hour == 0:
            prune_now()
        if progress is not None and (i % max(1, sales // 10) == 0 or i == sales):
            io_now = _io()
            row = {"sales": i, "days": i / per_day, "events": _count(store),
                   "db_mb": _db_bytes(db) / 2**20,
                   "wchar_per_sale": (io_now[0] - io_mark[0]) / max(1, i - sales_mark),
                   "per_s": i / (time.perf_counter() - started),
                   "longest_prune_ms": longest_prune * 1000}
            io_mark, sales_mark = io_now, i
            rows.append(row)
            progress(row)
    seconds = time.perf_counter() - started
    io1 = _io()
    freelist, pages = (store.db.execute_sql(f"PRAGMA {x}").fetchone()[0]
                       for x in ("freelist_count", "page_count"))
    result = {"sales": sales, "seconds": seconds, "events": _count(store),
              "db_mb": _db_bytes(db) / 2**20, "free_pages": freelist, "pages": pages,
              "wchar_per_sale": (io1[0] - io0[0]) / sales,
              "dirtied_per_sale": (io1[1] - io0[1]) / sales,
              "pruned": pruned, "prune_calls": prune_calls,
              "longest_prune_ms": longest_prune * 1000, "last_seq": store.outbox.last_seq(),
              "rows": rows}
    store.close()
    return result


def bench_promotions(folder: Path, sales: int, share: float = 0.1,
                     samples: int = 30) -> dict[str, float]:
    """``promotion_counts`` by the index (schema 4) and by the old full scan, on
    one file: p50/p99 in ms of each, and the ratio of the p50s."""
    from zoneinfo import ZoneInfo

    from agent.offline_queue import Store
    from agent.offline_queue import events as ev
    from agent.offline_queue.promotions import full_scan_counts

    store = Store.open(folder / "promo.db", T, "M-7")
    rng = random.Random(21)
    step = max(1, round(1 / share)) if share > 0 else 0
    ids: list[str] = []
    for start in range(0, sales, 5000):  # set-up only: a transaction per 5,000
        with store.db.atomic():
            for i in range(start, min(sales, start + 5000)):
                body = _sale(f"m-{i % 1000}", i)
                if step and i % step == 0:
                    body["uses"] = [{"rule": rng.choice(("bday", "welcome", "budget")),
                                     "amount": 250}]
                    if i % (10 * step) == 0:
                        body["codes_used"] = [{"rule": "vip", "code": f"VIP-{i}",
                                               "single_use": True}]
                        body["coupons_issued"] = [{"rule": "next", "code": f"NX-{i}",
                                                   "for_rule": "next10",
                                                   "expires": "2027-01-31"}]
                at = AT + timedelta(minutes=i)
                ids.append(store.outbox.append_in_tx("sale", body, at, ev.format_at(at),
                                                     "s-1", True).id)
                if i % 50 == 49:
                    store.outbox.append_in_tx("refund", {"sale_id": ids[-25], "reason": "r"},
                                              at, ev.format_at(at), "s-1", True)
    tz = ZoneInfo("Asia/Tehran")
    conn = store.db.connection()
    members = [f"m-{rng.randrange(1000)}" for _ in range(samples)]
    times: dict[str, list[float]] = {"index": [], "scan": []}
    for member in members:
        started = time.perf_counter_ns()
        indexed = store.outbox.promotion_counts(member, tz)
        times["index"].append((time.perf_counter_ns() - started) / 1e6)
        started = time.perf_counter_ns()
        scanned = full_scan_counts(conn, member, tz)
        times["scan"].append((time.perf_counter_ns() - started) / 1e6)
        if indexed != scanned:
            raise AssertionError(f"promotion_counts differ for {member}")
    promos = int(conn.execute("SELECT count(*) FROM sale_promotions").fetchone()[0])
    store.close()
    out = {f"{k}_{p}_ms": _pct(v, q) for k, v in times.items()
           for p, q in (("p50", 0.5), ("p99", 0.99))}
    out["speedup_p50"] = out["scan_p50_ms"] / out["index_p50_ms"]
    out["indexed_sales"] = promos
    return out


def _count(store: Any) -> int:
    return int(store.db.execute_sql("SELECT count(*) FROM events").fetchone()[0])


# ---------------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.store", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--appends", type=int, default=1000)
    parser.add_argument("--sales", type=int, default=1_000_000,
                        help="sales of the terminal's-life run (default 1,000,000)")
    parser.add_argument("--per-day", type=int, default=1000, help="sales a simulated day")
    parser.add_argument("--keep-days", type=int, default=35, help="[store] keep_days")
    parser.add_argument("--promo-sales", type=int, default=100_000,
                        help="sales of the promotion-counts run (default 100,000)")
    parser.add_argument("--promo-share", type=float, default=0.1,
                        help="share of those sales that use a rule (default 0.1)")
    parser.add_argument("--only", action="append",
                        choices=("appends", "members", "sales", "promotions"),
                        help="run only this part (repeatable)")
    parser.add_argument("--fast", action="store_true",
                        help="small counts, for tests: 200 appends, 5,000 members, "
                             "6,000 sales at 1,000 a day kept 2 days, 5,000 promotion sales")
    parser.add_argument("--crash", type=int, default=0, metavar="N",
                        help="also run the kill -9 loop N times")
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--import-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.import_child:
        db, snapshot, version = args.import_child
        import_child(db, snapshot, int(version))
        return 0

    if args.fast:
        args.appends, args.members, args.sales = 200, 5000, 6000
        args.per_day, args.keep_days, args.promo_sales = 1000, 2, 5000
    parts = set(args.only or ("appends", "members", "sales", "promotions"))
    with tempfile.TemporaryDirectory(prefix="bench-store-", dir=args.dir) as tmp:
        folder = Path(tmp)
        print(f"bench.store in {folder} (sqlite {sqlite3.sqlite_version}, "
              f"{os.cpu_count()} CPUs)", flush=True)
        if "appends" in parts:
            a = bench_appends(folder, args.appends)
            print(f"durable appends:   store {a['store_per_s']:.0f}/s, plain sqlite3 "
                  f"{a['sqlite3_per_s']:.0f}/s, ratio {a['ratio']:.2f} (median of the "
                  f"per-block ratios {a['block_ratio_median']:.2f}; goal >= 0.70)", flush=True)
            print(f"bytes per sale:    store {a['store_wchar_per_sale']:,.0f} B written "
                  f"({a['store_dirtied_per_sale']:,.0f} B of page cache dirtied), plain "
                  f"sqlite3 {a['sqlite3_wchar_per_sale']:,.0f} B "
                  f"({a['sqlite3_dirtied_per_sale']:,.0f} B), ratio {a['bytes_ratio']:.2f} "
                  f"(same rows, same pragmas, same run)", flush=True)
        if "sales" in parts:
            print(f"terminal's life:   {args.sales:,} sales, {args.per_day:,} a day, "
                  f"kept {args.keep_days} days, pruned hourly (simulated clock)", flush=True)

            def show(row: dict[str, Any]) -> None:
                print(f"  {row['sales']:>10,} sales (day {row['days']:,.0f}): "
                      f"{row['events']:>8,} events held, database {row['db_mb']:7.1f} MB, "
                      f"{row['wchar_per_sale']:>8,.0f} B written a sale, "
                      f"{row['per_s']:,.0f} sales/s, longest prune so far "
                      f"{row['longest_prune_ms']:.0f} ms", flush=True)

            life = bench_sales(folder, args.sales, args.per_day, args.keep_days,
                               progress=show)
            print(f"  after {life['sales']:,} sales: database {life['db_mb']:.1f} MB "
                  f"({life['free_pages']:,} of {life['pages']:,} pages free for reuse), "
                  f"{life['events']:,} events held, {life['pruned']:,} pruned in "
                  f"{life['prune_calls']:,} calls (longest {life['longest_prune_ms']:.0f} "
                  f"ms), {life['wchar_per_sale']:,.0f} B written a sale in all "
                  f"({life['dirtied_per_sale']:,.0f} B dirtied), last seq "
                  f"{life['last_seq']:,}, {life['seconds']:.0f} s", flush=True)
        if "promotions" in parts:
            pc = bench_promotions(folder, args.promo_sales, args.promo_share)
            print(f"promotion counts:  {args.promo_sales:,} sales ({pc['indexed_sales']:,.0f} "
                  f"with promotions, a refund every 50th): index p50 {pc['index_p50_ms']:.2f} "
                  f"ms p99 {pc['index_p99_ms']:.2f} ms; full scan (schema 3) p50 "
                  f"{pc['scan_p50_ms']:.1f} ms p99 {pc['scan_p99_ms']:.1f} ms; "
                  f"{pc['speedup_p50']:.0f}x at p50, same counts", flush=True)
        if "members" not in parts:
            return 0
        db, imp = bench_import(folder, args.members)
        print(f"snapshot import:   {imp['count']:,} members ({imp['snapshot_mb']:.0f} MB NDJSON)"
              f" in {imp['seconds']:.1f} s ({imp['count'] / imp['seconds']:.0f}/s), peak RSS "
              f"{imp['maxrss_mb']:.0f} MB (goal < 200 MB)", flush=True)
        lk = bench_lookup(db, args.members)
        print(f"member lookup:     p50 {lk['p50_ms']:.3f} ms, p99 {lk['p99_ms']:.3f} ms, "
              f"max {lk['max_ms']:.2f} ms, unknown-token p99 {lk['miss_p99_ms']:.3f} ms "
              f"with {args.members:,} members (goal p99 < 1 ms)", flush=True)
        pr = bench_projection(db)
        print(f"balance projection: p50 {pr['p50_ms']:.3f} ms, p99 {pr['p99_ms']:.3f} ms with "
              f"5,000 pending events of one member (goal < 2 ms); day counters p50 "
              f"{pr['counters_p50_ms']:.3f} ms p99 "
              f"{pr['counters_p99_ms']:.3f} ms, member_view p99 {pr['member_view_p99_ms']:.3f} "
              f"ms, queue_stats p99 {pr['queue_stats_p99_ms']:.3f} ms", flush=True)
        if args.crash:
            sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
            from tests.agent.offline_queue.crash import crash_loop

            report = crash_loop(folder / "crash.db", args.crash)
            print(f"crash loop:        {report.kills} kill -9, {len(report.confirmed):,} "
                  f"confirmed appends, last seq {report.last_seq}, integrity "
                  f"{report.integrity[0]}, no loss, no gap ({report.seconds:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
