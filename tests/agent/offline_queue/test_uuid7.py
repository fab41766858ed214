import uuid

from hypothesis import given
from hypothesis import strategies as st

from agent.offline_queue.uuid7 import uuid7, uuid7_unix_ms


def test_version_variant_and_time() -> None:
    u = uuid7(1_700_000_000_123)
    assert u.version == 7
    assert u.variant == uuid.RFC_4122
    assert uuid7_unix_ms(u) >= 1_700_000_000_123


def test_strictly_increasing_even_when_the_clock_stands_still_or_steps_back() -> None:
    ids = [uuid7(1_800_000_000_000) for _ in range(10_000)]
    ids += [uuid7(1_700_000_000_000) for _ in range(100)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert all(u.version == 7 for u in ids)


@given(st.integers(min_value=1_900_000_000_000, max_value=(1 << 48) - 2))
def test_timestamp_round_trips(ms: int) -> None:
    assert uuid7_unix_ms(uuid7(ms)) >= ms
