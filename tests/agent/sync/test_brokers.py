"""Several brokers: the configuration's list, every address of a name tried in turn,
TLS checked against the name (not the address), MQTT 3.1.1 as an option."""

from __future__ import annotations

import queue
import random
import time
from pathlib import Path
from typing import Any

import pytest

from agent.config import MAX_BROKER_URLS, load_config
from agent.errors import ConfigError, LinkError, ProvisioningError
from agent.sync.session import (
    MAX_ADDRESSES,
    Connected,
    ConnectFailed,
    MqttSession,
    broker_endpoints,
)
from agent.sync.snapshot import club_tls_context
from agent.sync.topics import Topics
from hw_sim.broker import MosquittoBroker, free_port
from provisioning.enrol import _broker_urls
from provisioning.state import config_data
from tests.agent.sync.conftest import FAST
from tests.agent.test_config import GOOD, write


def _config(tmp_path: Path, club_lines: str) -> Any:
    text = GOOD.replace('broker_url = "mqtts://broker.example:8883"\n', club_lines)
    return load_config(write(tmp_path, text))


# ---- the configuration -------------------------------------------------------------

def test_broker_urls_list_is_kept_in_order_and_broker_url_is_its_first(tmp_path: Path) -> None:
    cfg = _config(tmp_path, 'broker_urls = ["mqtts://a.example:8883", '
                            '"mqtts://b.example:8883", "mqtts://c.example"]\n')
    assert cfg.broker_urls == ("mqtts://a.example:8883", "mqtts://b.example:8883",
                               "mqtts://c.example")
    assert cfg.broker_url == "mqtts://a.example:8883"
    assert cfg.mqtt_version == "5"


def test_one_broker_url_still_works(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, GOOD))
    assert cfg.broker_urls == ("mqtts://broker.example:8883",)


@pytest.mark.parametrize("lines, words", [
    ('broker_url = "mqtts://a:8883"\nbroker_urls = ["mqtts://b:8883"]\n', "not both"),
    ("broker_urls = []\n", "is empty"),
    ('broker_urls = "mqtts://a:8883"\n', "must be a list"),
    ('broker_urls = ["mqtts://a:8883", 7]\n', "list of mqtts:// URLs"),
    ('broker_urls = ["mqtts://a:8883", "mqtt://b:1883"]\n', "plain mqtt:// URL"),
    ('broker_urls = ["https://a"]\n', "must start with mqtts://"),
    ('broker_urls = ["mqtts://a:8883", "mqtts://a:8883"]\n', "same broker twice"),
    ('broker_urls = ["mqtts://a:99999"]\n', "is not a URL"),
    ('broker_urls = ["mqtts://user:pw@a:8883"]\n', "nothing more"),
    ('broker_urls = ["mqtts://a:8883/path"]\n', "nothing more"),
    ('broker_urls = ["mqtts://:8883"]\n', "nothing more"),
    ("broker_urls = [" + ", ".join(f'"mqtts://n{i}:8883"' for i in range(MAX_BROKER_URLS + 1))
     + "]\n", f"at most {MAX_BROKER_URLS}"),
    ('broker_url = "mqtts://a:8883"\nmqtt_version = "4"\n', '"5" or "3.1.1"'),
    ('broker_url = "mqtts://a:8883"\nmqtt_version = 3.1\n', '"5" or "3.1.1"'),
])
def test_bad_broker_lists_name_the_key_and_why(tmp_path: Path, lines: str, words: str) -> None:
    with pytest.raises(ConfigError) as err:
        _config(tmp_path, lines)
    assert words in str(err.value)
    assert "club.broker_url" in str(err.value) or "club.mqtt_version" in str(err.value)


@pytest.mark.parametrize("value, expected", [('"3.1.1"', "3.1.1"), ('"5"', "5"), ("5", "5")])
def test_mqtt_version(tmp_path: Path, value: str, expected: str) -> None:
    cfg = _config(tmp_path, f'broker_url = "mqtts://a:8883"\nmqtt_version = {value}\n')
    assert cfg.mqtt_version == expected


# ---- provisioning writes the list ---------------------------------------------------

def test_enrolment_answer_broker_urls() -> None:
    assert _broker_urls(None, "mqtts://a:8883") == ["mqtts://a:8883"]
    assert _broker_urls(["mqtts://b:8883", "mqtts://b:8883"], "mqtts://a:8883") == [
        "mqtts://a:8883", "mqtts://b:8883"]
    for bad in ([], "mqtts://b", [1], ["http://b"], ["mqtts://x"] * 0 + [
            f"mqtts://n{i}" for i in range(MAX_BROKER_URLS + 1)]):
        with pytest.raises(ProvisioningError):
            _broker_urls(bad, "mqtts://a:8883")


def test_config_data_writes_one_key_for_the_brokers(tmp_path: Path) -> None:
    gen: Any = type("Gen", (), {"pan_key_file": tmp_path / "p", "ca_file": tmp_path / "ca",
                                "cert_file": tmp_path / "c", "key_file": tmp_path / "k",
                                "rules_keys_dir": tmp_path / "r"})()
    common: dict[str, Any] = dict(terminal_id="T-1", merchant_id="M-1", club_id="c",
                                  profile="sim", state_dir=tmp_path, gen=gen, central_url=None,
                                  default_country_code=None)
    many = config_data({"club": {"broker_url": "mqtts://old:8883"}}, broker_url="mqtts://a",
                       broker_urls=["mqtts://a", "mqtts://b"], **common)
    assert many["club"]["broker_urls"] == ["mqtts://a", "mqtts://b"]
    assert "broker_url" not in many["club"]
    # A later enrolment with one broker drops the list again (never both keys).
    one = config_data(many, broker_url="mqtts://z", **common)
    assert one["club"]["broker_url"] == "mqtts://z" and "broker_urls" not in one["club"]


# ---- endpoints ----------------------------------------------------------------------

def test_endpoints_every_address_of_every_name_in_order() -> None:
    seen: list[tuple[str, int]] = []

    def resolve(name: str, port: int) -> list[str]:
        seen.append((name, port))
        return {"a.club": ["10.0.0.1", "10.0.0.2"], "b.club": ["10.0.1.1"]}[name]

    eps = broker_endpoints(["mqtts://a.club:8883", "mqtts://b.club", "mqtt://127.0.0.1:1884"],
                           resolve)
    assert [(e.name, e.address, e.port, e.tls) for e in eps] == [
        ("a.club", "10.0.0.1", 8883, True), ("a.club", "10.0.0.2", 8883, True),
        ("b.club", "10.0.1.1", 8883, True), ("127.0.0.1", "127.0.0.1", 1884, False)]
    assert seen == [("a.club", 8883), ("b.club", 8883)]  # an address is not resolved
    assert eps[0].label == "mqtts://a.club:8883 (10.0.0.1)"
    assert eps[3].label == "mqtt://127.0.0.1:1884"


def test_endpoints_a_name_that_does_not_resolve_stays_and_a_huge_answer_is_capped() -> None:
    def resolve(name: str, port: int) -> list[str]:
        if name == "gone.club":
            raise OSError("Name or service not known")
        return [f"10.9.{i // 250}.{i % 250}" for i in range(5000)]

    eps = broker_endpoints(["mqtts://gone.club:8883", "mqtts://many.club:8883"], resolve)
    assert eps[0].address == "gone.club" and eps[0].label == "mqtts://gone.club:8883"
    assert len(eps) == 1 + MAX_ADDRESSES


def _session(urls: list[str], inbox: queue.Queue[Any], *, resolve: Any = None,
             tls: Any = None, version: str = "5", terminal: str = "T-1",
             club: str = "c") -> MqttSession:
    kwargs: dict[str, Any] = {"resolve": resolve} if resolve else {}
    return MqttSession(urls, f"clubterm-{terminal}", Topics(club, terminal, "M-7"), FAST, inbox,
                       tls=tls, allow_plain=True, rng=random.Random(1), mqtt_version=version,
                       **kwargs)


def test_each_round_resolves_again_and_goes_through_every_address() -> None:
    answers = iter([["127.0.0.2", "127.0.0.3"], ["127.0.0.4"], ["127.0.0.5"]])
    s = _session(["mqtt://names.club:1883"], queue.Queue(),
                 resolve=lambda n, p: next(answers))
    assert [s.next_endpoint().address for _ in range(4)] == [
        "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"]


def test_mixed_tls_and_plain_urls_are_refused() -> None:
    with pytest.raises(LinkError, match="mix"):
        _session(["mqtts://a:8883", "mqtt://b:1883"], queue.Queue(),
                 tls=lambda: club_tls_context(None, None, None))


def _wait(inbox: queue.Queue[Any], kind: type, timeout: float = 15.0) -> list[Any]:
    """Events until one of ``kind`` (included), or fail."""
    seen: list[Any] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            event = inbox.get(timeout=0.2)
        except queue.Empty:
            continue
        seen.append(event)
        if isinstance(event, kind):
            return seen
    raise AssertionError(f"no {kind.__name__} within {timeout} s: {seen}")


@pytest.mark.needs_mosquitto
@pytest.mark.parametrize("version", ["5", "3.1.1"])
def test_dead_addresses_are_skipped_and_the_status_names_the_broker(
        mosquitto_factory: Any, version: str) -> None:
    broker: MosquittoBroker = mosquitto_factory(tls=False)
    dead_url = f"mqtt://127.0.0.1:{free_port()}"  # nobody listens there
    inbox: queue.Queue[Any] = queue.Queue()
    # A name whose first address has no broker (127.0.0.3: loopback, refused).
    s = _session([dead_url, f"mqtt://broker.test:{broker.port}"], inbox, version=version,
                 resolve=lambda n, p: ["127.0.0.3", "127.0.0.1"])
    s.start()
    try:
        events = _wait(inbox, Connected)
    finally:
        s.stop(5)
    failed = [e.error for e in events if isinstance(e, ConnectFailed)]
    assert failed == [f"cannot reach the club broker {dead_url} (TCP or TLS failed)",
                      f"cannot reach the club broker mqtt://broker.test:{broker.port} "
                      "(127.0.0.3) (TCP or TLS failed)"]
    assert events[-1].broker == f"mqtt://broker.test:{broker.port} (127.0.0.1)"


@pytest.mark.needs_mosquitto
def test_tls_is_checked_against_the_name_not_the_address(
        mosquitto: MosquittoBroker, club_pki: Any) -> None:
    certs = club_pki.terminal_cert("T-1")

    def tls() -> Any:
        return club_tls_context(club_pki.ca.cert_file, certs.cert, certs.key)

    port = mosquitto.tls_port
    # The certificate names "localhost": reached at 127.0.0.1 under that name, accepted.
    inbox: queue.Queue[Any] = queue.Queue()
    good = _session([f"mqtts://localhost:{port}"], inbox, tls=tls, club=mosquitto.club_id,
                    resolve=lambda n, p: ["127.0.0.1"])
    good.start()
    try:
        assert _wait(inbox, Connected)[-1].broker == f"mqtts://localhost:{port} (127.0.0.1)"
    finally:
        good.stop(5)
    # A name the certificate does not carry that resolves to the same broker: refused,
    # however the name resolves (DNS cannot vouch for a broker; the certificate must).
    inbox = queue.Queue()
    evil = _session([f"mqtts://evil.test:{port}"], inbox, tls=tls, club=mosquitto.club_id,
                    resolve=lambda n, p: ["127.0.0.1"])
    evil.start()
    try:
        events = _wait(inbox, ConnectFailed, timeout=10)
        time.sleep(1.0)  # a few more attempts: none may succeed
        while not inbox.empty():
            events.append(inbox.get())
    finally:
        evil.stop(5)
    assert not any(isinstance(e, Connected) for e in events)
    assert "evil.test" in events[0].error


@pytest.mark.needs_mosquitto
def test_a_node_that_takes_the_connection_but_never_answers_is_left_for_the_next(
        mosquitto_factory: Any) -> None:
    import socket
    import threading

    broker: MosquittoBroker = mosquitto_factory(tls=False)
    mute = socket.socket()
    mute.bind(("127.0.0.1", 0))
    mute.listen(8)
    held: list[socket.socket] = []
    done = threading.Event()

    def accept() -> None:  # takes connections, reads nothing, answers nothing
        mute.settimeout(0.2)
        while not done.is_set():
            try:
                held.append(mute.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    inbox: queue.Queue[Any] = queue.Queue()
    mute_url = f"mqtt://127.0.0.1:{mute.getsockname()[1]}"
    s = _session([mute_url, broker.url], inbox)
    started = time.monotonic()
    s.start()
    try:
        events = _wait(inbox, Connected, timeout=FAST.keepalive_s + 10)
    finally:
        s.stop(5)
        done.set()
        thread.join(2)
        for conn in held:
            conn.close()
        mute.close()
    waited = time.monotonic() - started
    failed = [e.error for e in events if isinstance(e, ConnectFailed)]
    assert failed == [f"{mute_url} did not accept the connection within {FAST.keepalive_s} s "
                      "(does it speak MQTT 5? see [club] mqtt_version)"]
    assert events[-1].broker == broker.url
    assert FAST.keepalive_s <= waited < FAST.keepalive_s + 5
    print(f"figure: a mute node was left after {waited:.1f} s (keepalive {FAST.keepalive_s} s)")


def test_the_core_says_which_broker_it_is_on(tmp_path: Path) -> None:
    from agent.offline_queue import Store
    from agent.sync.actions import Emit
    from tests.agent.sync.test_core import make_core, perform
    store = Store.open(tmp_path / "db", "T-0001", "M-7")
    try:
        core = make_core(store)
        label = "mqtts://mqtt-b.club.example:8883 (10.0.0.2)"
        out = perform(store, core.connected(0.0, broker=label, session_present=False))
        assert core.state.broker == label
        assert [a.event["broker"] for a in out
                if isinstance(a, Emit) and a.event["type"] == "link"] == [label]
        assert core.status_payload()["link"]["broker"] == label
        perform(store, core.disconnected("keepalive timeout", 1.0))
        assert core.state.broker is None
        assert core.state.last_error == f"disconnected from {label}: keepalive timeout"
    finally:
        store.close()
