"""Rules engine speed: `python -m bench.rules`.

Quote latency for a 30-line basket (median and p99) with bundles of 100, 1,000 and
10,000 rules of mixed kinds and conditions, and with an empty bundle in the same
run; the ratio 1,000-rule / empty; and the time to verify and load a signed
10,000-rule bundle. Goals (issue 4): p99 < 1 ms at 1,000 rules, < 5 ms at 10,000,
ratio ≤ 5, load < 300 ms; issue 21: p99 < 150 µs at 1,000 rules with its kinds,
limits, codes and segments in the bundle.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import random
import statistics
import time
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.rules import (
    Line,
    MemberView,
    QuoteContext,
    QuoteRequest,
    accept_envelope,
    parse_bundle,
    quote,
    sign_payload,
)

SKUS = [f"sku-{i:05d}" for i in range(5000)]
CATEGORIES = [f"cat-{i:02d}" for i in range(60)]
BINS = [f"{400000 + i * 37:06d}" for i in range(200)]
TIERS = ["bronze", "silver", "gold"]
GROUPS = ["vip", "staff", "students", "seniors", "partners"]
DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
AT = dt.datetime(2026, 11, 24, 10, 0, tzinfo=dt.UTC)  # a Tuesday, 11:00 in Berlin


def category_of(sku: str) -> str:
    return CATEGORIES[int(sku[4:]) % len(CATEGORIES)]


def _effect(rng: random.Random, kind: str) -> dict[str, Any]:
    if kind == "discount":
        r = rng.random()
        if r < 0.1:
            return {"amount": rng.choice([20, 50]), "per_unit": True}
        if r < 0.2:
            return {"buy": rng.choice([1, 2]), "get": 1}
        if r < 0.25:
            return {"cheapest": 1, "percent_bps": 5000}
        if rng.random() < 0.5:
            return {"percent_bps": rng.choice([500, 1000, 1500, 2000]),
                    "max_amount": rng.choice([500, 1000, 5000])}
        return {"amount": rng.choice([50, 100, 200, 500])}
    if kind == "points":
        r = rng.random()
        if r < 0.15:
            return {"per_unit": rng.choice([5, 10])}
        if r < 0.25:
            return {"per_visit": rng.choice([5, 10, 50])}
        return {"per_spend": rng.choice([100, 200, 1000]), "points": rng.choice([1, 2, 5]),
                "max_points": 500}
    if kind == "multiplier":
        return {"bps": rng.choice([15000, 20000, 30000])}
    if kind == "credit" and rng.random() < 0.2:
        return {"amount": rng.choice([100, 500]), "kind": "credit.club"}
    if kind == "fee":
        return {"percent_bps": rng.choice([100, 150, 200]), "amount": 10}
    if kind == "referral":
        return {"percent_bps": rng.choice([200, 500]), "kind": "credit.club",
                "max_amount": 1000}
    if kind == "reward":
        return {"cost_points": rng.choice([300, 1000, 2500]), "name": "reward"}
    if kind == "credit":
        return {"percent_bps": rng.choice([100, 200, 500]), "kind": "credit.club",
                "expires_days": 90, "max_amount": 2000}
    return {"per_spend": rng.choice([1000, 5000]), "entries": 1}


def _campaign(rng: random.Random) -> list[list[str]]:
    start = dt.date(2026, 1, 1) + dt.timedelta(days=rng.randrange(730))
    end = start + dt.timedelta(days=rng.choice([7, 14, 28]))
    return [[start.isoformat(), end.isoformat()]]


def _when(rng: random.Random) -> dict[str, Any]:
    """Conditions in proportions a large club bundle might have: mostly product
    promotions (which is why bundles grow to thousands of rules), then dated
    campaigns, bank-card offers, tier and group rules, a few birthday and win-back
    rules."""
    r = rng.random()
    when: dict[str, Any]
    if r < 0.55:  # product promotions
        when = {"skus": rng.sample(SKUS, rng.randint(1, 3))}
        if rng.random() < 0.3:
            when["min_tier"] = rng.choice(TIERS)
    elif r < 0.67:  # category campaigns, dated
        when = {"categories": [rng.choice(CATEGORIES)], "dates": _campaign(rng)}
    elif r < 0.75:  # bank card offers, also for non-members
        when = {"bins": rng.sample(BINS, rng.randint(1, 2)), "anonymous": True}
    elif r < 0.81:  # tier happy hours
        start = rng.randrange(24)
        when = {"tiers": [rng.choice(TIERS)], "weekdays": rng.sample(DAYS, 2),
                "hours": [[f"{start:02d}:00", f"{(start + 2) % 24:02d}:00"]]}
    elif r < 0.87:  # dated campaigns
        when = {"dates": _campaign(rng), "min_gross": rng.choice([1000, 5000, 10000])}
    elif r < 0.92:  # groups
        when = {"groups": [rng.choice(GROUPS)], "weekdays": rng.sample(DAYS, 3)}
    elif r < 0.925:  # birthdays
        when = {"birthday": rng.choice(["day", "month"])}
    elif r < 0.98:  # win-back and identification
        when = {"min_days_since_last_purchase": rng.choice([30, 60, 90]),
                "identified_by": [rng.choice(["pan", "nfc", "tel"])],
                "dates": _campaign(rng)}
    else:  # weekday nights
        when = {"weekdays": [rng.choice(DAYS)], "hours": [["22:00", "06:00"]]}
    # Issue 21: segments, limits, budgets and codes on a share of the rules.
    x = rng.random()
    if x < 0.08:
        when["max_per_member"] = {"count": rng.choice([1, 2]),
                                  "period": rng.choice(["day", "month", "year", "ever"])}
    elif x < 0.12:
        when["max_per_store"] = {"count": 100, "period": "day"}
        when["budget"] = rng.choice([50000, 100000])
    elif x < 0.16:
        when["codes"] = [f"PROMO{rng.randrange(50)}"]
    elif x < 0.20:
        when["min_points"] = rng.choice([100, 1000, 5000])
    elif x < 0.23:
        when["min_spend_days"] = {"days": rng.choice([90, 365]), "amount": 10000}
    elif x < 0.25:
        when["first_purchase"] = rng.random() < 0.5
    elif x < 0.27:
        when["purchase_count_every"] = rng.choice([5, 10])
    return when


def make_bundle(n: int, seed: int = 7) -> dict[str, Any]:
    rng = random.Random(seed)
    kinds = ["discount"] * 38 + ["points"] * 23 + ["credit"] * 13 + ["lottery"] * 8 + \
        ["multiplier"] * 8 + ["fee"] * 2 + ["referral"] * 4 + ["reward"] * 4
    rules = []
    for i in range(n):
        kind = rng.choice(kinds)
        rules.append({"id": f"r{i:05d}", "kind": kind, "priority": rng.randrange(100),
                      "exclusive": rng.random() < 0.05, "when": _when(rng),
                      "then": _effect(rng, kind)})
    return {
        "club": "acme", "merchant": "M-7", "version": 1000 + n,
        "issued_at": "2026-11-20T08:00:00Z", "expires_at": "2026-12-20T08:00:00Z",
        "currency": "EUR", "minor_units": 2, "timezone": "Europe/Berlin",
        "tiers": [{"id": t, "rank": i + 1} for i, t in enumerate(TIERS)],
        "points": {"value": 1, "min_redeem": 100, "max_redeem_share_bps": 5000},
        "credits": {"accepted": ["credit.club"], "use_cap_per_invoice": 50000,
                    "use_cap_per_day": 100000},
        "offline": {"max_redeem_value_per_member_day": 2000, "max_pending": 5000,
                    "max_age_hours": 72},
        "rules": rules,
    }


def basket(seed: int = 11) -> list[Line]:
    rng = random.Random(seed)
    return [Line(s, category_of(s), rng.randint(1, 3), rng.randint(100, 5000))
            for s in rng.sample(SKUS, 30)]


MEMBER = MemberView({
    "member_id": "m-1", "status": "active", "tier": "gold", "groups": ["vip"],
    "birthday": "1990-11-03",
    "balances": {"points": 1500, "credit.club": 3000},
    "stats": {"purchase_count": 12, "last_purchase": "2026-08-01", "spend_30d": 0,
              "spend_90d": 50000},
    "referred_by": "m-0", "rule_uses": {"r00001": ["2026-11-01"]},
    "balance_lots": {"points": [{"amount": 200, "expires": "2026-12-31"}]},
})


def _stats(values: list[int]) -> tuple[float, float]:
    values.sort()
    return statistics.median(values) / 1000, values[int(len(values) * 0.99)] / 1000


def measure(bundles: dict[int, Any], request: QuoteRequest, ctx: QuoteContext,
            runs: int) -> dict[int, tuple[float, float, float, float]]:
    """Per bundle size: wall-clock median and p99, CPU-time median and p99 (µs).

    The sizes are measured in interleaved rounds, so that load from other processes
    on this shared machine falls on every size alike and the ratios stay fair. The
    CPU time (this thread's) leaves out the time the scheduler gave to others, which
    is what dominates the wall-clock p99 on a busy 2-core machine.
    """
    for bundle in bundles.values():
        for _ in range(200):
            quote(bundle, request, MEMBER, ctx)
    wall: dict[int, list[int]] = {n: [] for n in bundles}
    cpu: dict[int, list[int]] = {n: [] for n in bundles}
    batch = 20
    clock, tclock = time.perf_counter_ns, time.thread_time_ns
    # The garbage collector stays on, as in the agent.
    gc.collect()
    for _ in range(runs // batch):
        for n, bundle in bundles.items():
            w, c = wall[n], cpu[n]
            for _ in range(batch):
                t0, c0 = clock(), tclock()
                quote(bundle, request, MEMBER, ctx)
                c.append(tclock() - c0)
                w.append(clock() - t0)
    return {n: (*_stats(wall[n]), *_stats(cpu[n])) for n in bundles}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3000, help="quotes per bundle size")
    args = parser.parse_args()
    request = QuoteRequest(basket(), token_kind="nfc", bin6=BINS[3], redeem_points="max",
                           use_credit=["credit.club"], codes=["PROMO7"])
    ctx = QuoteContext(AT, pending_purchases=1, member_uses={"r00002": ["2026-11-24"]},
                       store_uses={"r00003": ["2026-11-24"] * 5},
                       budget_used={"r00004": 1000}, coupon_seed="q-bench")
    bundles = {n: parse_bundle(json.dumps(make_bundle(n)).encode())
               for n in (0, 100, 1000, 10000)}
    results = measure(bundles, request, ctx, args.runs)
    print(f"quote of a 30-line basket, {args.runs} runs per size, interleaved (µs)")
    print(f"{'rules':>7} {'median':>9} {'p99':>9} {'cpu med':>9} {'cpu p99':>9} "
          f"{'looked at':>10} {'applied':>8}")
    for n, (med, p99, cmed, cp99) in results.items():
        q = quote(bundles[n], request, MEMBER, ctx)
        looked = sum(1 for e in q.explain if "rule" in e)
        applied = sum(1 for e in q.explain if e.get("applied"))
        print(f"{n:>7} {med:>9.1f} {p99:>9.1f} {cmed:>9.1f} {cp99:>9.1f} {looked:>10} "
              f"{applied:>8}")
    ratio = results[1000][0] / results[0][0]
    ratio99 = results[1000][1] / results[0][1]
    cratio = results[1000][2] / results[0][2]
    print(f"ratio 1,000 rules / empty bundle: median {ratio:.2f}, p99 {ratio99:.2f}, "
          f"cpu median {cratio:.2f} (goal ≤ 5)")

    # Control: a bundle of only the rules the 1,000-rule quote looks at gives the same
    # sale; the difference is what the other rules cost (the index's overhead).
    big = make_bundle(1000)
    q = quote(bundles[1000], request, MEMBER, ctx)
    looked_ids = {e["rule"] for e in q.explain if "rule" in e}
    small = dict(big, rules=[r for r in big["rules"] if r["id"] in looked_ids])
    control = {0: bundles[0], 1: parse_bundle(json.dumps(small).encode()),
               1000: bundles[1000]}
    c = measure(control, request, ctx, args.runs)
    print(f"control (cpu medians): only the {len(looked_ids)} rules looked at "
          f"{c[1][2]:.1f} µs; all 1,000 rules {c[1000][2]:.1f} µs (index overhead "
          f"×{c[1000][2] / c[1][2]:.2f}); empty {c[0][2]:.1f} µs")

    key = Ed25519PrivateKey.generate()
    payload = json.dumps(make_bundle(10000)).encode()
    envelope = sign_payload(payload, key, key_id="bench")
    trusted = {"bench": key.public_key()}
    loads, load_cpu = [], []
    for _ in range(7):
        gc.collect()
        t0, c0 = time.perf_counter(), time.thread_time()
        accept_envelope(envelope, trusted, club="acme", merchant="M-7", current_version=None,
                        now=AT)
        load_cpu.append((time.thread_time() - c0) * 1000)
        loads.append((time.perf_counter() - t0) * 1000)
    print(f"verify + load a 10,000-rule bundle ({len(payload) // 1024} KiB): "
          f"median {statistics.median(loads):.0f} ms, best {min(loads):.0f} ms, "
          f"worst {max(loads):.0f} ms; cpu median {statistics.median(load_cpu):.0f} ms "
          f"(goal < 300)")
    print("issue 21: p99 < 150 µs @1k rules: wall {} ({:.1f} µs), cpu {} ({:.1f} µs)".format(
        "met" if results[1000][1] < 150 else "MISSED", results[1000][1],
        "met" if results[1000][3] < 150 else "MISSED", results[1000][3]))
    print("goals (wall clock): p99 < 1000 µs @1k: {}; p99 < 5000 µs @10k: {}; ratio ≤ 5: {}; "
          "load < 300 ms: {}".format(*("met" if ok else "MISSED" for ok in (
              results[1000][1] < 1000, results[10000][1] < 5000, ratio <= 5,
              statistics.median(loads) < 300))))
    print("goals (cpu time):   p99 < 1000 µs @1k: {}; p99 < 5000 µs @10k: {}; ratio ≤ 5: {}; "
          "load < 300 ms: {}".format(*("met" if ok else "MISSED" for ok in (
              results[1000][3] < 1000, results[10000][3] < 5000, cratio <= 5,
              statistics.median(load_cpu) < 300))))


if __name__ == "__main__":
    main()
