"""Brokers other than mosquitto, for the fleet tests: an aedes cluster on Redis, amqtt.

:class:`AedesCluster` runs ``tests/fleet/cluster/node.js`` once per node: aedes
brokers that keep sessions, subscriptions, queued QoS 1 messages, wills and
retained messages in one Redis and pass publishes to each other through it, so a
client whose node dies finds its session on any other. Each node has a plain
listener and, with ``tls``, a TLS listener that enforces the club's identity rules
(client certificate required, client id = CN, ACL per terminal; see node.js).

The node modules come from ``npm ci`` of ``tests/fleet/cluster/package-lock.json``
into a cache outside the tree (:func:`aedes_modules`; ``.ci/run`` runs
``tests/fleet/cluster/install.sh``). :class:`AmqttBroker` runs amqtt from its own
virtualenv (``/opt/clubterm-amqtt``, made by the same script), never the project's.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from hw_sim.broker import TlsFiles, _accepts, free_port

HERE = Path(__file__).resolve().parent
CLUSTER_DIR = HERE / "cluster"
CACHE = Path(os.environ.get("CLUBTERM_CI_CACHE", "/var/cache/clubterm-ci"))
AMQTT_VENV = Path(os.environ.get("CLUBTERM_AMQTT_VENV", "/opt/clubterm-amqtt"))


def aedes_modules() -> Path:
    """Where ``npm ci`` put the cluster's node modules (keyed by the lock file's hash)."""
    digest = hashlib.sha256((CLUSTER_DIR / "package-lock.json").read_bytes()).hexdigest()[:16]
    return CACHE / "aedes-cluster" / digest / "node_modules"


def aedes_missing() -> str | None:
    """Why the aedes cluster cannot run here, or None."""
    if shutil.which("node") is None:
        return "node is not installed (apt-get install nodejs)"
    if shutil.which("redis-server") is None:
        return "redis-server is not installed (apt-get install redis-server)"
    if not (aedes_modules() / "aedes").is_dir():
        return f"the aedes node modules are not installed: run {CLUSTER_DIR}/install.sh"
    return None


def amqtt_missing() -> str | None:
    """Why amqtt cannot run here, or None."""
    if not (AMQTT_VENV / "bin" / "amqtt").exists():
        return f"amqtt is not installed in {AMQTT_VENV}: run {CLUSTER_DIR}/install.sh"
    return None


def _wait_port(proc: subprocess.Popen[bytes], port: int, what: str, log: Path,
               timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not _accepts(port):
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}: "
                               f"{log.read_text(errors='replace')[-2000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not listen on {port}: "
                               f"{log.read_text(errors='replace')[-2000:]}")
        time.sleep(0.05)


def _end(proc: subprocess.Popen[bytes] | None, *, kill: bool = False) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class RedisServer:
    """A private redis-server on a free port, nothing saved to disk."""

    def __init__(self, directory: Path):
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.directory / "redis.log"
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                 "--save", "", "--appendonly", "no", "--dir", str(self.directory),
                 "--protected-mode", "no"],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        _wait_port(self.proc, self.port, "redis-server", log)

    def stop(self) -> None:
        _end(self.proc)
        self.proc = None


@dataclass
class AedesNode:
    """One aedes process: its plain and TLS ports, started and killed by the cluster."""

    name: str
    port: int
    tls_port: int | None
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    @property
    def tls_url(self) -> str:
        if self.tls_port is None:
            raise RuntimeError("this node has no TLS listener")
        return f"mqtts://localhost:{self.tls_port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@dataclass
class AedesCluster:
    """``size`` aedes nodes on one Redis: one broker as clients see it."""

    directory: Path
    size: int = 3
    tls: TlsFiles | None = None
    club_id: str | None = None
    heartbeat_ms: int = 300
    redis: RedisServer = field(init=False)
    nodes: list[AedesNode] = field(init=False)

    def __post_init__(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.redis = RedisServer(self.directory / "redis")
        self.nodes = [AedesNode(f"node-{i}", free_port(),
                                free_port() if self.tls else None,
                                self.directory / f"node-{i}.log")
                      for i in range(self.size)]

    def start(self) -> None:
        self.redis.start()
        for i in range(self.size):
            for attempt in range(3):
                try:
                    self.start_node(i)
                    break
                except RuntimeError as exc:
                    # A port picked free was taken meanwhile by another run (the node
                    # says EADDRINUSE): before any client knows the ports, take others.
                    if "EADDRINUSE" not in str(exc) or attempt == 2:
                        raise
                    node = self.nodes[i]
                    node.port = free_port()
                    node.tls_port = free_port() if self.tls else None

    def start_node(self, i: int) -> None:
        node = self.nodes[i]
        if node.running:
            return
        settings: dict[str, object] = {"id": node.name, "redis_port": self.redis.port,
                                       "port": node.port, "heartbeat_ms": self.heartbeat_ms}
        if self.tls is not None:
            settings["tls"] = {"port": node.tls_port, "ca": str(self.tls.ca),
                               "cert": str(self.tls.cert), "key": str(self.tls.key),
                               "club_id": self.club_id}
        env = {**os.environ, "CLUSTER_MODULES": str(aedes_modules())}
        with node.log.open("ab") as out:
            node.proc = subprocess.Popen(
                ["node", str(CLUSTER_DIR / "node.js"), json.dumps(settings)],
                stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        for port in (node.port, node.tls_port):
            if port is not None:
                _wait_port(node.proc, port, f"aedes {node.name}", node.log)

    def kill_node(self, i: int) -> None:
        """SIGKILL: the node dies at once, as a crashed or cut-off machine would."""
        _end(self.nodes[i].proc, kill=True)
        self.nodes[i].proc = None

    def stop(self) -> None:
        for node in self.nodes:
            _end(node.proc)
            node.proc = None
        self.redis.stop()


class AmqttBroker:
    """amqtt (MQTT 3.1.1, Python) from its own virtualenv, one plain listener."""

    def __init__(self, directory: Path):
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.conf = directory / "amqtt.yaml"
        # Anonymous clients on loopback; sessions and retained messages in memory.
        self.conf.write_text(
            "listeners:\n"
            "  default:\n"
            "    type: tcp\n"
            f"    bind: 127.0.0.1:{self.port}\n"
            "    max_connections: 100\n"
            "plugins:\n"
            "  amqtt.plugins.authentication.AnonymousAuthPlugin:\n"
            "    allow_anonymous: true\n"
            "  amqtt.plugins.sys.broker.BrokerSysPlugin:\n"
            "    sys_interval: 0\n")

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        log = self.directory / "amqtt.log"
        with log.open("ab") as out:
            self.proc = subprocess.Popen([str(AMQTT_VENV / "bin" / "amqtt"), "-c", str(self.conf)],
                                         stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        _wait_port(self.proc, self.port, "amqtt", log)

    def stop(self, *, kill: bool = False) -> None:
        _end(self.proc, kill=kill)
        self.proc = None
