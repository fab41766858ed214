"""Fixtures of the store tests: a fresh store in a temp folder, a settable clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.offline_queue import Store


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "clubterm.db"


@pytest.fixture
def store(db_path: Path, clock: Clock) -> Iterator[Store]:
    s = Store.open(db_path, "T-0001", "M-7", clock=clock)
    yield s
    s.close()
