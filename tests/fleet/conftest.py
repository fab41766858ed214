"""Fixtures of the fleet tests: the aedes cluster on Redis and amqtt (tests/fleet/brokers.py).

Each is one per test (a private Redis, private nodes), as ``mosquitto`` is. Where a
broker cannot run here the test is skipped with the reason; under CI (``CI`` set,
``.ci/run``, which installs them) it fails instead, so a missing install step cannot
turn the fleet suite green by skipping it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from hw_sim.broker import TlsFiles
from tests.fixtures.club import ClubPki
from tests.fixtures.mosquitto import new_club_id
from tests.fleet.brokers import AedesCluster, AmqttBroker, aedes_missing, amqtt_missing


def require(missing: str | None) -> None:
    """Skip (fail under CI) when a broker cannot run here."""
    if missing is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{missing} (CI installs it: tests/fleet/cluster/install.sh)")
    pytest.skip(missing)


def make_cluster(directory: Path, pki: ClubPki, size: int = 3) -> AedesCluster:
    require(aedes_missing())
    return AedesCluster(directory, size=size,
                        tls=TlsFiles(ca=pki.ca.cert_file, cert=pki.server.cert,
                                     key=pki.server.key),
                        club_id=new_club_id())


@pytest.fixture
def aedes_cluster(tmp_path: Path, club_pki: ClubPki) -> Iterator[AedesCluster]:
    """Three aedes nodes on one Redis, each with a plain and a TLS listener for one club."""
    cluster = make_cluster(tmp_path / "aedes", club_pki)
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture
def amqtt_broker(tmp_path: Path) -> Iterator[AmqttBroker]:
    """amqtt from its own virtualenv, one plain listener."""
    require(amqtt_missing())
    broker = AmqttBroker(tmp_path / "amqtt")
    broker.start()
    yield broker
    broker.stop()


# The link tests' terminals (a config, a real store, a ClubLink), reused here.
from tests.agent.sync.conftest import make_terminal  # noqa: E402, F401
