"""The pure tables behind sign-in: PIN attempts and badge taps (time passed in)."""

from __future__ import annotations

import pytest

from agent.errors import ApiError
from agent.localapi.sessions import BadgeTaps, PinAttempts


def reason(fn: object, *args: object) -> str:
    try:
        fn(*args)  # type: ignore[operator]
    except ApiError as exc:
        return str(exc.data["reason"])  # type: ignore[index]
    return "ok"


def test_attempts_are_counted_before_the_check_and_a_lock_lifts_with_the_window() -> None:
    pins = PinAttempts(max_attempts=3, window_s=60)
    assert [reason(pins.reserve, "a", t) for t in (0, 1, 2, 3)] == ["ok"] * 3 + ["locked_out"]
    assert pins.locked("a", 59.9) and reason(pins.reserve, "a", 59.9) == "locked_out"
    assert reason(pins.reserve, "a", 60.0) == "ok"  # the first attempt left the window
    pins.succeeded("a")
    assert not pins.locked("a", 60.0) and len(pins) == 0


def test_a_full_table_evicts_only_expired_ids_and_never_a_lock() -> None:
    pins = PinAttempts(max_attempts=2, window_s=60, max_tracked=3)
    pins.reserve("locked", 0)
    pins.reserve("locked", 1)
    pins.reserve("b", 10)
    pins.reserve("c", 20)
    assert reason(pins.reserve, "d", 30) == "too_many_attempts"
    assert pins.locked("locked", 30) and len(pins) == 3
    # At 61 the locked id's attempts have expired: it is evicted first (it may try again).
    assert reason(pins.reserve, "d", 61.5) == "ok" and len(pins) == 3
    assert reason(pins.reserve, "e", 62) == "too_many_attempts"  # b, c, d still live
    assert reason(pins.reserve, "e", 70.5) == "ok"  # b expired


def test_taps_are_single_use_expire_and_come_back_only_within_their_time() -> None:
    taps = BadgeTaps(ttl_s=15, max_taps=2)
    tap = taps.issue("s1", "nfc:AA", "r", 0)
    assert tap.ref.startswith("tap:") and "AA" not in tap.ref
    assert taps.take(tap.ref, 14.9).staff_id == "s1"
    assert reason(taps.take, tap.ref, 15) == "badge_tap_expired"
    taps.give_back(tap, 10)
    assert taps.take(tap.ref, 11).badge == "nfc:AA"
    taps.give_back(tap, 15)  # too late: gone
    assert reason(taps.take, tap.ref, 15) == "badge_tap_expired"
    late = taps.issue("s1", "nfc:AA", "r", 100)
    assert reason(taps.take, late.ref, 115) == "badge_tap_expired"
    assert reason(taps.take, "nfc:AA", 100) == "badge_not_tapped"
    refs = [taps.issue("s", "nfc:BB", "r", 200 + i).ref for i in range(3)]
    assert len(taps) == 2 and reason(taps.take, refs[0], 203) == "badge_tap_expired"


@pytest.mark.parametrize("ref", ["", "tap:", "tap:x" * 50, "TAP:abc"])
def test_odd_references_are_refused(ref: str) -> None:
    assert reason(BadgeTaps().take, ref, 0) in ("badge_tap_expired", "badge_not_tapped")
