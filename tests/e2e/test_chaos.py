"""The chaos run, short: a few hundred sales while the agent and the broker are killed."""

from __future__ import annotations

import os

import pytest

from hw_sim.broker import mosquitto_available
from tests.e2e.chaos import run_chaos

pytestmark = [pytest.mark.needs_mosquitto, pytest.mark.slow]


@pytest.mark.skipif(not mosquitto_available(), reason="mosquitto is not installed")
def test_every_confirmed_sale_reaches_the_club_exactly_once() -> None:
    sales = int(os.environ.get("CLUBTERM_CHAOS_SALES", "250"))
    report = run_chaos(sales, seed=int(os.environ.get("CLUBTERM_CHAOS_SEED", "7")))
    print(report.summary())
    assert report.kills >= 2 and report.broker_restarts >= 1
    assert report.hangups >= sales * 0.05   # the hang-up-and-retry register was exercised
    assert report.doubled == 0 and report.phantom == 0
    assert len(report.confirmed) >= sales * 0.8
