"""ClubLink end to end: a real mosquitto over TLS, the simulated club, a real store."""

from __future__ import annotations

import pytest

from hw_sim.broker import MosquittoBroker
from hw_sim.club.sim import SimClub
from tests.agent.sync.conftest import club_and_terminal_agree

pytestmark = pytest.mark.needs_mosquitto


def test_drain_acks_every_event_once_and_balances_agree(
        sim_club: SimClub, mosquitto: MosquittoBroker, make_terminal) -> None:
    sim_club.upsert_members([{"member_id": "m-1", "balances": {"points": 500}}])
    term = make_terminal(sim_club, mosquitto.tls_url, start=False)
    for i in range(1200):  # three batches and a bit
        term.sale("m-1", earned=2, redeemed=100 if i == 5 else 0)
    term.start()
    sim_club.wait_applied(term.id, 1200, timeout=60)
    term.wait_drained()
    counts = sim_club.ledger.event_counts(term.id)
    assert counts == {"applied": 1200}
    assert all(e["_times_received"] >= 1 for e in sim_club.ledger.events(term.id))
    assert sim_club.ledger.member("m-1")["balances"]["points"] == 500 + 2400 - 100
    club_and_terminal_agree(sim_club, term, "m-1")
    state = term.link.state()
    assert state.online and state.pending == 0 and state.last_ack_at is not None
    status = sim_club.wait_status(term.id, lambda s: s["queue"]["pending"] == 0)
    assert status["state"] == "online" and status["members_version"] >= 1


def test_rejections_are_kept_and_shown_in_status(
        sim_club: SimClub, mosquitto: MosquittoBroker, make_terminal) -> None:
    sim_club.faults.reject_if = lambda ev: "too_big" if ev.get("gross") == 999 else None
    term = make_terminal(sim_club, mosquitto.tls_url)
    term.sale(None)
    bad = term.sale(None, gross=999)
    term.sale(None)
    sim_club.wait_applied(term.id, 3)
    term.wait(lambda: term.store.outbox.queue_stats().rejected == 1, what="rejection recorded")
    # The acks of the rejection and of the third sale may come in two messages: the
    # club applying seq 3 does not mean this terminal has read its ack yet.
    term.wait_drained(timeout=10)
    status = sim_club.wait_status(term.id, lambda s: s["queue"]["rejected"] == 1)
    bad_id = bad.id if hasattr(bad, "id") else bad["id"]
    assert status["queue"]["recent_rejections"] == [{"id": bad_id, "reason": "too_big"}]
    # A rejected event is not sent again.
    sent_before = term.link.counters["events_sent"]
    term.sale(None)
    sim_club.wait_applied(term.id, 4)
    assert term.link.counters["events_sent"] == sent_before + 1


def test_commands_are_answered_once_and_repeats_get_the_stored_answer(
        sim_club: SimClub, mosquitto: MosquittoBroker, make_terminal) -> None:
    term = make_terminal(sim_club, mosquitto.tls_url)
    term.wait(lambda: term.link.state().online, what="online")
    ping = sim_club.send_command(term.id, "ping")
    assert sim_club.wait_command_result(ping) == [{"id": ping, "state": "done", "ok": True,
                                                   "detail": "pong"}]
    unknown = sim_club.send_command(term.id, "reboot")
    res = sim_club.wait_command_result(unknown)[0]
    assert res["ok"] is False and res["state"] == "failed" and "unknown command" in res["detail"]
    level = sim_club.send_command(term.id, "set_log_level", {"level": "debug"})
    assert sim_club.wait_command_result(level)[0]["ok"] is True
    bad_level = sim_club.send_command(term.id, "set_log_level", {"level": "loud"})
    assert sim_club.wait_command_result(bad_level)[0]["ok"] is False
    sim_club.upsert_members([{"member_id": "m-9"}], publish=False)
    resync = sim_club.send_command(term.id, "resync_members")
    first = sim_club.wait_command_result(resync)[0]
    assert first["ok"] is True and term.store.members.member("m-9") is not None
    snapshots = len(sim_club.snapshot_requests)
    # The same id again: the stored answer, and the snapshot is not fetched again.
    sim_club.send_command(term.id, "resync_members", command_id=resync)
    assert sim_club.wait_command_result(resync, count=2) == [first, first]
    assert len(sim_club.snapshot_requests) == snapshots
    status_cmd = sim_club.send_command(term.id, "send_status")
    assert sim_club.wait_command_result(status_cmd)[0]["ok"] is True
    import logging
    logging.getLogger().setLevel("WARNING")


def test_bundles_accepted_and_refused_with_reasons(
        sim_club: SimClub, mosquitto: MosquittoBroker, make_terminal) -> None:
    term = make_terminal(sim_club, mosquitto.tls_url)
    sim_club.publish_bundle("M-7", 5)
    term.wait(lambda: term.bundle_state.version == 5, what="bundle 5 in use")
    # Saved just after it is put in use (the store may be busy with the first snapshot).
    term.wait(lambda: term.store.bundles.current_bundle() is not None, 10, "bundle 5 saved")
    status = sim_club.wait_status(term.id, lambda s: s["rules_version"] == 5)
    assert status["rules_problem"] is None

    from datetime import UTC, datetime, timedelta

    from hw_sim.club.bundles import SigningKey
    stranger = SigningKey.load_or_create(term.config.state_dir / "stranger", "stranger-1")
    cases = [
        (dict(version=6, bad_signature=True), "bad_signature"),
        (dict(version=4), "downgrade"),
        (dict(version=7, for_merchant="M-8"), "foreign_merchant"),
        (dict(version=7, key=stranger), "unknown_key"),
        (dict(version=7, now=datetime.now(UTC) - timedelta(days=40)), "expired"),
    ]
    for kwargs, reason in cases:
        sim_club.publish_bundle("M-7", **kwargs)
        st = sim_club.wait_status(term.id, lambda s, r=reason: (s["rules_problem"] or "")
                                  .startswith(r))
        assert st["rules_version"] == 5
        assert term.bundle_state.version == 5
    problems = [e["problem"] for e in term.events if e["type"] == "rules" and e["problem"]]
    assert [p.split(":")[0] for p in problems] == ["bad_signature", "downgrade",
                                                    "foreign_merchant", "unknown_key",
                                                    "expired"]
    # The refused one is on record; a good newer one clears the problem.
    assert term.store.bundles.refused_bundle() is not None
    sim_club.publish_bundle("M-7", 8)
    sim_club.wait_status(term.id, lambda s: s["rules_version"] == 8 and not s["rules_problem"])


def test_change_set_gap_triggers_a_snapshot(
        sim_club: SimClub, mosquitto: MosquittoBroker, make_terminal) -> None:
    sim_club.upsert_members([{"member_id": "m-1", "name": "A"}])
    term = make_terminal(sim_club, mosquitto.tls_url)
    term.wait(lambda: term.store.members.members_version() == 1, what="initial snapshot")
    sim_club.upsert_members([{"member_id": "m-2", "name": "B"}])  # version 2, published
    term.wait(lambda: term.store.members.members_version() == 2, what="change set 1..2")
    before = len(sim_club.snapshot_requests)
    sim_club.faults.skip_change_sets = 1
    sim_club.upsert_members([{"member_id": "m-3", "name": "C"}])  # 2..3 lost
    sim_club.upsert_members([{"member_id": "m-4", "name": "D"}])  # 3..4: a gap
    term.wait(lambda: term.store.members.members_version() == 4, what="snapshot after the gap")
    assert term.store.members.member("m-3")["name"] == "C"
    assert term.store.members.member("m-4")["name"] == "D"
    assert sim_club.snapshot_requests[before:] == [(term.id, 2)]


def test_malformed_and_oversized_messages_are_dropped_and_the_link_goes_on(
        sim_club: SimClub, mosquitto: MosquittoBroker, make_terminal) -> None:
    term = make_terminal(sim_club, mosquitto.tls_url)
    term.wait(lambda: term.link.state().online, what="online")
    sim_club.publish_raw_change(b"{not json")
    sim_club.publish_raw_change({"from_version": "x"})
    sim_club.publish_raw_change(b"[" + b"1," * (140 * 1024) + b"1]")  # > 256 KiB
    sim_club.send_raw_command(term.id, b"\xff\xfe")
    sim_club.send_raw_command(term.id, b'{"type": "ping"}')  # no id
    sim_club.publish_raw_bundle("M-7", b"garbage")
    term.wait(lambda: term.link.counters["dropped_messages"] >= 6, what="drops counted")
    term.sale(None)
    sim_club.wait_applied(term.id, 1)
    ping = sim_club.send_command(term.id, "ping")
    assert sim_club.wait_command_result(ping)[0]["ok"] is True


def test_link_state_and_events_follow_the_connection(
        sim_club: SimClub, mosquitto_factory, make_club, make_terminal) -> None:
    broker = mosquitto_factory()
    club = make_club(broker)
    term = make_terminal(club, broker.tls_url)
    term.wait(lambda: term.link.state().online, what="online")
    broker.stop()
    term.wait(lambda: not term.link.state().online, what="offline")
    assert term.link.state().last_error
    broker.start()
    term.wait(lambda: term.link.state().online, timeout=30, what="online again")

    def kinds() -> list[tuple[str, object]]:
        return [(e["type"], e.get("online")) for e in list(term.events) if e["type"] == "link"]

    # The state changes first, then the worker hands the event on: wait for it too.
    term.wait(lambda: len(kinds()) >= 3, timeout=5, what="the third link event")
    assert kinds()[:3] == [("link", True), ("link", False), ("link", True)]


def test_plain_listener_when_the_configuration_allows_it(
        sim_club: SimClub, mosquitto: MosquittoBroker, make_terminal) -> None:
    term = make_terminal(sim_club, mosquitto.url)
    assert term.config.allow_plain
    term.sale(None)
    sim_club.wait_applied(term.id, 1)
    term.wait_drained()


def test_the_will_marks_a_vanished_terminal_offline(
        sim_club: SimClub, mosquitto: MosquittoBroker, make_terminal) -> None:
    term = make_terminal(sim_club, mosquitto.tls_url)
    sim_club.wait_status(term.id, lambda s: s["state"] == "online")
    # Cut the socket under paho: the broker publishes the will.
    term.link.client.socket().close()
    sim_club.wait_status(term.id, lambda s: s == {"state": "offline"}, timeout=20)
    sim_club.wait_status(term.id, lambda s: s["state"] == "online", timeout=30)
    term.stop()
    st = sim_club.wait_status(term.id, lambda s: s["state"] == "offline")
    assert "at" in st  # a clean stop says so itself


def test_status_is_repeated_and_follows_readers(sim_club: SimClub, mosquitto: MosquittoBroker,
                                                make_terminal) -> None:
    from dataclasses import replace

    from tests.agent.sync.conftest import FAST
    term = make_terminal(sim_club, mosquitto.tls_url,
                         tuning=replace(FAST, status_interval_s=1.0))
    first = sim_club.wait_status(term.id, lambda s: s["state"] == "online")
    sim_club.wait_status(term.id, lambda s: s["at"] != first["at"], timeout=10)
    readers = [{"name": "Virtual PCD 00 00", "kind": "pcsc", "state": "ok"}]
    term.link.set_readers(readers)
    assert sim_club.wait_status(term.id, lambda s: s["readers"] == readers)["readers"] == readers
