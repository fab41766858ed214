"""The simulated club: the club side of ``protocol.md`` for tests and the demo.

It subscribes to every terminal's events, applies them to its own ledger exactly
once (see :mod:`hw_sim.club.ledger`), answers each batch with an ack, publishes
member change sets and signed rule bundles, serves the member snapshot over
HTTPS, sends commands and keeps what terminals report. :class:`Faults` makes it
misbehave on purpose for tests.
"""

from __future__ import annotations

import json
import logging
import queue
import random
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from agent.protocol import sync as wire
from agent.protocol.base import encode as protocol_encode
from agent.sync.topics import scope_changes_topic
from hw_sim.club.bundles import (
    INLINE_MAX_BYTES,
    SigningKey,
    document_body,
    encode_bundle,
    make_bundle,
    make_manifest,
    sign_envelope,
    sign_manifest,
)
from hw_sim.club.catalogue import encode_catalogue, make_catalogue, make_changes
from hw_sim.club.https import ClubHttpServer, Request, Response
from hw_sim.club.ledger import Ledger, PreparedBatch, prepare_batch
from hw_sim.club.staff import apply_staff_change, make_staff_list

log = logging.getLogger("hw_sim.club")

MAX_CHANGE_SET_BYTES = 200 * 1024
MAX_GROUP = 8  # batches of one terminal the ledger may take in one transaction


@dataclass
class Faults:
    """Ways to misbehave, switched on by tests."""

    drop_acks: int = 0  # drop the next N acks
    drop_ack_rate: float = 0.0  # drop this share of acks (seeded)
    delay_acks_s: float = 0.0
    ack_twice: bool = False
    skip_change_sets: int = 0  # do not publish the next N change sets (terminals see a gap)
    pause_events: bool = False  # hold incoming batches unprocessed until cleared
    v1_members: bool = False  # a v1 club: no member scopes, no lookup route
    lookup_delay_s: float = 0.0  # the member lookup answers this late (a hanging club)
    lookup_body: bytes | None = None  # the member lookup answers this instead (hostile)
    reject_if: Callable[[dict[str, Any]], str | None] | None = None
    seed: int = 1
    _rng: random.Random = field(default_factory=random.Random)


@dataclass(frozen=True)
class ClubTls:
    """Files the club uses: the CA, its MQTT client certificate, its HTTPS certificate."""

    ca: Path
    client_cert: Path
    client_key: Path
    server_cert: Path
    server_key: Path


DOCUMENT_ROUTE = r"/v1/clubs/[a-z0-9-]+/merchants/[A-Za-z0-9_.-]+/bundles/[0-9]+"


class SimClub:
    """One simulated club back end (MQTT + HTTPS + ledger)."""

    def __init__(self, state_dir: Path, broker_url: str, *, club_id: str = "acme",
                 tls: ClubTls | None = None, timezone: str = "Europe/Berlin",
                 signing_key: SigningKey | None = None, https: bool = True,
                 https_port: int = 0, client_id: str | None = None,
                 change_coalesce_s: float = 0.0, mqtt_version: str = "5"):
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.club_id = club_id
        self.prefix = f"clubterm/v1/{club_id}"
        self.broker_url = broker_url
        self.tls = tls
        self.timezone = timezone
        self.ledger = Ledger(self.state_dir / "club.db", timezone=timezone)
        self.signing_key = signing_key or SigningKey.load_or_create(self.state_dir / "keys")
        self.faults = Faults()
        self.statuses: dict[str, dict[str, Any]] = {}
        self.command_results: dict[str, list[dict[str, Any]]] = {}
        self.snapshot_requests: list[tuple[str | None, int]] = []
        # The staff list body last published per merchant, and staff_change events seen.
        self.staff_lists: dict[str, dict[str, Any]] = {}
        self.staff_changes: list[dict[str, Any]] = []
        # The whole catalogue last published per merchant.
        self.catalogues: dict[str, dict[str, Any]] = {}
        self.acks_sent = 0
        self.batches_received = 0
        self._cond = threading.Condition()
        self._work: queue.Queue[tuple[str, bytes] | None] = queue.Queue()
        self._held: list[tuple[str, PreparedBatch]] = []
        self._lookahead: tuple[str, bytes] | None = None
        self._worker: threading.Thread | None = None
        self._connected = threading.Event()
        self._stopped = False
        self.change_coalesce_s = change_coalesce_s
        self.mqtt_version = mqtt_version  # "5" or "3.1.1" (brokers that speak only that)
        self._coalesced: dict[str, dict[str, Any]] = {}
        self._coalesced_from: int | None = None
        self._coalesced_to = 0
        self._coalesced_due: float | None = None
        # Member scopes (docs/protocol/club.md, "Member scopes"): each scope's last
        # club version published, and the scopes each member was last published to.
        self._scope_versions: dict[str, int] = {}
        self._member_scopes: dict[str, set[str]] = {}
        self.lookup_requests: list[tuple[str | None, str]] = []
        self.client = self._make_client(client_id or f"clubterm-club-{club_id}")
        self.http: ClubHttpServer | None = None
        if https:
            http_tls = (tls.ca, tls.server_cert, tls.server_key) if tls else None
            self.http = ClubHttpServer(port=https_port, tls=http_tls)
            self.http.add_route("GET", r"/v1/clubs/(?P<club>[a-z0-9-]+)/members",
                                self._snapshot_route)
            self.http.add_route("POST", r"/v1/clubs/(?P<club>[a-z0-9-]+)/members/lookup",
                                self._lookup_route)
            self.http.add_route("GET", DOCUMENT_ROUTE, self._document_route)
        # Documents served over HTTPS by path (large bundles), and who fetched which.
        self.inline_max_bytes = INLINE_MAX_BYTES
        self.documents: dict[str, bytes] = {}
        self.document_requests: list[tuple[str | None, str]] = []

    # ---- lifecycle -----------------------------------------------------------

    def _make_client(self, client_id: str) -> mqtt.Client:
        if self.mqtt_version == "3.1.1":
            c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                            protocol=mqtt.MQTTv311, clean_session=False)
        else:
            c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                            protocol=mqtt.MQTTv5)
        c.max_inflight_messages_set(200)
        if self.tls is not None:
            ctx = ssl.create_default_context(cafile=str(self.tls.ca))
            ctx.load_cert_chain(str(self.tls.client_cert), str(self.tls.client_key))
            c.tls_set_context(ctx)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        c.reconnect_delay_set(0.05, 1)  # type: ignore[arg-type]  # paho takes float seconds
        return c

    @property
    def central_url(self) -> str:
        assert self.http is not None
        return self.http.url

    def start(self, timeout: float = 10.0) -> None:
        """Connect, subscribe and start the worker and the HTTPS server."""
        self._worker = threading.Thread(target=self._work_loop, name="club-worker", daemon=True)
        self._worker.start()
        if self.http is not None:
            self.http.start()
        u = urlsplit(self.broker_url)
        if self.mqtt_version == "3.1.1":
            self.client.connect(u.hostname or "127.0.0.1", u.port or 1883, keepalive=10)
        else:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = 7 * 24 * 3600
            self.client.connect(u.hostname or "127.0.0.1", u.port or 1883, keepalive=10,
                                clean_start=False, properties=props)
        self.client.loop_start()
        if not self._connected.wait(timeout):
            raise RuntimeError("the simulated club could not connect to the broker")

    def stop(self) -> None:
        """Disconnect and stop; safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        self.client.disconnect()
        self.client.loop_stop()
        self._work.put(None)
        if self._worker is not None:
            self._worker.join(10)
        if self.http is not None:
            self.http.stop()
        self.ledger.close()

    def __enter__(self) -> SimClub:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                    properties: Any) -> None:
        if reason.is_failure:
            log.error("club connect refused: %s", reason)
            return
        client.subscribe([(f"{self.prefix}/terminals/+/events", 1),
                          (f"{self.prefix}/terminals/+/status", 1),
                          (f"{self.prefix}/terminals/+/command-results", 1)])
        self._connected.set()

    def _on_disconnect(self, *args: Any) -> None:
        self._connected.clear()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        self._work.put((msg.topic, bytes(msg.payload)))

    # ---- incoming ------------------------------------------------------------

    def _next_item(self) -> tuple[str, bytes] | None:
        """The next message for the worker (``("", b"")`` when a change set is due)."""
        if self._lookahead is not None:
            item, self._lookahead = self._lookahead, None
            return item
        timeout = None
        if self._coalesced_due is not None:
            timeout = max(0.0, self._coalesced_due - time.monotonic())
        try:
            return self._work.get(timeout=timeout)
        except queue.Empty:
            return ("", b"")

    def _prepare(self, terminal_id: str, payload: bytes) -> PreparedBatch | None:
        try:
            return prepare_batch(terminal_id, payload)  # each event's text kept as is
        except ValueError as exc:
            log.warning("malformed batch from %s: %s", terminal_id, exc)
            return None

    def _more_batches(self, topic: str, terminal_id: str) -> list[PreparedBatch]:
        """Batches of the same terminal already waiting right behind one (at most
        ``MAX_GROUP - 1``): the ledger takes them in one transaction."""
        more: list[PreparedBatch] = []
        while len(more) < MAX_GROUP - 1:
            try:
                item = self._work.get_nowait()
            except queue.Empty:
                break
            if item is None:  # stopping: seen again by the loop after this group
                self._work.put(None)
                break
            if item[0] != topic:
                self._lookahead = item
                break
            batch = self._prepare(terminal_id, item[1])
            if batch is not None:
                more.append(batch)
        return more

    def _work_loop(self) -> None:
        while True:
            item = self._next_item()
            if item is None:
                self._flush_coalesced()
                return
            topic, payload = item
            try:
                if topic:
                    self._handle(topic, payload)
                if self._coalesced_due is not None and time.monotonic() >= self._coalesced_due:
                    self._flush_coalesced()
            except Exception:
                log.exception("club failed on a message on %s", topic)

    def _handle(self, topic: str, payload: bytes) -> None:
        if self._held and not self.faults.pause_events:
            held, self._held = self._held, []
            for held_topic, held_batch in held:
                self._handle_batches(held_topic, [held_batch])
        parts = topic[len(self.prefix) + 1:].split("/")
        if len(parts) != 3 or parts[0] != "terminals":
            return
        terminal_id, kind = parts[1], parts[2]
        if kind == "events":
            batch = self._prepare(terminal_id, payload)
            if batch is None:
                return
            if self.faults.pause_events:
                self._held.append((topic, batch))
                return
            self._handle_batches(topic, [batch, *self._more_batches(topic, terminal_id)])
            return
        try:
            doc = json.loads(payload) if payload else None
        except ValueError:
            log.warning("malformed JSON from %s on %s", terminal_id, kind)
            return
        if kind == "status":
            with self._cond:
                if isinstance(doc, dict):
                    self.statuses[terminal_id] = doc
                self._cond.notify_all()
        elif kind == "command-results":
            if isinstance(doc, dict) and isinstance(doc.get("id"), str):
                with self._cond:
                    self.command_results.setdefault(doc["id"], []).append(doc)
                    self._cond.notify_all()

    def release_held(self) -> None:
        """Process batches held while ``pause_events`` was on."""
        self.faults.pause_events = False
        self._work.put((f"{self.prefix}/terminals/_/noop", b""))

    def _handle_batches(self, topic: str, batches: list[PreparedBatch]) -> None:
        """Take batches of one terminal (in one ledger transaction), then ack each."""
        terminal_id = topic[len(self.prefix) + 1:].split("/")[1]
        results = self.ledger.receive_batches(terminal_id, batches,
                                              reject_if=self.faults.reject_if)
        last = results[-1]
        if last.changed_members:
            if self.change_coalesce_s > 0:
                self._coalesce(last.from_version, last.to_version, last.changed_members)
            else:
                self._publish_changes(last.from_version, last.to_version, last.changed_members)
        self._take_staff_changes(batches, results)
        with self._cond:
            self.batches_received += len(batches)
            self._cond.notify_all()
        for batch, result in zip(batches, results, strict=True):
            self._send_ack(terminal_id, wire.Ack(
                batch=batch.doc.get("batch"), accepted=result.accepted,
                rejected=[wire.Rejected(id=r["id"], reason=r["reason"]) for r in result.rejected],
                applied_seq=result.applied_seq))

    def _send_ack(self, terminal_id: str, ack: wire.Ack) -> None:
        f = self.faults
        if f.drop_acks > 0:
            f.drop_acks -= 1
            log.info("fault: dropping an ack to %s", terminal_id)
            return
        if f.drop_ack_rate and f._rng.random() < f.drop_ack_rate:
            return
        topic = f"{self.prefix}/terminals/{terminal_id}/acks"
        data = protocol_encode(ack)  # the agent's own Ack definition (agent/protocol)

        def send() -> None:
            for _ in range(2 if f.ack_twice else 1):
                self.client.publish(topic, data, qos=1)
                self.acks_sent += 1

        if f.delay_acks_s > 0:
            threading.Timer(f.delay_acks_s, send).start()
        else:
            send()

    # ---- members -------------------------------------------------------------

    def _coalesce(self, from_version: int, to_version: int,
                  records: list[dict[str, Any]]) -> None:
        """Gather changes for ``change_coalesce_s``: one change set then carries the
        latest record of every member changed, instead of one set per batch (every
        terminal applies every change set, so a busy club must not send hundreds)."""
        if self._coalesced_from is None:
            self._coalesced_from = from_version
            self._coalesced_due = time.monotonic() + self.change_coalesce_s
        self._coalesced_to = to_version
        for rec in records:
            self._coalesced[rec["member_id"]] = rec

    def _flush_coalesced(self) -> None:
        if self._coalesced_from is None:
            return
        records = list(self._coalesced.values())
        start, end = self._coalesced_from, self._coalesced_to
        self._coalesced.clear()
        self._coalesced_from = self._coalesced_due = None
        self._publish_changes(start, end, records)

    def _publish_changes(self, from_version: int, to_version: int,
                         records: list[dict[str, Any]], removed: list[str] | None = None) -> None:
        """Publish change sets club-wide (v1) and to each member scope they touch."""
        self._publish_stream(f"{self.prefix}/members/changes", from_version, to_version,
                             records, removed or [])
        if self.faults.v1_members:
            return
        for scope, (recs, gone) in self._by_scope(records, removed or []).items():
            start = self._scope_version(scope)
            self._scope_versions[scope] = max(start, to_version)
            self._publish_stream(scope_changes_topic(self.club_id, scope), start,
                                 max(start, to_version), recs, gone)

    def _by_scope(self, records: list[dict[str, Any]], removed: list[str]
                  ) -> dict[str, tuple[list[dict[str, Any]], list[str]]]:
        """Per scope: the records now in it, and the members that left it (moved or removed)."""
        out: dict[str, tuple[list[dict[str, Any]], list[str]]] = {}
        for rec in records:
            new = {s for s in rec.get("scopes") or [] if isinstance(s, str)}
            old = self._scopes_of(rec["member_id"])
            for scope in new:
                out.setdefault(scope, ([], []))[0].append(rec)
            for scope in old - new:
                out.setdefault(scope, ([], []))[1].append(rec["member_id"])
            self._member_scopes[rec["member_id"]] = new
        for member_id in removed:
            for scope in self._member_scopes.pop(member_id, set()):
                out.setdefault(scope, ([], []))[1].append(member_id)
        return out

    def _scopes_of(self, member_id: str) -> set[str]:
        return self._member_scopes.get(member_id, set())

    def _scope_version(self, scope: str) -> int:
        """The club version of the scope's last change set (from the ledger after a restart)."""
        if scope not in self._scope_versions:
            _, lines = self.ledger.snapshot(0)
            self._scope_versions[scope] = max(
                (r["version"] for r in map(json.loads, lines) if scope in (r.get("scopes") or [])),
                default=0)
        return self._scope_versions[scope]

    def _publish_stream(self, topic: str, from_version: int, to_version: int,
                        records: list[dict[str, Any]], removed: list[str]) -> None:
        """Publish change sets on one stream, split so each stays under the size limit."""
        records = sorted(records, key=lambda r: r["version"])
        chunks: list[list[dict[str, Any]]] = [[]]
        size = 0
        for rec in records:
            n = len(json.dumps(rec))
            if chunks[-1] and size + n > MAX_CHANGE_SET_BYTES:
                chunks.append([])
                size = 0
            chunks[-1].append(rec)
            size += n
        start = from_version
        for i, chunk in enumerate(chunks):
            end = max(start, chunk[-1]["version"]) if chunk else to_version
            if i == len(chunks) - 1:
                end = to_version
            change = {"from_version": start, "to_version": end, "members": chunk,
                      "removed": removed if i == len(chunks) - 1 else []}
            start = end
            if self.faults.skip_change_sets > 0:
                self.faults.skip_change_sets -= 1
                log.info("fault: not publishing change set %s..%s", change["from_version"], end)
                continue
            self.client.publish(topic, json.dumps(change).encode(), qos=1)

    def upsert_members(self, records: list[dict[str, Any]], *, publish: bool = True) -> int:
        """Create or replace members (seeding, tests); returns the new members version."""
        start, end, out = self.ledger.upsert_members(records)
        if publish and out:
            self._publish_changes(start, end, out)
        return end

    def remove_member(self, member_id: str, *, publish: bool = True) -> int:
        """Delete a member: a change set with its tombstone (a ``{"member_id",
        "version", "removed": true}`` row, and the v1 ``removed`` id), and a tombstone
        line in later delta snapshots; returns the new members version."""
        start, end = self.ledger.remove_member(member_id)
        if publish:
            self._publish_changes(start, end, [{"member_id": member_id, "version": end,
                                                "removed": True}], [member_id])
        return end

    def publish_raw_change(self, change: dict[str, Any] | bytes) -> None:
        """Publish anything on the changes topic (malformed-message tests)."""
        data = change if isinstance(change, bytes) else json.dumps(change).encode()
        self.client.publish(f"{self.prefix}/members/changes", data, qos=1)

    def _snapshot_route(self, req: Request) -> Response:
        if req.match.group("club") != self.club_id:
            return Response(404, b"no such club\n")
        try:
            since = int(req.arg("since", "0") or 0)
        except ValueError:
            return Response(400, b"since must be a whole number\n")
        version, lines = self.ledger.snapshot(since)
        with self._cond:
            self.snapshot_requests.append((req.client_cn, since))
            self._cond.notify_all()
        scope = req.arg("scope")
        if scope is not None and scope != "club" and not self.faults.v1_members:
            return self._scoped_snapshot(scope, lines)
        return Response(200, (line.encode() + b"\n" for line in lines),
                        {"Content-Type": "application/x-ndjson",
                         "X-Members-Version": str(version)})

    def _scoped_snapshot(self, scope: str, lines: Iterator[str]) -> Response:
        """The members of one scope, at the scope's version (its last change set's)."""
        kind, _, ident = scope.partition(":")
        if kind not in ("merchant", "group") or not ident or any(c in ident for c in "/+#"):
            return Response.error(400, "bad_scope", f"{scope[:80]!r} is not a member scope")
        kept = [line for line in lines if scope in (json.loads(line).get("scopes") or [])]
        version = max([self._scope_version(scope)]
                      + [json.loads(line)["version"] for line in kept])
        return Response(200, (line.encode() + b"\n" for line in kept),
                        {"Content-Type": "application/x-ndjson",
                         "X-Members-Version": str(version), "X-Members-Scope": scope})

    def _lookup_route(self, req: Request) -> Response:
        """``POST …/members/lookup`` ``{"token"}``: one member, whatever its scope."""
        if req.match.group("club") != self.club_id or self.faults.v1_members:
            return Response(404, b"no such route\n")
        doc = req.json()
        token = doc.get("token") if isinstance(doc, dict) else None
        if not isinstance(token, str) or not 3 <= len(token) <= 600:
            return Response.error(400, "bad_request", "token must be an identifier token")
        with self._cond:
            self.lookup_requests.append((req.client_cn, token))
            self._cond.notify_all()
        if self.faults.lookup_delay_s > 0:
            time.sleep(self.faults.lookup_delay_s)
        if self.faults.lookup_body is not None:
            return Response(200, self.faults.lookup_body, {"Content-Type": "application/json"})
        record = self.ledger.member_by_token(token)
        if record is None:
            lost_by = self.ledger.lost_card_holder(token)
            if lost_by is not None:  # (1.3) reported lost: said so, and by whom
                return Response.json({"error": "card_lost", "member_id": lost_by,
                                      "message": "this card was reported lost"}, 404)
            return Response.error(404, "unknown_member", "no member holds this identifier")
        return Response.json({"member": record})

    def _document_route(self, req: Request) -> Response:
        body = self.documents.get(req.path)
        with self._cond:
            self.document_requests.append((req.client_cn, req.path))
            self._cond.notify_all()
        if body is None:
            return Response(404, b"no such document\n")
        return Response(200, body, {"Content-Type": "application/octet-stream"})

    # ---- rules ---------------------------------------------------------------

    def publish_bundle(self, merchant: str, version: int, *, bundle: dict[str, Any] | None = None,
                       bad_signature: bool = False, for_merchant: str | None = None,
                       key: SigningKey | None = None, manifest: bool | None = None,
                       gzip_body: bool = True, **bundle_args: Any) -> dict[str, Any]:
        """Sign and publish (retained) a bundle for ``merchant``; returns the envelope.

        ``for_merchant`` publishes on ``merchant``'s topic a bundle naming another
        merchant; ``bad_signature`` flips a bit of the signature. A signed bundle
        over :attr:`inline_max_bytes` (or any, with ``manifest=True``) is served over
        HTTPS and a signed manifest is published instead (``gzip_body``: sent gzip'd).
        """
        if bundle is None:
            bundle = make_bundle(self.club_id, for_merchant or merchant, version,
                                 timezone=self.timezone, **bundle_args)
        key = key or self.signing_key
        envelope: dict[str, Any] = sign_envelope(encode_bundle(bundle), key.key, key.key_id)
        if bad_signature:
            import base64
            sig = bytearray(base64.b64decode(envelope["sig"]))
            sig[0] ^= 0x01
            envelope["sig"] = base64.b64encode(bytes(sig)).decode()
        size = len(json.dumps(envelope).encode())
        if manifest or (manifest is None and size > self.inline_max_bytes
                        and self.http is not None):
            self.publish_bundle_manifest(merchant, envelope, int(bundle["version"]),
                                         gzip_body=gzip_body)
        else:
            self.publish_raw_bundle(merchant, envelope)
        return envelope

    def publish_bundle_manifest(self, merchant: str, envelope: dict[str, Any], version: int,
                                *, gzip_body: bool = True, club: str | None = None,
                                key: SigningKey | None = None,
                                spoil: Callable[[dict[str, Any]], None] | None = None
                                ) -> dict[str, Any]:
        """Serve ``envelope`` over HTTPS and publish its signed manifest (retained);
        returns the manifest. ``spoil`` edits the manifest before it is signed (tests)."""
        path = f"/v1/clubs/{self.club_id}/merchants/{merchant}/bundles/{version}"
        body = document_body(envelope, gzip_body=gzip_body)
        self.documents[path] = body
        doc = make_manifest("bundle", club or self.club_id, merchant, version, body, path,
                            gzip_body=gzip_body)
        if spoil is not None:
            spoil(doc)
        self.publish_raw_bundle(merchant, sign_manifest(doc, key or self.signing_key))
        return doc

    def publish_raw_bundle(self, merchant: str, envelope: dict[str, Any] | bytes) -> None:
        data = envelope if isinstance(envelope, bytes) else json.dumps(envelope).encode()
        info = self.client.publish(f"{self.prefix}/merchants/{merchant}/rules", data, qos=1,
                                   retain=True)
        info.wait_for_publish(10)

    # ---- the product catalogue -------------------------------------------------

    def _sign(self, body: bytes, key: SigningKey | None, bad_signature: bool) -> dict[str, Any]:
        key = key or self.signing_key
        envelope: dict[str, Any] = sign_envelope(body, key.key, key.key_id)
        if bad_signature:
            import base64
            sig = bytearray(base64.b64decode(envelope["sig"]))
            sig[0] ^= 0x01
            envelope["sig"] = base64.b64encode(bytes(sig)).decode()
        return envelope

    def publish_catalogue(self, merchant: str, version: int | None = None, *,
                          doc: dict[str, Any] | None = None,
                          products: list[dict[str, Any]] | None = None,
                          bad_signature: bool = False, for_merchant: str | None = None,
                          key: SigningKey | None = None) -> dict[str, Any]:
        """Sign and publish (retained) ``merchant``'s whole catalogue; returns the envelope.

        The demo's products unless ``products`` (or a whole ``doc``) is given;
        ``version`` defaults to one more than the last published.
        """
        if doc is None:
            last = self.catalogues.get(merchant)
            if version is None:
                version = (last["version"] + 1) if last else 1
            doc = make_catalogue(self.club_id, for_merchant or merchant, version,
                                 products=products)
        envelope = self._sign(encode_catalogue(doc), key, bad_signature)
        if not bad_signature and for_merchant is None:
            self.catalogues[merchant] = doc
        self.publish_raw_catalogue(merchant, envelope)
        return envelope

    def change_catalogue(self, merchant: str, *, upserts: list[dict[str, Any]] | None = None,
                         removed: list[str] | None = None) -> dict[str, Any]:
        """Change ``merchant``'s catalogue: a signed change set from the last version
        (not retained), then the new whole catalogue (retained) for terminals that
        missed it. Returns the change set's envelope."""
        last = self.catalogues[merchant]
        version = last["version"] + 1
        gone = set(removed or ())
        changed = {p["sku"]: p for p in upserts or ()}
        products = [changed.pop(p["sku"], p) for p in last["products"] if p["sku"] not in gone]
        products.extend(changed.values())
        change = make_changes(self.club_id, merchant, last["version"], version,
                              upserts=list(upserts or ()), removed=list(removed or ()))
        envelope = self._sign(encode_catalogue(change), None, False)
        self.publish_raw_catalogue(merchant, envelope, changes=True)
        self.publish_catalogue(merchant, version, products=products)
        return envelope

    def publish_raw_catalogue(self, merchant: str, envelope: dict[str, Any] | bytes, *,
                              changes: bool = False) -> None:
        """Publish anything on the catalogue topic (retained) or its change-set topic."""
        data = envelope if isinstance(envelope, bytes) else json.dumps(envelope).encode()
        topic = f"{self.prefix}/merchants/{merchant}/catalogue" + ("/changes" if changes else "")
        info = self.client.publish(topic, data, qos=1, retain=not changes)
        info.wait_for_publish(30)

    # ---- staff ---------------------------------------------------------------

    def publish_staff(self, merchant: str, version: int | None = None, *,
                      staff: list[dict[str, Any]] | None = None,
                      groups: dict[str, Any] | None = None, body: dict[str, Any] | None = None,
                      bad_signature: bool = False, for_merchant: str | None = None,
                      key: SigningKey | None = None) -> dict[str, Any]:
        """Sign and publish (retained) ``merchant``'s staff list; returns the envelope.

        The demo staff unless ``staff`` is given; ``version`` defaults to one more
        than the last published. ``for_merchant`` names another merchant in the
        body; ``bad_signature`` flips a bit of the signature.
        """
        if body is None:
            last = self.staff_lists.get(merchant)
            if version is None:
                version = (last["version"] + 1) if last else 1
            body = make_staff_list(self.club_id, for_merchant or merchant, version, staff,
                                   groups)
        key = key or self.signing_key
        envelope: dict[str, Any] = sign_envelope(encode_bundle(body), key.key, key.key_id)
        if bad_signature:
            import base64
            sig = bytearray(base64.b64decode(envelope["sig"]))
            sig[0] ^= 0x01
            envelope["sig"] = base64.b64encode(bytes(sig)).decode()
        elif for_merchant is None:
            self.staff_lists[merchant] = body
        self.publish_raw_staff(merchant, envelope)
        return envelope

    def publish_raw_staff(self, merchant: str, envelope: dict[str, Any] | bytes) -> None:
        data = envelope if isinstance(envelope, bytes) else json.dumps(envelope).encode()
        info = self.client.publish(f"{self.prefix}/merchants/{merchant}/staff", data, qos=1,
                                   retain=True)
        info.wait_for_publish(30)

    def _take_staff_changes(self, batches: list[PreparedBatch], results: list[Any]) -> None:
        """Staff created at a terminal join the merchant's list (a new version is
        published) when the club publishes one for that merchant."""
        changed: set[str] = set()
        for batch, result in zip(batches, results, strict=True):
            accepted = set(result.accepted)
            for ev in batch.events:
                if not isinstance(ev, dict) or ev.get("type") != "staff_change" \
                        or ev.get("id") not in accepted:
                    continue
                with self._cond:
                    self.staff_changes.append(ev)
                    self._cond.notify_all()
                merchant = str(ev.get("merchant_id"))
                body = self.staff_lists.get(merchant)
                if body is not None and apply_staff_change(body, ev):
                    changed.add(merchant)
        for merchant in changed:
            body = dict(self.staff_lists[merchant])
            body["version"] += 1
            self.publish_staff(merchant, body=body)
            self.staff_lists[merchant] = body

    # ---- commands ------------------------------------------------------------

    def send_command(self, terminal_id: str, type_: str, args: dict[str, Any] | None = None, *,
                     command_id: str | None = None) -> str:
        """Send a command; returns its id."""
        command_id = command_id or str(uuid.uuid4())
        doc = wire.Command(id=command_id, type=type_, args=args or {})
        self.client.publish(f"{self.prefix}/terminals/{terminal_id}/commands",
                            protocol_encode(doc), qos=1)
        return command_id

    def send_raw_command(self, terminal_id: str, data: bytes) -> None:
        self.client.publish(f"{self.prefix}/terminals/{terminal_id}/commands", data, qos=1)

    # ---- waiting (tests) -----------------------------------------------------

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 30.0,
                 what: str = "condition") -> None:
        """Wait until ``predicate()`` holds (checked after each message and every 0.2 s)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"club: timed out waiting for {what}")
                self._cond.wait(min(left, 0.2))

    def wait_applied(self, terminal_id: str, seq: int, timeout: float = 30.0) -> None:
        self.wait_for(lambda: self.ledger.applied_seq(terminal_id) >= seq, timeout,
                      f"{terminal_id} applied_seq >= {seq}")

    def wait_command_result(self, command_id: str, count: int = 1,
                            timeout: float = 30.0) -> list[dict[str, Any]]:
        self.wait_for(lambda: len(self.command_results.get(command_id, [])) >= count, timeout,
                      f"result of command {command_id}")
        return self.command_results[command_id]

    def wait_status(self, terminal_id: str, predicate: Callable[[dict[str, Any]], bool],
                    timeout: float = 30.0) -> dict[str, Any]:
        self.wait_for(lambda: terminal_id in self.statuses
                      and predicate(self.statuses[terminal_id]), timeout,
                      f"status of {terminal_id}")
        return self.statuses[terminal_id]


def now_utc() -> datetime:
    return datetime.now(UTC)
