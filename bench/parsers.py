"""Card-data parser throughput and a long fuzz run.

    python -m bench.parsers [--seconds 60] [--iterations N] [--seed S] [--measure 2]

Prints swipes/s (ISO 7813 bursts through ``parse_swipe``), TLV records/s (READ
RECORD answers through ``parse_tlv`` + ``card_from_records``), tokens/s, then
fuzzes every parser with random and mutated inputs for ``--seconds`` (or
``--iterations``) and reports executions/s. Exit status 1 if any parser raised
anything but CardDataError (the offending input is printed as hex, which is
synthetic test data, never a real card).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

from agent.carddata import emv, tlv, tokens, tracks
from agent.cli import card as card_cli
from agent.errors import CardDataError
from tests.agent.carddata.samples import PDOL, RECORD_SAMPLES, TLV_CORPUS, TRACK_CORPUS, VISA

INTERESTING_BYTES = (0x00, 0x7F, 0x80, 0x81, 0x82, 0x83, 0x84, 0xFF, 0x1F, 0x9F, 0x20, 0xDF)
INTERESTING_CHARS = "%;?^=E\r\n 0123456789BbD+۰۹"

BYTE_TARGETS: dict[str, Callable[[bytes], Any]] = {
    "parse_tlv": tlv.parse_tlv,
    "parse_dol": tlv.parse_dol,
    "pan_from_5a": emv.pan_from_5a,
    "track2_fields": emv.track2_fields,
    "expiry_from_5f24": emv.expiry_from_5f24,
    "card_from_records": lambda data: emv.card_from_records(tlv.parse_tlv(data)),
    "decode_tlv": card_cli.decode_tlv,
}
TEXT_TARGETS: dict[str, Callable[[str], Any]] = {
    "parse_swipe": tracks.parse_swipe,
    "looks_like_track": tracks.looks_like_track,
    "normalise_phone": lambda text: tokens.normalise_phone(text, "98"),
    "token_kind": tokens.token_kind,
    "decode_text": card_cli.decode_text,
}


def rate(fn: Callable[[], int], seconds: float) -> float:
    """Items per second of ``fn`` (which returns how many items it did) over ``seconds``."""
    done = 0
    start = time.perf_counter()
    while True:
        done += fn()
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return done / elapsed


def mutate_bytes(rng: random.Random, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        op = rng.randrange(6)
        pos = rng.randrange(len(buf)) if buf else 0
        if op == 0 and buf:
            buf[pos] ^= 1 << rng.randrange(8)
        elif op == 1 and buf:
            buf[pos] = rng.choice(INTERESTING_BYTES)
        elif op == 2:
            buf[pos:pos] = rng.randbytes(rng.randint(1, 4))
        elif op == 3:
            del buf[pos : pos + rng.randint(1, 4)]
        elif op == 4:
            del buf[pos:]
        else:
            buf[pos:pos] = buf[pos : pos + rng.randint(1, 8)]
    return bytes(buf)


def mutate_text(rng: random.Random, text: str) -> str:
    chars = list(text)
    for _ in range(rng.randint(1, 6)):
        op = rng.randrange(5)
        pos = rng.randrange(len(chars)) if chars else 0
        if op == 0 and chars:
            chars[pos] = rng.choice(INTERESTING_CHARS)
        elif op == 1:
            chars[pos:pos] = rng.choices(INTERESTING_CHARS, k=rng.randint(1, 4))
        elif op == 2:
            del chars[pos : pos + rng.randint(1, 4)]
        elif op == 3:
            del chars[pos:]
        else:
            chars = list("".join(chars).swapcase())
    return "".join(chars)


def random_text(rng: random.Random) -> str:
    return "".join(chr(rng.choice((rng.randrange(32, 127), rng.randrange(0, 0x700))))
                   for _ in range(rng.randrange(60)))


def fuzz(seconds: float, iterations: int | None, seed: int) -> tuple[int, float, list[str]]:
    """Run the fuzzer; returns executions, elapsed seconds and failure reports."""
    rng = random.Random(seed)
    failures: list[str] = []
    execs = 0
    start = time.perf_counter()
    deadline = start + seconds
    i = 0
    while (iterations is None or i < iterations) and time.perf_counter() < deadline:
        i += 1
        kind = rng.randrange(4)
        if kind < 2:
            data = (mutate_bytes(rng, rng.choice(TLV_CORPUS)) if kind == 0
                    else rng.randbytes(rng.randrange(300)))
            targets: list[tuple[str, Callable[[Any], Any], Any]] = [
                (name, fn, data) for name, fn in BYTE_TARGETS.items()]
            shown = data.hex()
        else:
            text = (mutate_text(rng, rng.choice(TRACK_CORPUS)) if kind == 2
                    else random_text(rng))
            targets = [(name, fn, text) for name, fn in TEXT_TARGETS.items()]
            shown = text.encode("utf-8").hex()
        for name, fn, arg in targets:
            execs += 1
            try:
                fn(arg)
            except CardDataError:
                pass
            except Exception:  # the point: anything but CardDataError is a bug
                failures.append(f"{name}({shown}):\n{traceback.format_exc()}")
                if len(failures) >= 20:
                    return execs, time.perf_counter() - start, failures
    return execs, time.perf_counter() - start, failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.parsers", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0, help="fuzz run length")
    parser.add_argument("--iterations", type=int, default=None,
                        help="stop the fuzz run after this many inputs")
    parser.add_argument("--seed", type=int, default=7813)
    parser.add_argument("--measure", type=float, default=2.0,
                        help="seconds per throughput figure")
    args = parser.parse_args(argv)

    records = [r for _, r, *_ in RECORD_SAMPLES]
    key = bytes(range(32))

    def swipes() -> int:
        for text in TRACK_CORPUS:
            tracks.parse_swipe(text)
        return len(TRACK_CORPUS)

    def tlv_records() -> int:
        for data in records:
            emv.card_from_records(tlv.parse_tlv(data))
        return len(records)

    answers = [data for data in TLV_CORPUS if data != PDOL]

    def tlv_parse_only() -> int:
        for data in answers:
            tlv.parse_tlv(data)
        return len(answers)

    def pan_tokens() -> int:
        for _ in range(100):
            tokens.pan_token(key, VISA)
        return 100

    def phones() -> int:
        for text in ("+98 912 123 4567", "0912-123-4567", "۰۹۱۲ ۱۲۳ ۴۵۶۷", "00989121234567"):
            tokens.normalise_phone(text, "98")
        return 4

    print("card-data parser throughput (one core, CPython "
          f"{sys.version_info.major}.{sys.version_info.minor})")
    print(f"  swipes/s (parse_swipe, {len(TRACK_CORPUS)} real-world bursts): "
          f"{rate(swipes, args.measure):,.0f}")
    print(f"  TLV records/s (parse_tlv + card_from_records, {len(records)} records): "
          f"{rate(tlv_records, args.measure):,.0f}")
    print(f"  TLV answers/s (parse_tlv only, {len(answers)} answers): "
          f"{rate(tlv_parse_only, args.measure):,.0f}")
    print(f"  pan tokens/s (HMAC-SHA256): {rate(pan_tokens, args.measure):,.0f}")
    print(f"  phones/s (normalise_phone): {rate(phones, args.measure):,.0f}")
    sys.stdout.flush()

    limit = f"{args.seconds:g} s" + (f" or {args.iterations} inputs" if args.iterations else "")
    print(f"fuzz run ({limit}, seed {args.seed}): random and mutated inputs to "
          f"{len(BYTE_TARGETS) + len(TEXT_TARGETS)} parsers")
    execs, elapsed, failures = fuzz(args.seconds, args.iterations, args.seed)
    print(f"  executions: {execs:,} in {elapsed:.1f} s ({execs / elapsed:,.0f}/s)")
    print(f"  unexpected exceptions: {len(failures)}")
    for failure in failures:
        print(failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
