"""Issue #13.6: the local API under a flood of connections and 1 MiB requests.

The real agent (``python -m agent run``) with its real server and services; the
attack is ``bench.localapi.run_flood`` (``python -m bench.localapi`` prints the same
figures). Run as root, the three attacking processes take other user ids, so the
per-user cap stops them and a fresh connection of the cashier's user still gets in.
"""

from __future__ import annotations

import os

from agent.localapi import MAX_CONNECTIONS, MAX_CONNECTIONS_PER_USER
from bench.localapi import TARGET_RSS_GROWTH_MB, describe, run_flood
from tests.agent.daemon.support import AgentProcess, NotifyListener, terminal_dir


def test_flood_of_connections_and_1_mib_requests_is_bounded() -> None:
    with terminal_dir() as files:
        notify = NotifyListener(files.root / "notify.sock")
        agent = AgentProcess(files, notify)
        try:
            notify.wait_for("READY=1", timeout=30)
            r = run_flood(files, agent.proc.pid, connections=300, requests=100, attackers=3)
            assert agent.proc.poll() is None, "the agent survived"
        finally:
            code = agent.stop()
            notify.close()
        records = agent.log_records()
    print("figure:\n" + describe(r))

    # Connections: every one got in or got its one error line; the caps held.
    assert r["opened"] == 300 and r["connect_errors"] == 0
    assert r["accepted"] + r["refused"] == 300
    assert r["accepted"] <= MAX_CONNECTIONS
    if os.geteuid() == 0:
        assert r["accepted"] == 3 * MAX_CONNECTIONS_PER_USER
        assert r["fresh_connection"]["served"], r["fresh_connection"]
    # Every 1 MiB request was answered (its text is over the per-text limit).
    assert r["big_replies"] == {"-32602": 100}
    # The cashier's sales all went through (timings are printed, not asserted).
    assert r["sales"] == 11
    # Memory: the target, with the measured figure about a third of it.
    assert r["rss_growth_mb"] < TARGET_RSS_GROWTH_MB
    # The log: a few lines about the refusals, no error, a clean stop.
    assert code == 0
    levels = [str(x.get("level", "")).lower() for x in records]
    assert "error" not in levels and "critical" not in levels, records[-5:]
    refusals = [x for x in records if "refused a connection" in str(x.get("msg", ""))]
    assert 1 <= len(refusals) <= 10
    print(f"figure: {len(refusals)} log lines for {r['refused']} refused connections")
