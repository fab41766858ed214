"""The MQTT session: paho-mqtt 2.x behind a thread of our own.

paho's callbacks only convert what happened into a :data:`SessionEvent` and put
it on the inbox the link's worker reads (as aiomqtt does); nothing else runs on
the network thread. The thread reconnects with its own loop: exponential backoff
with full jitter (:mod:`agent.sync.backoff`), so a fleet that lost the broker
together does not come back in waves. No private part of paho is used.

The session is persistent (MQTT 5, clean start off, session expiry from the
tuning) and leaves a retained ``{"state": "offline"}`` will on the status topic.
"""

from __future__ import annotations

import json
import logging
import queue
import random
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
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


@dataclass(frozen=True)
class Connected:
    """The broker accepted the connection and the subscriptions were sent."""


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

    def __init__(self, broker_url: str, client_id: str, topics: Topics, tuning: LinkTuning,
                 inbox: queue.Queue[Any], *, tls: Callable[[], ssl.SSLContext] | None,
                 allow_plain: bool, rng: random.Random):
        u = urlsplit(broker_url)
        self.host = u.hostname or "localhost"
        self.port = u.port or (8883 if u.scheme == "mqtts" else 1883)
        self.topics = topics
        self.tuning = tuning
        self.inbox = inbox
        self.rng = rng
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=mqtt.MQTTv5)
        if u.scheme == "mqtts":
            if tls is None:
                raise LinkError(f"{broker_url} needs TLS and no TLS context was given")
            self.client.tls_set_context(tls())
        elif not allow_plain:
            raise LinkError(f"{broker_url} is not TLS and [club] allow_plain is not set")
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
        self._thread: threading.Thread | None = None

    # ---- paho callbacks (network thread): convert and enqueue, nothing else ------

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                    properties: Any) -> None:
        if reason.is_failure:
            self.inbox.put(ConnectFailed(f"the broker refused the connection: {reason}"))
        else:
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
            log.info("reconnecting to the club in %.1f s (attempt %d)", delay, attempt)
            self._stop.wait(delay)

    def _connect(self) -> bool:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self.tuning.session_expiry_s
        self._accepted = False
        try:
            self.client.connect(self.host, self.port, keepalive=self.tuning.keepalive_s,
                                clean_start=False, properties=props)
        except (OSError, ValueError) as exc:
            # TCP or TLS failed before MQTT began (broker down, certificate refused).
            log.debug("connecting to the club broker failed: %s", exc)
            self.inbox.put(ConnectFailed("cannot reach the club broker (TCP or TLS failed)"))
            return False
        return True

    def _serve(self) -> bool:
        """Run the connection until it ends; True when the broker had accepted it."""
        subscribed = False
        stop_by: float | None = None
        while True:
            rc = self.client.loop(_LOOP_S)
            if self._accepted and not subscribed:
                subscribed = True
                self.client.subscribe([(t, 1) for t in self.topics.subscriptions()])
                self.inbox.put(Connected())
            if rc != mqtt.MQTT_ERR_SUCCESS:
                break  # the DISCONNECT of stop() went out, or the connection was lost
            if self._stop.is_set():
                stop_by = stop_by or time.monotonic() + _STOP_GRACE_S
                if time.monotonic() > stop_by:
                    break
        if subscribed:
            # paho does not call on_disconnect for every way a socket dies; the
            # core ignores a second one.
            self.inbox.put(Disconnected(mqtt.error_string(rc)))
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
