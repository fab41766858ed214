"""Decode/encode speed of a batch and an ack: Structs vs. the old hand parsing.

``python -m bench.wire`` prints one line per case with the ratio (old/new).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from agent.protocol.base import decode, encode
from agent.protocol.events import Batch
from agent.sync import messages
from bench import _wire_v0 as old


def _event(i: int) -> dict[str, Any]:
    return {"id": f"0193-{i:08d}", "seq": i, "type": "sale", "at": "2026-11-28T10:00:00.000+00:00",
            "merchant_id": "M-7", "terminal_id": "T-0001", "staff_id": "s-1", "offline": False,
            "member_id": "m-123", "identified_by": "nfc", "lines": [
                {"sku": "A1", "qty": 2, "unit_price": 12500}, {"sku": "B2", "qty": 1,
                                                                 "unit_price": 4000}],
            "gross": 29000, "discounts": [], "redeemed_points": 0, "redeemed_value": 0,
            "credits_used": [], "payable": 29000, "points_earned": [{"points": 29}],
            "credits_earned": [], "lottery_entries": 0, "rules_version": "r-1",
            "payment": "cash"}


def _time(fn: Callable[[], object], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1e6


def main() -> None:
    events = [_event(i) for i in range(200)]
    batch = {"batch": "b-1", "terminal_id": "T-0001", "events": events}
    raw_batch = json.dumps(batch, separators=(",", ":")).encode()
    ack = json.dumps({"batch": "b-1", "accepted": [e["id"] for e in events[:-2]],
                      "rejected": [{"id": e["id"], "reason": "malformed: x"} for e in events[-2:]],
                      "applied_seq": 199}).encode()
    decoded = decode(Batch, raw_batch)
    cases = [
        ("ack decode (200 ids)", lambda: old.parse_ack(ack), lambda: messages.parse_ack(ack), 2000),
        ("batch decode (200 sales)", lambda: json.loads(raw_batch),
         lambda: decode(Batch, raw_batch), 200),
        ("batch encode (200 sales)",
         lambda: json.dumps(batch, separators=(",", ":"), ensure_ascii=False).encode(),
         lambda: encode(decoded), 200),
    ]
    print(f"payloads: batch {len(raw_batch)} bytes, ack {len(ack)} bytes")
    for name, before, after, n in cases:
        t_old, t_new = _time(before, n), _time(after, n)
        print(f"figure: {name}: old {t_old:.1f} us, new {t_new:.1f} us, "
              f"ratio {t_old / t_new:.2f}x")


if __name__ == "__main__":
    main()
