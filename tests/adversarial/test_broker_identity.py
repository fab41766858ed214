"""#13.10: a terminal's certificate is its whole identity at the broker.

Attacks on the shipped broker configuration (hw_sim.broker, docs/sync.md "Broker
identity") with the real TLS mosquitto: one terminal's certificate asking for
another terminal's (or the club's) client id, publishing into another terminal's
or another club's topics, and the club account's name asked for as a terminal.
An observer on the broker's plain listener (no ACL) sees every message that got in.
"""

from __future__ import annotations

import json
import queue
import ssl
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from hw_sim.broker import MosquittoBroker, acl_text, club_account, is_terminal_id
from hw_sim.club import enrolment
from hw_sim.club.sim import SimClub
from tests.fixtures.club import ClubPki

pytestmark = pytest.mark.needs_mosquitto


class Client:
    """A bare paho MQTT 5 client: a terminal's certificate (``cn``) on the TLS
    listener, or none on the plain one."""

    def __init__(self, broker: MosquittoBroker, pki: ClubPki | None, cn: str | None, *,
                 client_id: str, clean_start: bool = False):
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.connacks: queue.Queue[tuple[Any, bool]] = queue.Queue()
        self.dropped = threading.Event()
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                             protocol=mqtt.MQTTv5)
        if pki is not None and cn is not None:
            files = pki.terminal_cert(cn)
            ctx = ssl.create_default_context(cafile=str(pki.ca.cert_file))
            ctx.load_cert_chain(str(files.cert), str(files.key))
            self.c.tls_set_context(ctx)
            port = broker.tls_port or 0
        else:
            port = broker.port
        self.c.on_message = lambda c, u, m: self.messages.put((m.topic, bytes(m.payload)))
        self.c.on_connect = lambda c, u, flags, rc, p: self.connacks.put(
            (rc, flags.session_present))
        self.c.on_disconnect = lambda *a: self.dropped.set()
        self.subacks: queue.Queue[list[Any]] = queue.Queue()
        self.c.on_subscribe = lambda c, u, mid, codes, p: self.subacks.put(codes)
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 3600
        self.c.connect("localhost" if pki else "127.0.0.1", port, clean_start=clean_start,
                       properties=props)
        self.c.loop_start()
        rc, self.session_present = self.connacks.get(timeout=5)
        assert not rc.is_failure, rc

    def subscribe(self, topic: str) -> list[Any]:
        self.c.subscribe(topic, qos=1)
        return self.subacks.get(timeout=5)

    def publish(self, topic: str, doc: Any) -> None:
        self.c.publish(topic, json.dumps(doc), qos=1).wait_for_publish(5)

    def drain(self, quiet: float = 0.5) -> list[tuple[str, Any]]:
        out = []
        while True:
            try:
                topic, payload = self.messages.get(timeout=quiet)
            except queue.Empty:
                return out
            out.append((topic, json.loads(payload)))

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def test_a_terminal_cannot_take_over_another_terminals_session(
        mosquitto: MosquittoBroker, club_pki: ClubPki) -> None:
    """T-A's certificate asking for T-B's client id (the link's `clubterm-T-B`, or
    the CN itself) neither drops T-B nor destroys its session and queued acks."""
    p = f"clubterm/v1/{mosquitto.club_id}/terminals/T-B"
    club = Client(mosquitto, None, None, client_id="observer")
    b = Client(mosquitto, club_pki, "T-B", client_id="clubterm-T-B")
    assert b.subscribe(f"{p}/acks")[0].value == 1
    # B online: A's attempts with B's ids must not disconnect B.
    attackers = [Client(mosquitto, club_pki, "T-A", client_id=cid, clean_start=True)
                 for cid in ("clubterm-T-B", "T-B")]
    club.publish(f"{p}/acks", {"batch": "online", "accepted": [], "rejected": []})
    assert [doc["batch"] for _, doc in b.drain()] == ["online"]
    assert not b.dropped.is_set(), "T-A's certificate disconnected T-B"
    # B away: acks queue for it; A's clean-start attempts must not wipe them.
    b.close()
    sent = [f"queued-{i}" for i in range(20)]
    for batch in sent:
        club.publish(f"{p}/acks", {"batch": batch, "accepted": [], "rejected": []})
    attackers += [Client(mosquitto, club_pki, "T-A", client_id=cid, clean_start=True)
                  for cid in ("clubterm-T-B", "T-B", "")]
    # Whatever id they asked for, every attempt was client `T-A`: each one took
    # over the one before it (its own session), never B's.
    expected = [True] * (len(attackers) - 1) + [False]
    deadline = time.monotonic() + 10   # the broker's takeovers, on a busy machine
    while [a.dropped.is_set() for a in attackers] != expected and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [a.dropped.is_set() for a in attackers] == expected
    # Nor may A read B's acks by subscribing to them.
    attackers[-1].subscribe(f"{p}/acks")
    club.publish(f"{p}/acks", {"batch": "last", "accepted": [], "rejected": []})
    back = Client(mosquitto, club_pki, "T-B", client_id="clubterm-T-B")
    got = [doc["batch"] for _, doc in back.drain()]
    stolen = sum(len(a.drain(0.1)) for a in attackers)
    print(f"figure: {len(attackers)} takeover attempts; T-B session kept: "
          f"{back.session_present}; {len(got)}/{len(sent) + 1} queued acks delivered; "
          f"{stolen} read by T-A")
    assert back.session_present
    assert got == [*sent, "last"]
    assert stolen == 0
    for c in (*attackers, back, club):
        c.close()


def test_a_terminal_publishes_only_into_its_own_topics_of_its_own_club(
        mosquitto: MosquittoBroker, club_pki: ClubPki) -> None:
    club_id = mosquitto.club_id
    observer = Client(mosquitto, None, None, client_id="observer")
    observer.subscribe("#")
    a = Client(mosquitto, club_pki, "T-A", client_id="clubterm-T-A")
    own = f"clubterm/v1/{club_id}/terminals/T-A/events"
    forbidden = [
        "clubterm/v1/other-club/terminals/T-A/events",   # its own id, another club
        "clubterm/v1/other-club/terminals/T-A/status",
        "clubterm/v1/other-club/members/changes",
        "clubterm/v1/other-club/merchants/M-7/rules",
        f"clubterm/v1/{club_id}/terminals/T-B/events",   # another terminal of its club
        f"clubterm/v1/{club_id}/terminals/T-A/acks",     # forging its own acks
        f"clubterm/v1/{club_id}/terminals/T-A/commands",
        f"clubterm/v1/{club_id}/members/changes",
        f"clubterm/v1/{club_id}/merchants/M-7/rules",
    ]
    for topic in forbidden:
        a.publish(topic, {"forged": topic})
    a.publish(own, {"batch": "mine"})
    seen = [topic for topic, _ in observer.drain()]
    print(f"figure: {len(forbidden)} forged topics published, "
          f"{sum(t in forbidden for t in seen)} arrived; own topic arrived: {own in seen}")
    assert seen == [own]
    # Nor can it read another club's traffic for its id.
    a.subscribe("clubterm/v1/other-club/terminals/T-A/acks")
    observer.publish("clubterm/v1/other-club/terminals/T-A/acks", {"batch": "x"})
    assert a.drain(0.3) == []
    for c in (a, observer):
        c.close()


def test_the_club_account_cannot_be_a_terminal(
        mosquitto: MosquittoBroker, club_pki: ClubPki, sim_club: SimClub) -> None:
    """The club's CN is outside the terminal id pattern, so no issuer makes a
    terminal certificate with it; and a terminal asking for the club's client id
    neither drops the club nor reads what the club reads."""
    account = club_account(sim_club.club_id)
    assert not is_terminal_id(account)
    for name in (account, "club:x", "club:", "a/b", "+", "#", "T 1", "", "x" * 129):
        assert not is_terminal_id(name), name
    with pytest.raises(ValueError, match="could be a terminal id"):
        acl_text("acme", club_user="club")
    # The issuers refuse such a CN: the enrolment service's codes, the club CA.
    service = enrolment.EnrolmentService(club_pki.ca, club_id="acme",
                                         pan_key=b"p" * 32, rules_keys={}, broker_url="mqtts://x",
                                         central_url="https://x")
    with pytest.raises(ValueError, match="cannot be a terminal id"):
        service.create_code(account, "M-7")
    assert service.create_code("T-0001", "M-7")
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, account)]))
           .sign(key, hashes.SHA256()))
    with pytest.raises(ValueError, match="not a terminal id"):
        club_pki.ca.sign_terminal(account, key.public_key(), days=1)
    with pytest.raises(ValueError, match="not a terminal id"):
        club_pki.ca.sign_csr(csr.public_bytes(serialization.Encoding.PEM))
    # At the broker: a terminal asking for the club's client id gets its own.
    p = f"clubterm/v1/{sim_club.club_id}"
    dropped = threading.Event()
    sim_club.client.on_disconnect = lambda *a: dropped.set()
    impostors = [Client(mosquitto, club_pki, "T-A", client_id=cid, clean_start=True)
                 for cid in (account, f"clubterm-club-{sim_club.club_id}")]
    impostors[-1].subscribe(f"{p}/terminals/+/events")
    t = Client(mosquitto, club_pki, "T-B", client_id="clubterm-T-B")
    t.publish(f"{p}/terminals/T-B/events", {"batch": "b", "terminal_id": "T-B", "events": []})
    read = sum(len(imp.drain(0.3)) for imp in impostors)
    time.sleep(0.3)
    print(f"figure: {len(impostors)} impostors with the club's client id; club dropped: "
          f"{dropped.is_set()}; terminal events they read: {read}")
    assert not dropped.is_set()
    assert read == 0
    assert sim_club.batches_received >= 1  # the club itself still receives
    for c in (*impostors, t):
        c.close()
