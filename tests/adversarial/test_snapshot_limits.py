"""A hostile member-snapshot server cannot stall the link or fill memory (issue #13, item 7).

The real link on the real mosquitto and the simulated club; the club's HTTPS
snapshot route (mutual TLS) is swapped for one that (a) trickles bytes for ever,
(b) sends valid records without end, (c) sends one endless line. Each time the
fetch is abandoned at its deadline or cap, memory stays flat, sales recorded
meanwhile are published and acked, the reason shows in the link state, the fetch
is tried again later, and once the club behaves the snapshot comes in.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import pytest

from hw_sim.broker import MosquittoBroker
from hw_sim.club.sim import SimClub
from tests.agent.sync.conftest import FAST, Terminal, make_terminal  # noqa: F401 (fixture)
from tests.fixtures.hostile import (
    Body,
    HostileClub,
    HostileRoute,
    PeakRss,
    endless,
    endless_rows,
    trickle,
)

pytestmark = pytest.mark.needs_mosquitto

MEMBERS_ROUTE = r"/v1/clubs/(?P<club>[a-z0-9-]+)/members"
SNAPSHOT = {"Content-Type": "application/x-ndjson", "X-Members-Version": "5"}
SLOW_RECORD = b'{"member_id": "m-slow", "version": 1}\n'
LINE_START = b'{"member_id": "m-1", "version": 1, "name": "'


def run_case(club: SimClub, make: Callable[..., Terminal],
             hostile_club: Callable[..., HostileClub], body: Body, broker: MosquittoBroker,
             **limits: Any) -> dict[str, Any]:
    assert club.http is not None
    hostile_http = hostile_club(club.http)
    hostile = hostile_http.serve("GET", MEMBERS_ROUTE, body, headers=SNAPSHOT)
    tuning = dataclasses.replace(FAST, snapshot_retry_s=0.5, snapshot_retry_cap_s=1.0, **limits)
    rss = PeakRss()
    term = make(club, broker.tls_url, tuning=tuning, start=False)
    started = time.monotonic()
    term.start()  # a new terminal: its first job is the full snapshot
    link = term.link
    assert link is not None
    term.wait(lambda: hostile.requests >= 1, 10, "the snapshot request")
    # Sales while the snapshot is stuck: published and acked all the same.
    sales = [term.sale(None) for _ in range(37)]
    club.wait_applied(term.id, len(sales), timeout=20)
    term.wait_drained(20)
    acked_during_fetch = link.snapshot_running()
    acked_after_s = time.monotonic() - started
    term.wait(lambda: link.state().members_problem is not None, 60, "the fetch abandoned")
    abandoned_after_s = time.monotonic() - started
    problem = link.state().members_problem
    # Tried again with backoff, still abandoned, still no version from it.
    term.wait(lambda: hostile.requests >= 2, 20, "a second attempt")
    assert term.store.members_version() == 0
    grew = rss.stop()
    # The club behaves again: the next attempt brings the snapshot in.
    club.upsert_members([{"member_id": "m-1", "balances": {"points": 7}}], publish=False)
    hostile_http.behave()
    term.wait(lambda: term.store.members_version() >= 1, 30, "the snapshot once the club behaves")
    term.wait(lambda: link.state().members_problem is None, 10, "the problem cleared")
    assert term.store.member("m-1") is not None
    assert term.store.member("m-19999") is None  # what an abandoned fetch wrote is swept
    return {"problem": problem or "", "abandoned_after_s": abandoned_after_s, "rss_growth": grew,
            "acked_during_fetch": acked_during_fetch, "acked_after_s": acked_after_s,
            "hostile": hostile}


def test_a_trickling_snapshot_is_abandoned_at_its_deadline_and_sales_flow_meanwhile(
        sim_club: SimClub, mosquitto: MosquittoBroker,
        make_terminal: Callable[..., Terminal],  # noqa: F811 (the imported fixture)
        hostile_club: Callable[..., HostileClub]) -> None:
    out = run_case(sim_club, make_terminal, hostile_club, trickle(SLOW_RECORD), mosquitto,
                   snapshot_deadline_s=6.0)
    h: HostileRoute = out["hostile"]
    print(f"figure: trickle: 37 sales acked {out['acked_after_s']:.1f} s after start with the "
          f"fetch still running; abandoned after {out['abandoned_after_s']:.1f} s (deadline 6 s, "
          f"{h.bytes_sent} bytes trickled); RSS +{out['rss_growth'] / 2**20:.1f} MiB")
    assert out["acked_during_fetch"], "the sales were acked only after the fetch ended"
    assert "deadline" in out["problem"]
    assert out["abandoned_after_s"] < 6.0 + 3.0
    assert out["rss_growth"] < 64 * 2**20


def test_an_endless_stream_of_valid_rows_is_cut_at_the_record_cap(
        sim_club: SimClub, mosquitto: MosquittoBroker,
        make_terminal: Callable[..., Terminal],  # noqa: F811 (the imported fixture)
        hostile_club: Callable[..., HostileClub]) -> None:
    out = run_case(sim_club, make_terminal, hostile_club, endless_rows, mosquitto,
                   snapshot_max_records=20_000, snapshot_deadline_s=30.0)
    h: HostileRoute = out["hostile"]
    print(f"figure: endless rows: abandoned after {out['abandoned_after_s']:.1f} s at the cap of "
          f"20,000 records ({h.rows_sent:,} rows / {h.bytes_sent / 2**20:.1f} MiB served); "
          f"RSS +{out['rss_growth'] / 2**20:.1f} MiB")
    assert "more than 20,000 records" in out["problem"]
    assert out["abandoned_after_s"] < 30.0
    assert out["rss_growth"] < 64 * 2**20


def test_one_endless_line_is_cut_at_the_line_cap(
        sim_club: SimClub, mosquitto: MosquittoBroker,
        make_terminal: Callable[..., Terminal],  # noqa: F811 (the imported fixture)
        hostile_club: Callable[..., HostileClub]) -> None:
    out = run_case(sim_club, make_terminal, hostile_club, endless(LINE_START), mosquitto,
                   snapshot_max_line=1024 * 1024, snapshot_deadline_s=30.0)
    h: HostileRoute = out["hostile"]
    print(f"figure: one huge line: abandoned after {out['abandoned_after_s']:.1f} s at the line "
          f"cap of 1 MiB ({h.bytes_sent / 2**20:.1f} MiB served); "
          f"RSS +{out['rss_growth'] / 2**20:.1f} MiB")
    assert "over the limit of 1,048,576 bytes" in out["problem"]
    assert out["rss_growth"] < 64 * 2**20
