"""The agent as a service: import hygiene, sd_notify, SIGTERM, SIGHUP, start-up budget."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from agent.config import load_config
from agent.daemon import Agent
from agent.localapi.client import SocketClient, SyncClient
from agent.offline_queue import Outbox, Store
from agent.sdnotify import Notifier
from tests.agent.daemon.support import ROOT, AgentProcess, NotifyListener, terminal_dir


def test_daemon_does_not_import_textual() -> None:
    code = ("import sys, agent.daemon, agent.cli.run, agent.cli.status, agent.cli.sale, "
            "agent.localapi.server, agent.localapi.services, agent.localapi.client, "
            "agent.offline_queue, agent.rules, agent.drivers\n"
            "from agent.cli import build_parser; build_parser()\n"
            "print('textual' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True)
    assert out.stdout.strip() == "False", out.stderr


def test_ready_status_watchdog_then_sigterm_exits_cleanly() -> None:
    with terminal_dir() as files:
        notify = NotifyListener(files.root / "notify.sock")
        agent = AgentProcess(files, notify, watchdog_usec=200_000)
        try:
            ready_at = notify.wait_for("READY=1")
            assert ready_at == "READY=1"
            status = notify.wait_for("STATUS=")
            assert "offline" in status and "queue 0" in status and "rules v42" in status
            start = len(notify.fields())
            notify.wait_for("WATCHDOG=1", after=start)
            time.sleep(0.5)
            pings = [f for f in notify.fields()[start:] if f == "WATCHDOG=1"]
            assert len(pings) >= 3  # every 100 ms (half of WatchdogSec)
            with SyncClient(files.socket) as client:
                assert client.call("agent.status")["terminal_id"] == "T-0001"
            agent.signal(signal.SIGTERM)
            assert agent.proc.wait(10) == 0
            assert "STOPPING=1" in notify.fields()
            assert not files.socket.exists()
            msgs = [r["msg"] for r in agent.log_records()]
            assert "agent stopped" in msgs
        finally:
            agent.stop()
            notify.close()


def test_sighup_reloads_configuration_and_keeps_serving() -> None:
    with terminal_dir() as files:
        notify = NotifyListener(files.root / "notify.sock")
        agent = AgentProcess(files, notify)
        try:
            notify.wait_for("READY=1")
            files.config.write_text(files.config.read_text().replace(
                '[log]\nformat = "json"\n', '[log]\nformat = "json"\nlevel = "debug"\n'))
            mark = len(notify.fields())
            agent.signal(signal.SIGHUP)
            notify.wait_for("RELOADING=1", after=mark)
            notify.wait_for("READY=1", after=mark)
            deadline = time.monotonic() + 5
            while "configuration reloaded" not in agent.output() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert "configuration reloaded" in agent.output()
            # A broken file is refused; the agent keeps its configuration and serves on.
            files.config.write_text("[terminal\nbroken")
            agent.signal(signal.SIGHUP)
            deadline = time.monotonic() + 5
            while "reload refused" not in agent.output() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert "reload refused" in agent.output()
            with SyncClient(files.socket) as client:
                assert client.call("agent.status")["rules_version"] == 42
            assert agent.proc.poll() is None
        finally:
            assert agent.stop() == 0
            notify.close()


def test_sigterm_finishes_an_in_flight_commit(monkeypatch: pytest.MonkeyPatch) -> None:
    """A sale being written when SIGTERM comes is finished and answered; then the agent exits."""
    real_append = Outbox.append
    entered = threading.Event()

    def slow_append(self: Outbox, *args: object, **kwargs: object) -> object:
        if args and args[0] == "sale":
            entered.set()
            time.sleep(0.5)
        return real_append(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Outbox, "append", slow_append)

    async def scenario(files_config: Path, socket: Path, db: Path) -> None:
        agent = Agent(load_config(files_config), notifier=Notifier({}))
        run = asyncio.create_task(agent.run())
        for _ in range(200):
            if socket.exists():
                break
            await asyncio.sleep(0.02)
        client = SocketClient(socket)
        login = await client.call("staff.login", {"staff_id": "1", "pin": "1234"})
        quote = await client.call("sale.quote", {"amount": 1000})
        commit = asyncio.create_task(client.call(
            "sale.commit", {"quote_id": quote["quote_id"], "session": login["session"]}))
        while not entered.is_set():
            await asyncio.sleep(0.01)
        os.kill(os.getpid(), signal.SIGTERM)  # the agent's own handler
        result = await commit
        assert result["seq"] == 1
        assert await asyncio.wait_for(run, 10) == 0
        await client.close()
        assert not socket.exists()
        store = Store.open(db, "T-0001", "M-7")
        assert [e.id for e in store.outbox.events()] == [result["sale_id"]]
        store.close()

    with terminal_dir() as files:
        asyncio.run(scenario(files.config, files.socket, files.db))


def test_watchdog_is_not_pinged_while_the_loop_is_blocked() -> None:
    async def scenario(config: Path, notify_path: Path, listener: NotifyListener) -> None:
        notifier = Notifier({"NOTIFY_SOCKET": str(notify_path), "WATCHDOG_USEC": "100000"})
        agent = Agent(load_config(config), notifier=notifier)
        run = asyncio.create_task(agent.run())
        await asyncio.get_running_loop().run_in_executor(None, listener.wait_for, "WATCHDOG=1")
        blocked_from = time.monotonic()
        time.sleep(1.0)  # the loop is stuck: no ping may be sent meanwhile
        blocked_to = time.monotonic()
        await asyncio.sleep(0.3)
        agent.request_stop()
        await run
        pings = [t for t, m in listener.messages if "WATCHDOG=1" in m]
        assert not [t for t in pings if blocked_from + 0.05 < t < blocked_to - 0.05]
        assert [t for t in pings if t > blocked_to]  # and they resume when it runs again

    with terminal_dir() as files:
        listener = NotifyListener(files.root / "notify.sock")
        try:
            asyncio.run(scenario(files.config, files.root / "notify.sock", listener))
        finally:
            listener.close()


def test_agent_warns_when_its_certificate_expires_within_30_days(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    import dataclasses
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def cert(days: int) -> Path:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "T-0001")])
        now = datetime.now(UTC)
        built = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                 .public_key(key.public_key()).serial_number(1)
                 .not_valid_before(now - timedelta(days=1))
                 .not_valid_after(now + timedelta(days=days)).sign(key, hashes.SHA256()))
        path = tmp_path / f"client-{days}.crt"
        path.write_bytes(built.public_bytes(serialization.Encoding.PEM))
        return path

    with terminal_dir() as files:
        config = load_config(files.config)
        soon = Agent(dataclasses.replace(config, cert_file=cert(10)), notifier=Notifier({}))
        with caplog.at_level("WARNING", logger="agent.daemon"):
            assert "provision rotate" in (soon._check_certificate() or "")
        assert any("provision rotate" in r.getMessage() for r in caplog.records)
        later = Agent(dataclasses.replace(config, cert_file=cert(90)), notifier=Notifier({}))
        assert later._check_certificate() is None


@pytest.mark.slow
def test_ready_and_idle_memory_with_100k_members() -> None:
    """With 100,000 cached members the agent says READY=1, answers from the cache,
    and stays within its memory budget. How fast it gets ready is a figure of
    ``python -m bench.agent`` (start-up time, median of 5), not a timed test."""
    with terminal_dir(members=100_000) as files:
        notify = NotifyListener(files.root / "notify.sock")
        agent = AgentProcess(files, notify)
        try:
            notify.wait_for("READY=1", timeout=20)
            time.sleep(1.0)
            rss_kb = int(next(line.split()[1] for line in
                              Path(f"/proc/{agent.proc.pid}/status").read_text().splitlines()
                              if line.startswith("VmRSS:")))
            with SyncClient(files.socket) as client:
                found = client.call("member.identify", {"code": "CLUB-0099999"})
                assert found["member_id"] == "g-99999"
        finally:
            agent.stop()
            notify.close()
        assert rss_kb < 80 * 1024
