"""``clubterm provision selftest``: a checklist a technician can act on.

Each check is a small function returning :class:`Check` (never raising for a
failure it can describe), so each can be tested alone. The order matters only in
that later checks reuse the broker session of the broker check.

Where another part of the agent owns the real code path (``agent.drivers``,
``agent.rules``, ``agent.offline_queue``), the check uses it when it is installed
and falls back to a direct check with pyscard / paho / requests otherwise.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import os
import ssl
import stat
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from agent import __version__
from agent.config import Config, ReaderSpec, load_config
from agent.errors import ClubtermError, ConfigError
from provisioning.detect import Hardware, detect_hardware, reader_present

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Check:
    """One line of the checklist."""

    name: str
    ok: bool
    detail: str
    advice: str = ""

    def line(self) -> str:
        """``OK   name: detail`` or ``FAIL name: detail → advice``."""
        mark = "OK  " if self.ok else "FAIL"
        text = f"{mark} {self.name}: {self.detail}"
        if not self.ok and self.advice:
            text += f"\n       → {self.advice}"
        return text

    def to_json(self) -> dict[str, Any]:
        """For the status message."""
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


# ----------------------------------------------------------------------------- config


def check_config(path: Path) -> tuple[Check, Config | None]:
    """The configuration and its profile load."""
    try:
        cfg = load_config(path, check_secrets=False)
    except ConfigError as exc:
        return Check("configuration", False, str(exc),
                     "fix the named key, or enrol again: clubterm provision enrol"), None
    return Check("configuration", True,
                 f"{path}: terminal {cfg.terminal_id}, profile {cfg.profile.name}"), cfg


def check_secrets(cfg: Config, *, uid: int | None = None) -> Check:
    """Secret files exist, are regular, mode 0600 and owned by the agent's user.

    The agent's user is ``uid`` if given, else the owner of the state folder (which
    ``enrol --user`` gave to it), so the check holds when a technician runs it as root.
    """
    if uid is not None:
        want_uid = uid
    else:
        try:
            want_uid = cfg.state_dir.stat().st_uid
        except OSError:
            want_uid = os.geteuid()
    problems = []
    for key, path in (("secrets.pan_key_file", cfg.pan_key_file), ("club.key_file", cfg.key_file)):
        if path is None:
            problems.append(f"[{key}] is not set")
            continue
        try:
            st = path.lstat()
        except OSError:
            problems.append(f"{path} is missing")
            continue
        if not stat.S_ISREG(st.st_mode):
            problems.append(f"{path} is not a regular file")
        elif stat.S_IMODE(st.st_mode) != 0o600:
            problems.append(f"{path} has mode {stat.S_IMODE(st.st_mode):04o}, not 0600")
        elif st.st_uid != want_uid:
            problems.append(f"{path} is owned by uid {st.st_uid}, not {want_uid}")
    if problems:
        return Check("secret files", False, "; ".join(problems),
                     "chmod 600 and chown the files to the agent's user, or enrol again")
    return Check("secret files", True, "pan_key and device key are 0600 and owned by the agent")


# ----------------------------------------------------------------------------- readers

Tap = Callable[[ReaderSpec, str, float], Check | None]


def pcsc_tap(spec: ReaderSpec, reader_name: str, timeout: float) -> Check | None:
    """Wait for a card on a PC/SC reader and read its ATR (no card data)."""
    try:
        from smartcard.CardRequest import CardRequest
        from smartcard.Exceptions import CardRequestTimeoutException
        from smartcard.System import readers
    except ImportError:
        return None
    target = next((r for r in readers() if str(r) == reader_name), None)
    if target is None:
        return Check(f"reader {spec.name}", False, f"{reader_name} disappeared",
                     "check the USB cable and that pcscd is running")
    try:
        service = CardRequest(readers=[target], timeout=timeout).waitforcard()
        service.connection.connect()
        atr = bytes(service.connection.getATR())
        service.connection.disconnect()
    except CardRequestTimeoutException:
        return Check(f"reader {spec.name}", False,
                     f"{reader_name} is present but no card was tapped within {timeout:.0f} s",
                     "tap a test card flat on the reader and run selftest again")
    except Exception as exc:  # pyscard's errors share no useful base class
        return Check(f"reader {spec.name}", False,
                     f"{reader_name}: the card did not answer ({exc.__class__.__name__})",
                     "hold the card still on the reader; try another test card")
    return Check(f"reader {spec.name}", True,
                 f"{reader_name}: card answered (ATR {len(atr)} bytes)")


def _spec_for(event_reader: str, specs: list[ReaderSpec]) -> str | None:
    """Which profile reader an event came from (PC/SC events carry pcscd's reader name)."""
    for spec in specs:
        if event_reader == spec.name:
            return spec.name
    for spec in specs:
        if spec.kind == "pcsc" and fnmatch.fnmatchcase(event_reader, spec.reader or "*"):
            return spec.name
    return None


def driver_tap(cfg: Config, pan_key: bytes, names: list[str], timeout: float,
               progress: Callable[[str], None]) -> dict[str, Check] | None:
    """Read a test card on each named reader through the agent's own drivers.

    None when ``agent.drivers`` is not installed. Each reader must produce a
    ``CardPresented``; a failed read may be retried within the time. Only the
    token kind and the masked form are shown, never a card number.
    """
    try:
        from agent.drivers import build_readers
    except ImportError:
        return None
    specs = [spec for spec in cfg.profile.readers if spec.name in names]
    ok: dict[str, Check] = {}
    failed: dict[str, str] = {}
    errors: dict[str, str] = {}
    lock = threading.Lock()
    all_read = threading.Event()

    def emit(event: Any) -> None:
        kind = type(event).__name__
        with lock:
            if kind == "ReaderState":
                if getattr(event, "state", "") == "error" and event.name in names:
                    errors[event.name] = str(getattr(event, "detail", ""))
                return
            name = _spec_for(str(getattr(event, "reader", "")), specs)
            if name is None or name in ok:
                return
            if kind == "CardPresented":
                what = getattr(event, "masked", None) or "no number"
                ok[name] = Check(f"reader {name}", True,
                                 f"test card read ({getattr(event, 'token_kind', '?')}, {what})")
                progress(f"  {name}: read")
            elif kind == "ReadFailed":
                failed[name] = str(getattr(event, "message", "read failed"))
                progress(f"  {name}: {failed[name]}")
            if len(ok) == len(specs):
                all_read.set()

    readers = [r for r in build_readers(cfg, pan_key) if getattr(r, "name", None) in names]
    if not readers:
        return {}
    progress(f"  Tap, swipe or scan a test card on each reader: {', '.join(names)} "
             f"({timeout:.0f} s)…")
    started = []
    try:
        for reader in readers:
            reader.start(emit)
            started.append(reader)
        all_read.wait(timeout)
    finally:
        for reader in started:
            reader.stop()
    results = dict(ok)
    for spec in specs:
        if spec.name in results:
            continue
        if spec.name in failed:
            results[spec.name] = Check(f"reader {spec.name}", False, failed[spec.name],
                                       "read the test card again, slowly and fully")
        elif spec.name in errors:
            results[spec.name] = Check(f"reader {spec.name}", False, errors[spec.name],
                                       "check the cable, the udev rules and pcscd")
        else:
            results[spec.name] = Check(f"reader {spec.name}", False,
                                       f"no test card within {timeout:.0f} s",
                                       "tap, swipe or scan a test card and run selftest again")
    return results


def check_readers(cfg: Config, hw: Hardware, *, tap_timeout: float = 0,
                  tap: Tap = pcsc_tap, progress: Callable[[str], None] = lambda m: None
                  ) -> list[Check]:
    """Every reader of the profile is attached (and, with a timeout, answers a card)."""
    checks = []
    for spec in cfg.profile.readers:
        where = spec.reader if spec.kind == "pcsc" else spec.device
        found = reader_present(spec, hw)
        if found is None:
            advice = {"pcsc": "plug the reader in and check 'pcsc_scan'; is pcscd running?",
                      "evdev": "plug the reader in; check ls /dev/input/by-id and the udev rules",
                      "serial": "plug the reader in; check the udev rule that names the port"}
            rules = ", ".join(cfg.profile.udev_rules)
            checks.append(Check(f"reader {spec.name}", False,
                                f"{spec.model or spec.kind} not found ({where})",
                                advice[spec.kind] + (f" (udev: {rules})" if rules else "")))
            continue
        result = None
        if tap_timeout > 0 and spec.kind == "pcsc":
            progress(f"  Tap a test card on {found} ({tap_timeout:.0f} s)…")
            result = tap(spec, found, tap_timeout)
        checks.append(result or Check(f"reader {spec.name}", True, f"present: {found}"))
    return checks


def reader_checks(cfg: Config, hw: Hardware, *, tap_timeout: float,
                  progress: Callable[[str], None]) -> list[Check]:
    """Presence of every reader, then a test card on those present.

    The test card goes through ``agent.drivers`` (every reader kind) when installed,
    otherwise through pyscard (PC/SC readers only; others are checked for presence).
    """
    presence = check_readers(cfg, hw)
    if tap_timeout <= 0:
        return presence
    present = [spec.name for spec, check in zip(cfg.profile.readers, presence, strict=True)
               if check.ok]
    try:
        results = driver_tap(cfg, cfg.read_pan_key(), present, tap_timeout, progress)
    except ClubtermError as exc:
        return [*presence, Check("test card", False, str(exc), "see clubterm doctor")]
    if results is None:
        return check_readers(cfg, hw, tap_timeout=tap_timeout, progress=progress)
    return [results.get(spec.name, check) if check.ok else check
            for spec, check in zip(cfg.profile.readers, presence, strict=True)]


# ----------------------------------------------------------------------------- broker


def topic_prefix(cfg: Config) -> str:
    """``clubterm/v1/{club_id}``."""
    return f"clubterm/v1/{cfg.club_id}"


class BrokerSession:
    """A short paho session with the terminal's certificate, for the checks."""

    def __init__(self, client: Any):
        self.client = client
        self.messages: dict[str, bytes] = {}
        self._arrived = threading.Condition()

    def on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        with self._arrived:
            self.messages[msg.topic] = bytes(msg.payload)
            self._arrived.notify_all()

    def wait_retained(self, topic: str, timeout: float) -> bytes | None:
        """Subscribe and wait for the (retained) message on ``topic``."""
        self.client.subscribe(topic, qos=1)
        deadline = time.monotonic() + timeout
        with self._arrived:
            while topic not in self.messages:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._arrived.wait(left)
            return self.messages[topic]

    def publish_retained(self, topic: str, payload: bytes, timeout: float) -> bool:
        """Publish QoS 1 retained and wait for the broker's PUBACK."""
        info = self.client.publish(topic, payload, qos=1, retain=True)
        try:
            info.wait_for_publish(timeout)
        except (RuntimeError, ValueError):
            return False
        return bool(info.is_published())

    def close(self) -> None:
        """Disconnect and stop the network thread."""
        self.client.disconnect()
        self.client.loop_stop()


def connect_broker(cfg: Config, *, timeout: float = 10) -> tuple[Check, BrokerSession | None]:
    """Connect with the client certificate, verifying the broker against the club CA."""
    import paho.mqtt.client as mqtt

    name = "broker accepts the certificate"
    if not cfg.broker_url:
        return Check(name, False, "no [club] broker_url", "enrol again"), None
    url = urlsplit(cfg.broker_url)
    tls = url.scheme == "mqtts"
    port = url.port or (8883 if tls else 1883)
    from paho.mqtt.enums import CallbackAPIVersion

    client = mqtt.Client(CallbackAPIVersion.VERSION2,
                         client_id=f"{cfg.terminal_id}-selftest", clean_session=True)
    if tls:
        if not (cfg.ca_file and cfg.cert_file and cfg.key_file):
            return Check(name, False, "ca_file, cert_file or key_file is not configured",
                         "enrol again"), None
        try:
            client.tls_set(ca_certs=str(cfg.ca_file), certfile=str(cfg.cert_file),
                           keyfile=str(cfg.key_file), cert_reqs=ssl.CERT_REQUIRED,
                           tls_version=ssl.PROTOCOL_TLS_CLIENT)
        except (OSError, ValueError, ssl.SSLError) as exc:
            return Check(name, False, f"cannot load the certificates: {exc}",
                         "check the files named in [club], or enrol again"), None
    session = BrokerSession(client)
    client.on_message = session.on_message
    connected = threading.Event()
    result: dict[str, Any] = {}

    def on_connect(c: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        result["reason"] = reason
        connected.set()

    def on_disconnect(c: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        # Before CONNACK this is the broker closing on us, usually its TLS layer
        # refusing our certificate: report it now instead of waiting for the timeout.
        if not connected.is_set():
            result["dropped"] = reason
            connected.set()

    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    try:
        client.connect(url.hostname or "localhost", port, keepalive=30)
    except ssl.SSLError as exc:
        return Check(name, False, f"TLS failed with {url.hostname}:{port}: {exc.reason or exc}",
                     "the broker's certificate is not from the club CA, or it refused this "
                     "terminal's certificate: check the clock, then rotate or enrol again"), None
    except OSError as exc:
        return Check(name, False, f"cannot reach {url.hostname}:{port} ({exc.strerror or exc})",
                     "check the network and the firewall (outgoing TCP to the broker)"), None
    client.loop_start()
    if not connected.wait(timeout):
        client.loop_stop()
        client.disconnect()
        return Check(name, False, f"no answer from {url.hostname}:{port} within {timeout:.0f} s",
                     "the broker may have refused the certificate: check it with the club"), None
    if "dropped" in result:
        session.close()
        return Check(name, False, f"{url.hostname}:{port} closed the connection before "
                     f"accepting it ({result['dropped']})",
                     "the broker refused this terminal's certificate: check the clock, then "
                     "ask the club whether the certificate is revoked; rotate or enrol again"), None
    reason = result["reason"]
    if getattr(reason, "is_failure", False):
        session.close()
        return Check(name, False, f"the broker refused the connection: {reason}",
                     "ask the club to check this terminal's certificate and ACL"), None
    return Check(name, True, f"connected to {url.hostname}:{port} as {cfg.terminal_id}"
                 f"{' (TLS, verified)' if tls else ' (plain, allow_plain)'}"), session


# ----------------------------------------------------------------------------- rules


def verify_envelope(envelope: dict[str, Any], cfg: Config, now: datetime) -> int:
    """Check a rule-bundle envelope exactly as the agent will; return its version.

    Goes through ``agent.rules.accept_envelope`` with the keys from enrolment, so
    the self-test accepts what the agent accepts. Raises ``BundleRejected`` (a
    :class:`ClubtermError`) with the reason.
    """
    from agent.rules import accept_envelope, load_trusted_keys

    if cfg.rules_keys_dir is None:
        raise ClubtermError("no [club] rules_keys_dir is configured")
    trusted = load_trusted_keys(cfg.rules_keys_dir)
    bundle = accept_envelope(envelope, trusted, club=cfg.club_id, merchant=cfg.merchant_id,
                             current_version=None, now=now)
    return bundle.version


def check_rules(cfg: Config, session: BrokerSession | None, *, now: datetime,
                timeout: float = 10) -> Check:
    """A retained rule bundle arrives for this merchant and verifies."""
    name = "rule bundle"
    if session is None:
        return Check(name, False, "not checked: no broker connection", "fix the broker first")
    topic = f"{topic_prefix(cfg)}/merchants/{cfg.merchant_id}/rules"
    payload = session.wait_retained(topic, timeout)
    if payload is None:
        return Check(name, False, f"no retained bundle on {topic} within {timeout:.0f} s",
                     "ask the club to publish this merchant's rules")
    try:
        envelope = json.loads(payload)
        if not isinstance(envelope, dict):
            raise ValueError
    except ValueError:
        return Check(name, False, "the retained message is not a JSON envelope",
                     "ask the club to republish the rules")
    try:
        version = verify_envelope(envelope, cfg, now)
    except ClubtermError as exc:
        reason = getattr(exc, "reason", "")
        return Check(name, False, f"refused ({reason or 'error'}): {exc}",
                     "ask the club: the bundle must be signed with a key from enrolment, "
                     "for this club and merchant, and not expired")
    return Check(name, True, f"version {version} verified (key {envelope.get('key_id')})")


# ----------------------------------------------------------------------------- members


class _BadLine(ClubtermError):
    """A snapshot line is not a member record (the selftest's own check)."""


class _SelftestSink:
    """Checks each snapshot line as it streams by and loads it into the store when
    agent.offline_queue is installed (never the whole snapshot in memory)."""

    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.count = 0
        self.where: str | None = None

    def _checked(self, lines: Iterable[bytes | str]) -> Iterator[bytes | str]:
        for number, line in enumerate(lines, 1):
            try:
                record = json.loads(line)
            except ValueError:
                record = None
            if not isinstance(record, dict) or "member_id" not in record:
                raise _BadLine(f"line {number} is not a member record")
            self.count += 1
            yield line

    def import_snapshot(self, lines: Iterable[bytes | str], version: int, full: bool) -> None:
        checked = self._checked(lines)
        try:
            from agent.offline_queue import Store
        except ImportError:
            for _ in checked:
                pass
            return
        store = Store.open(self.cfg.db_path, self.cfg.terminal_id, self.cfg.merchant_id)
        try:
            store.members.import_snapshot(checked, version, full)
            self.where = f"loaded into {self.cfg.db_path}"
        finally:
            store.close()


def check_members(cfg: Config, *, timeout: float = 30) -> Check:
    """The first member snapshot loads (``GET …/members?since=0``, mutual TLS).

    Streamed and bounded as the agent's own fetch is (``[club] snapshot_*``);
    ``timeout`` is the longest wait for one read.
    """
    from agent.sync.link import LinkTuning
    from agent.sync.snapshot import SnapshotClient, SnapshotFailed

    name = "member snapshot"
    if not (cfg.central_url and cfg.ca_file and cfg.cert_file and cfg.key_file):
        return Check(name, False, "central_url or the certificates are not configured",
                     "enrol again")
    try:
        tuning = LinkTuning.from_config(cfg)
    except ClubtermError as exc:
        return Check(name, False, str(exc), "correct the [club] table of the configuration")
    limits = tuning.snapshot_limits(io_timeout_s=timeout)
    client = SnapshotClient(cfg.central_url, cfg.club_id, cfg.ca_file, cfg.cert_file,
                            cfg.key_file, timeout, limits)
    sink = _SelftestSink(cfg)
    try:
        version = client.fetch_into(sink, 0)
    except _BadLine as exc:
        return Check(name, False, str(exc), "report this to the club")
    except SnapshotFailed as exc:
        if exc.reason == "http":
            return Check(name, False, f"the club answered HTTP {exc.status}",
                         "ask the club to check this terminal's access")
        if exc.reason == "protocol":
            return Check(name, False, "the answer has no X-Members-Version header",
                         "the club server does not follow protocol v1")
        if exc.reason == "tls":
            return Check(name, False, "TLS failed with the club's HTTPS server",
                         "check the clock; the server must use the club CA's certificate")
        if exc.reason in ("unreachable", "network"):
            return Check(name, False, f"cannot reach {cfg.central_url} ({exc})",
                         "check the network")
        return Check(name, False, str(exc),
                     "a slow line: raise [club] snapshot_deadline_s; a very large club: raise "
                     "the [club] snapshot_max_* limits (docs/sync.md)")
    except ClubtermError as exc:
        return Check(name, False, f"the store refused the snapshot: {exc}",
                     "check the disk (clubterm doctor)")
    return Check(name, True, f"{sink.count} members, version {version}"
                 + (f", {sink.where}" if sink.where else ""))


# ----------------------------------------------------------------------------- status


def status_message(cfg: Config, checks: list[Check], now: datetime) -> dict[str, Any]:
    """The retained status a self-test leaves for the club (``state: selftest``)."""
    return {
        "state": "selftest", "at": now.isoformat(timespec="seconds"),
        "agent_version": __version__,
        "selftest": {"ok": all(c.ok for c in checks), "checks": [c.to_json() for c in checks]},
        "readers": [{"name": c.name.removeprefix("reader "), "kind": "", "state":
                     "ok" if c.ok else "error"} for c in checks if c.name.startswith("reader ")],
    }


def publish_result(cfg: Config, session: BrokerSession | None, checks: list[Check],
                   now: datetime, timeout: float = 10) -> Check:
    """Send the checklist to the club as the retained status of this terminal."""
    name = "result sent to the club"
    if session is None:
        return Check(name, False, "no broker connection", "fix the broker first")
    topic = f"{topic_prefix(cfg)}/terminals/{cfg.terminal_id}/status"
    payload = json.dumps(status_message(cfg, checks, now)).encode()
    if not session.publish_retained(topic, payload, timeout):
        return Check(name, False, "the broker did not confirm the status",
                     "check the broker ACL for the status topic")
    return Check(name, True, f"retained on {topic}")


# ----------------------------------------------------------------------------- all


def run_selftest(config_path: Path, *, tap_timeout: float = 0, timeout: float = 10,
                 hardware: Hardware | None = None, progress: Callable[[str], None] = print,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> list[Check]:
    """Run every check in order, printing each line as it completes."""
    checks: list[Check] = []

    def add(check: Check) -> Check:
        checks.append(check)
        progress(check.line())
        return check

    first, cfg = check_config(config_path)
    add(first)
    if cfg is None:
        return checks
    # The self-test connects to the broker as this terminal (the broker binds the
    # client id to the certificate's CN) and opens its readers: with the agent
    # running it would take over the agent's MQTT session and fight it for the
    # readers. It holds the agent's lock while it runs, so neither can start.
    from agent.daemon import AgentAlreadyRunning, StateDirLock

    lock = StateDirLock(cfg.state_dir)
    try:
        lock.acquire()
    except AgentAlreadyRunning:
        add(Check("agent stopped", False, "the agent is running on this configuration",
                  "stop it first (systemctl stop clubterm), run the self-test, then start "
                  "it again (systemctl start clubterm)"))
        return checks
    except ClubtermError as exc:
        add(Check("agent stopped", False, str(exc), "run the self-test as root or as the "
                  "agent's user"))
        return checks
    try:
        _run_checks(cfg, checks, add, tap_timeout=tap_timeout, timeout=timeout, hardware=hardware,
                    progress=progress, now=now)
    finally:
        lock.release()
    return checks


def _run_checks(cfg: Config, checks: list[Check], add: Callable[[Check], Check], *,
                tap_timeout: float, timeout: float, hardware: Hardware | None,
                progress: Callable[[str], None], now: Callable[[], datetime]) -> None:
    add(check_secrets(cfg))
    hw = hardware if hardware is not None else detect_hardware()
    for check in reader_checks(cfg, hw, tap_timeout=tap_timeout, progress=progress):
        add(check)
    broker, session = connect_broker(cfg, timeout=timeout)
    add(broker)
    try:
        add(check_rules(cfg, session, now=now(), timeout=timeout))
        add(check_members(cfg, timeout=max(timeout, 30)))
        add(publish_result(cfg, session, checks, now(), timeout))
    finally:
        if session is not None:
            session.close()
