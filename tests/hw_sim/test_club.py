"""The simulated club against a real mosquitto, driven by a raw paho 'terminal'."""

from __future__ import annotations

import json
import queue
import ssl
import uuid
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import requests
from paho.mqtt.enums import CallbackAPIVersion

from hw_sim.broker import MosquittoBroker
from hw_sim.club.sim import SimClub
from tests.fixtures.club import ClubPki

pytestmark = pytest.mark.needs_mosquitto


class RawTerminal:
    """A bare paho client with a terminal's certificate."""

    def __init__(self, broker: MosquittoBroker, pki: ClubPki, terminal_id: str):
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.refused: list[Any] = []
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"raw-{terminal_id}",
                             protocol=mqtt.MQTTv5)
        files = pki.terminal_cert(terminal_id)
        ctx = ssl.create_default_context(cafile=str(pki.ca.cert_file))
        ctx.load_cert_chain(str(files.cert), str(files.key))
        self.c.tls_set_context(ctx)
        self.c.on_message = lambda c, u, m: self.messages.put((m.topic, bytes(m.payload)))
        self.subacks: queue.Queue[list[Any]] = queue.Queue()
        self.c.on_subscribe = lambda c, u, mid, codes, props: self.subacks.put(codes)
        self.c.connect("localhost", broker.tls_port or 0)
        self.c.loop_start()

    def subscribe(self, topic: str) -> list[Any]:
        self.c.subscribe(topic, qos=1)
        return self.subacks.get(timeout=5)

    def publish(self, topic: str, doc: Any) -> None:
        self.c.publish(topic, json.dumps(doc), qos=1).wait_for_publish(5)

    def get(self, timeout: float = 5) -> tuple[str, Any]:
        topic, payload = self.messages.get(timeout=timeout)
        return topic, json.loads(payload)

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def sale(seq: int, member: str | None, *, earned: int = 10, redeemed: int = 0,
         terminal: str = "T-1") -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "seq": seq, "type": "sale",
            "at": "2026-11-24T10:00:00+01:00", "merchant_id": "M-7", "terminal_id": terminal,
            "staff_id": None, "offline": False, "member_id": member, "identified_by": None,
            "lines": [{"sku": None, "category": None, "qty": 1, "unit_price": 1000}],
            "gross": 1000, "discounts": [{"rule": "d", "amount": 100}],
            "redeemed_points": redeemed, "redeemed_value": redeemed, "credits_used": [],
            "payable": 900 - redeemed, "points_earned": [{"rule": "base", "points": earned}],
            "credits_earned": [{"rule": "cb", "kind": "credit.club", "amount": 5,
                                "expires": "2027-02-22"}],
            "lottery_entries": 0, "rules_version": 1, "payment": "cash"}


def test_batches_are_applied_once_in_seq_order_and_acked(
        sim_club: SimClub, mosquitto: MosquittoBroker, club_pki: ClubPki) -> None:
    sim_club.upsert_members([{"member_id": "m-1", "balances": {"points": 100}}])
    t = RawTerminal(mosquitto, club_pki, "T-1")
    try:
        prefix = f"clubterm/v1/{sim_club.club_id}/terminals/T-1"
        t.subscribe(f"{prefix}/acks")
        events = [sale(i, "m-1", earned=10, redeemed=50 if i == 2 else 0) for i in (1, 2, 3)]
        # seq 2 and 3 arrive before 1: stored and accepted, applied only when 1 is there.
        t.publish(f"{prefix}/events", {"batch": "b1", "terminal_id": "T-1",
                                       "events": events[1:]})
        _, ack1 = t.get()
        assert ack1["batch"] == "b1"
        assert sorted(ack1["accepted"]) == sorted(e["id"] for e in events[1:])
        assert ack1["applied_seq"] == 0
        assert sim_club.ledger.member("m-1")["balances"]["points"] == 100
        t.publish(f"{prefix}/events", {"batch": "b2", "terminal_id": "T-1", "events": events})
        _, ack2 = t.get()
        assert ack2["applied_seq"] == 3
        assert sorted(ack2["accepted"]) == sorted(e["id"] for e in events)
        rec = sim_club.ledger.member("m-1")
        assert rec["balances"]["points"] == 100 + 30 - 50
        assert rec["balances"]["credit.club"] == 15
        assert rec["stats"]["purchase_count"] == 3
        assert rec["stats"]["last_purchase"] == "2026-11-24"
        assert rec["applied"] == {"T-1": 3}
        assert sim_club.ledger.event_counts("T-1") == {"applied": 3}
        # A refund reverses its sale.
        refund = {"id": str(uuid.uuid4()), "seq": 4, "type": "refund", "at": events[0]["at"],
                  "terminal_id": "T-1", "merchant_id": "M-7", "staff_id": "s-1",
                  "offline": False, "sale_id": events[1]["id"], "reason": "test"}
        bad = {"id": str(uuid.uuid4()), "seq": 5, "type": "nonsense", "at": events[0]["at"]}
        t.publish(f"{prefix}/events", {"batch": "b3", "terminal_id": "T-1",
                                       "events": [refund, bad]})
        _, ack3 = t.get()
        assert ack3["accepted"] == [refund["id"]]
        assert ack3["rejected"] == [{"id": bad["id"], "reason": "unknown_type: nonsense"}]
        assert ack3["applied_seq"] == 5  # a rejected event does not hold the order up
        assert sim_club.ledger.member("m-1")["balances"]["points"] == 100 + 20
    finally:
        t.close()


def test_a_terminal_cannot_read_another_terminals_acks(
        sim_club: SimClub, mosquitto: MosquittoBroker, club_pki: ClubPki) -> None:
    a = RawTerminal(mosquitto, club_pki, "T-A")
    b = RawTerminal(mosquitto, club_pki, "T-B")
    try:
        p = f"clubterm/v1/{sim_club.club_id}/terminals"
        # Mosquitto grants the subscription but never delivers what the ACL forbids.
        a.subscribe(f"{p}/T-B/acks")
        a.subscribe(f"{p}/+/acks")
        b.subscribe(f"{p}/T-B/acks")
        b.publish(f"{p}/T-B/events", {"batch": "x", "terminal_id": "T-B",
                                      "events": [sale(1, None, terminal="T-B")]})
        topic, ack = b.get()
        assert topic == f"{p}/T-B/acks" and ack["applied_seq"] == 1
        # A may not publish as B either: the club never sees it.
        a.publish(f"{p}/T-B/events", {"batch": "y", "terminal_id": "T-B",
                                      "events": [sale(2, None, terminal="T-B")]})
        a.publish(f"{p}/T-A/events", {"batch": "z", "terminal_id": "T-A",
                                      "events": [sale(1, None, terminal="T-A")]})
        seen = [a.get()]
        while True:
            try:
                seen.append(a.get(timeout=1.0))
            except queue.Empty:
                break
        assert [(topic, ack["batch"]) for topic, ack in seen] == [(f"{p}/T-A/acks", "z")]
        assert sim_club.ledger.applied_seq("T-B") == 1
    finally:
        a.close()
        b.close()


def test_snapshot_over_mutual_tls(sim_club: SimClub, club_pki: ClubPki) -> None:
    sim_club.upsert_members([{"member_id": f"m-{i}", "name": f"M {i}"} for i in range(5)])
    cert = club_pki.terminal_cert("T-S")
    url = f"{sim_club.central_url}/v1/clubs/{sim_club.club_id}/members"
    r = requests.get(url, params={"since": 2}, cert=(str(cert.cert), str(cert.key)),
                     verify=str(club_pki.ca.cert_file), stream=True, timeout=10)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/x-ndjson"
    assert r.headers["X-Members-Version"] == "5"
    ids = [json.loads(line)["member_id"] for line in r.iter_lines() if line]
    assert ids == ["m-2", "m-3", "m-4"]
    no_cert = requests.get(url, verify=str(club_pki.ca.cert_file), timeout=10)
    assert no_cert.status_code == 401


def test_coalesced_change_sets_carry_the_latest_records(
        make_club, mosquitto: MosquittoBroker, club_pki: ClubPki) -> None:
    club = make_club(mosquitto)
    club.change_coalesce_s = 0.5
    club.upsert_members([{"member_id": "m-1", "balances": {"points": 0}}])
    t = RawTerminal(mosquitto, club_pki, "T-C")
    try:
        p = f"clubterm/v1/{club.club_id}"
        t.subscribe(f"{p}/members/changes")
        for i in range(1, 4):
            t.publish(f"{p}/terminals/T-C/events", {"batch": f"b{i}", "terminal_id": "T-C",
                                                   "events": [sale(i, "m-1", terminal="T-C")]})
        _, change = t.get(timeout=5)
        # One set from the seed's version to the newest (the club may have taken the
        # three batches in one to three transactions: one version bump each).
        assert change["from_version"] == 1
        assert change["to_version"] == club.ledger.members_version() > 1
        assert [m["balances"]["points"] for m in change["members"]] == [30]
        assert change["members"][0]["applied"] == {"T-C": 3}
    finally:
        t.close()
