"""The MQTT session: paho-mqtt 2.x behind a thread of our own.

paho's callbacks only convert what happened into a :data:`SessionEvent` and put
it on the inbox the link's worker reads (as aiomqtt does); nothing else runs on
the network thread. The thread reconnects with its own loop: exponential backoff
with full jitter (:mod:`agent.sync.backoff`), so a fleet that lost the broker
together does not come back in waves. No private part of paho is used.

The session is persistent (MQTT 5: clean start off, session expiry from the
tuning; MQTT 3.1.1: clean session off, the broker's own expiry) and leaves a
retained ``{"state": "offline"}`` will on the status topic.

Several brokers (the nodes of a cluster, ``[club] broker_urls``) and DNS names
with several addresses are tried in turn (:func:`broker_endpoints`): each attempt
goes to the next address, after the same jittered backoff, and the session stays
on a broker while it works. The client id never changes, so a cluster that shares
sessions hands the terminal its session on whichever node it reaches.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import queue
import random
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from agent.errors import LinkError
from agent.sync.backoff import full_jitter_delay
from agent.sync.topics import Topics
from agent.sync.tuning import LinkTuning

log = logging.getLogger("agent.sync")

_LOOP_S = 0.2  # one network loop at most; also how soon a stop is seen
_STOP_GRACE_S = 2.0  # for the DISCONNECT to go out at stop
MAX_ADDRESSES = 8  # of one DNS name: more are not tried (a round stays bounded)


@dataclass(frozen=True)
class Endpoint:
    """One address of one configured broker: what a connection attempt goes to."""

    url: str
    name: str  # the host name of the URL: TLS checks the certificate against it
    address: str  # what the TCP connection goes to (the name itself if unresolved)
    port: int
    tls: bool

    @property
    def label(self) -> str:
        """How the status names it: the URL, and the address when the name has several."""
        return self.url if self.address == self.name else f"{self.url} ({self.address})"


Resolver = Callable[[str, int], list[str]]


def resolve_addresses(name: str, port: int) -> list[str]:
    """The TCP addresses of ``name`` in the resolver's order, without repeats."""
    found: list[str] = []
    for info in socket.getaddrinfo(name, port, type=socket.SOCK_STREAM):
        address = str(info[4][0])
        if address not in found:
            found.append(address)
    return found


def broker_endpoints(urls: Sequence[str], resolve: Resolver = resolve_addresses
                     ) -> list[Endpoint]:
    """Every address of every broker URL, in order: the URLs as configured, each name's
    addresses as the resolver gives them (at most :data:`MAX_ADDRESSES`).

    A name that does not resolve now stays in the list as itself: the attempt then
    fails and says so, and the next round resolves it again.
    """
    out: list[Endpoint] = []
    for url in urls:
        u = urlsplit(url)
        name = u.hostname or "localhost"
        tls = u.scheme == "mqtts"
        port = u.port or (8883 if tls else 1883)
        try:
            ipaddress.ip_address(name)
            addresses = [name]
        except ValueError:
            try:
                addresses = resolve(name, port)[:MAX_ADDRESSES] or [name]
            except (OSError, UnicodeError) as exc:
                log.debug("resolving %s failed: %s", name, exc)
                addresses = [name]
        out.extend(Endpoint(url, name, a, port, tls) for a in addresses)
    return out


class _NamedTls:
    """The club's TLS context, checking the certificate against the URL's host name
    while the TCP connection goes to one of its addresses.

    paho passes the host it connects to as ``server_hostname``; for an address that
    would check the certificate against the address. This wrapper passes the name.
    """

    def __init__(self, context: ssl.SSLContext):
        self.context = context
        self.name: str | None = None

    @property
    def check_hostname(self) -> bool:
        return self.context.check_hostname

    def wrap_socket(self, sock: socket.socket, server_hostname: str | None = None,
                    **kwargs: Any) -> ssl.SSLSocket:
        return self.context.wrap_socket(sock, server_hostname=self.name or server_hostname,
                                        **kwargs)


@dataclass(frozen=True)
class Connected:
    """The broker accepted the connection and the subscriptions were sent."""

    broker: str = ""  # the endpoint's label (URL, and address when the name has several)
    session_present: bool = True  # the broker still had this terminal's session


@dataclass(frozen=True)
class Disconnected:
    reason: str


@dataclass(frozen=True)
class ConnectFailed:
    """TCP, TLS or the broker refused; the session tries again after a backoff."""

    error: str


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes


SessionEvent = Connected | Disconnected | ConnectFailed | Message


class MqttSession:
    """One persistent MQTT session to the club broker, reconnecting on its own thread."""

    def __init__(self, broker_urls: str | Sequence[str], client_id: str, topics: Topics,
                 tuning: LinkTuning, inbox: queue.Queue[Any], *,
                 tls: Callable[[], ssl.SSLContext] | None, allow_plain: bool,
                 rng: random.Random, mqtt_version: str = "5",
                 resolve: Resolver = resolve_addresses):
        urls = [broker_urls] if isinstance(broker_urls, str) else list(broker_urls)
        if not urls:
            raise LinkError("no broker URL is configured")
        self.urls = urls
        self.resolve = resolve
        self.topics = topics
        self.tuning = tuning
        self.inbox = inbox
        self.rng = rng
        if mqtt_version not in ("5", "3.1.1"):
            raise LinkError(f"MQTT version {mqtt_version!r} is not supported (5 or 3.1.1)")
        self.v5 = mqtt_version == "5"
        if self.v5:
            self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                      protocol=mqtt.MQTTv5)
        else:
            # 3.1.1 has no session expiry: clean session off keeps the session for as
            # long as the broker's own setting (docs/fleet.md).
            self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                      protocol=mqtt.MQTTv311, clean_session=False)
        self._tls: _NamedTls | None = None
        schemes = {urlsplit(u).scheme for u in urls}
        if "mqtts" in schemes:
            if tls is None:
                raise LinkError(f"{urls[0]} needs TLS and no TLS context was given")
            if len(schemes) > 1:
                raise LinkError("the broker URLs mix mqtts:// and mqtt://; use one kind")
            self._tls = _NamedTls(tls())
            self.client.tls_set_context(cast(ssl.SSLContext, self._tls))
        elif not allow_plain:
            raise LinkError(f"{urls[0]} is not TLS and [club] allow_plain is not set")
        self.endpoint: Endpoint | None = None  # the one of the current or last attempt
        self._endpoints: list[Endpoint] = []
        self._next = 0
        self.client.will_set(topics.status, json.dumps({"state": "offline"}), qos=1,
                             retain=True)
        self.client.max_inflight_messages_set(max(20, 2 * tuning.max_inflight_batches + 8))
        self.client.max_queued_messages_set(0)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        # Only the network thread writes to the socket: without a loop thread of its
        # own, paho's publish() would write from the caller's thread unless this is
        # set (the wake-up byte paho sends its select() is enough).
        self.client.on_socket_register_write = self._on_register_write
        self._stop = threading.Event()
        self._accepted = False  # CONNACK success seen on this connection
        self._refused = False  # a CONNACK refused this connection
        self._session_present = True
        self._thread: threading.Thread | None = None

    # ---- paho callbacks (network thread): convert and enqueue, nothing else ------

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                    properties: Any) -> None:
        if reason.is_failure:
            where = self.endpoint.label if self.endpoint else "the broker"
            self._refused = True
            hint = ""
            if self.v5 and "protocol version" in str(reason).lower():
                hint = ' (it speaks MQTT 3.1.1 only: set [club] mqtt_version = "3.1.1")'
            self.inbox.put(ConnectFailed(f"{where} refused the connection: {reason}{hint}"))
        else:
            self._session_present = bool(getattr(flags, "session_present", True))
            self._accepted = True

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                       properties: Any) -> None:
        self.inbox.put(Disconnected(str(reason)))

    def _on_register_write(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        pass  # the network thread's select() already watches the socket

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        self.inbox.put(Message(msg.topic, bytes(msg.payload)))

    # ---- the network thread --------------------------------------------------

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="club-mqtt", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            if self._connect():
                attempt = 0 if self._serve() else attempt
            if self._stop.is_set():
                break
            delay = full_jitter_delay(attempt, self.tuning.reconnect_base_s,
                                      self.tuning.reconnect_cap_s, self.rng)
            attempt += 1
            log.info("reconnecting to the club in %.1f s (attempt %d, next %s)", delay, attempt,
                     self._peek_label())
            self._stop.wait(delay)

    def next_endpoint(self) -> Endpoint:
        """The endpoint of the next attempt: the next address of the list, which is
        resolved again each time a round through it begins."""
        if self._next >= len(self._endpoints):
            self._endpoints = broker_endpoints(self.urls, self.resolve)
            self._next = 0
        endpoint = self._endpoints[self._next]
        self._next += 1
        return endpoint

    def _connect(self) -> bool:
        self.endpoint = endpoint = self.next_endpoint()
        if self._tls is not None:
            self._tls.name = endpoint.name
        self._accepted = False
        self._refused = False
        try:
            if self.v5:
                props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
                props.SessionExpiryInterval = self.tuning.session_expiry_s
                self.client.connect(endpoint.address, endpoint.port,
                                    keepalive=self.tuning.keepalive_s, clean_start=False,
                                    properties=props)
            else:
                self.client.connect(endpoint.address, endpoint.port,
                                    keepalive=self.tuning.keepalive_s)
        except (OSError, ValueError) as exc:
            # TCP or TLS failed before MQTT began (broker down, certificate refused).
            log.debug("connecting to %s failed: %s", endpoint.label, exc)
            self.inbox.put(ConnectFailed(f"cannot reach the club broker {endpoint.label} "
                                         "(TCP or TLS failed)"))
            return False
        return True

    def _peek_label(self) -> str:
        if self._next < len(self._endpoints):
            return self._endpoints[self._next].label
        return self.urls[0]

    def _serve(self) -> bool:
        """Run the connection until it ends; True when the broker had accepted it."""
        subscribed = False
        stop_by: float | None = None
        # A broker that took the connection but never answers the CONNACK (a node
        # half dead, a broker that misreads this MQTT version) is given up after
        # one keepalive period, and the next address is tried.
        answer_by = time.monotonic() + self.tuning.keepalive_s
        while True:
            rc = self.client.loop(_LOOP_S)
            if self._accepted and not subscribed:
                subscribed = True
                self.client.subscribe([(t, 1) for t in self.topics.subscriptions()])
                self.inbox.put(Connected(self.endpoint.label if self.endpoint else "",
                                         self._session_present))
            if rc != mqtt.MQTT_ERR_SUCCESS:
                break  # the DISCONNECT of stop() went out, or the connection was lost
            if not self._accepted and not self._refused and time.monotonic() > answer_by:
                self._refused = True  # reported here, not again below
                where = self.endpoint.label if self.endpoint else "the broker"
                self.inbox.put(ConnectFailed(
                    f"{where} did not accept the connection within {self.tuning.keepalive_s} "
                    f"s (does it speak MQTT {'5' if self.v5 else '3.1.1'}? see [club] "
                    "mqtt_version)"))
                break
            if self._stop.is_set():
                stop_by = stop_by or time.monotonic() + _STOP_GRACE_S
                if time.monotonic() > stop_by:
                    break
        if subscribed:
            # paho does not call on_disconnect for every way a socket dies; the
            # core ignores a second one.
            self.inbox.put(Disconnected(mqtt.error_string(rc)))
        elif not self._refused and not self._stop.is_set():
            # Closed before any CONNACK: what a broker that does not speak the
            # version asked for often does (amqtt with MQTT 5), or a TLS/ACL refusal.
            where = self.endpoint.label if self.endpoint else "the broker"
            version = "5" if self.v5 else "3.1.1"
            self.inbox.put(ConnectFailed(
                f"{where} closed the connection before accepting it (does it speak MQTT "
                f"{version}? see [club] mqtt_version)"))
        return subscribed

    # ---- the worker's side ---------------------------------------------------

    def publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> mqtt.MQTTMessageInfo:
        """Queue a publish (thread-safe); raises LinkError when paho refuses it."""
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            raise LinkError(f"publishing on {topic} failed: {mqtt.error_string(info.rc)}")
        return info

    def stop(self, timeout: float) -> None:
        """Disconnect cleanly (no will) and end the network thread."""
        self._stop.set()
        self.client.disconnect()  # sent by the network thread, which then ends
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
