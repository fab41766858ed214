"""The agent as one service: readers, store, rules, club link and the local API.

One process, one asyncio loop. Blocking parts run in threads and hand their
results to the loop: readers (their own threads, ``loop.call_soon_threadsafe``),
the store (one worker thread, :class:`agent.localapi.ports.DbThread`), the club
link (its MQTT session thread and its worker). Nothing blocks the loop.

Under systemd (``Type=notify``) the agent says READY=1 once the socket is
listening, keeps STATUS= current (online, queue depth), and pings WATCHDOG=1
from a loop task that first checks that the store answers and that the club
link's worker beat recently, so a hung loop, store or link gets the service
restarted. SIGTERM stops new work, lets in-flight
requests finish and exits 0; SIGHUP reloads the configuration.

This module must never import ``textual`` (a test checks ``sys.modules``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from agent import assembly
from agent.assembly import ReaderSlot
from agent.config import Config, load_config
from agent.errors import ClubtermError, ConfigError
from agent.localapi.ports import DbThread
from agent.localapi.server import ApiServer, ServerLimits
from agent.localapi.services import AgentView, Services
from agent.sdnotify import Notifier
from agent.statelock import LOCK_NAME, AgentAlreadyRunning, StateDirLock
from agent.upkeep import PRUNE_BATCH, PRUNE_PAUSE_S, prune_outbox

__all__ = ["LOCK_NAME", "PRUNE_BATCH", "PRUNE_PAUSE_S", "Agent", "AgentAlreadyRunning",
           "Hooks", "ReaderSlot", "StateDirLock", "run_agent"]

log = logging.getLogger("agent.daemon")

STATUS_EVERY_S = 5.0


@dataclass
class Hooks:
    """Where the agent gets its parts (tests replace them)."""

    build_readers: Callable[[Config, bytes], list[Any]] | None = None
    make_link: Callable[..., Any] | None = None
    load_config: Callable[[Path], Config] = field(default=lambda p: load_config(p))


class Agent:
    """The running agent. ``await Agent(config).run()`` until SIGTERM."""

    def __init__(self, config: Config, *, notifier: Notifier | None = None,
                 hooks: Hooks | None = None):
        self.config = config
        self.notifier = notifier or Notifier()
        self.hooks = hooks or Hooks()
        self.store: Any = None
        self.db: DbThread | None = None
        self.bundle_state: Any = None
        self.services: Services | None = None
        self.server: ApiServer | None = None
        self.link: Any = None
        self.printer: Any = None  # agent.printer.service.ReceiptPrinter, or None
        self.readers: list[ReaderSlot] = []
        self.started_at = time.monotonic()
        self.ready_after_s: float | None = None
        self._stop = asyncio.Event()
        self._reload_wanted = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._last_status = ""
        self._pending = 0
        self.lock = StateDirLock(config.state_dir)

    # ------------------------------------------------------------------ life cycle

    async def run(self) -> int:
        """Start everything, serve until asked to stop, then stop cleanly. Returns 0."""
        self._loop = asyncio.get_running_loop()
        for sig, handler in ((signal.SIGTERM, self.request_stop),
                             (signal.SIGINT, self.request_stop),
                             (signal.SIGHUP, self.request_reload)):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                self._loop.add_signal_handler(sig, handler)
        try:
            await self._start()
        except BaseException:
            await self._shutdown()
            raise
        self.ready_after_s = time.monotonic() - self.started_at
        log.info("agent ready in %.0f ms (terminal %s, socket %s)", self.ready_after_s * 1000,
                 self.config.terminal_id, self.config.socket_path)
        self.notifier.ready(self._status_line())
        self._tasks.append(asyncio.create_task(self._status_loop(), name="status"))
        interval = self.notifier.watchdog_interval()
        if interval:
            self._tasks.append(asyncio.create_task(self._watchdog_loop(interval),
                                                   name="watchdog"))
        self._tasks.append(asyncio.create_task(self._reload_loop(), name="reload"))
        self._tasks.append(asyncio.create_task(self._daily_loop(), name="daily"))
        self._tasks.append(asyncio.create_task(self._prune_loop(), name="prune"))
        await self._stop.wait()
        log.info("stopping: no new work; finishing what is in flight")
        self.notifier.stopping("stopping")
        await self._shutdown()
        log.info("agent stopped")
        return 0

    def request_stop(self) -> None:
        """SIGTERM/SIGINT: stop taking new work and shut down."""
        if self.services is not None:
            self.services.accepting = False
        self._stop.set()

    def request_reload(self) -> None:
        """SIGHUP: reload the configuration (from the loop, not the signal handler)."""
        self._reload_wanted.set()

    async def _start(self) -> None:
        from agent.offline_queue import Store

        cfg = self.config
        # First of all: a second agent must leave the first one's socket and
        # store alone (it would replace the socket and fight over the client id).
        self.lock.acquire()
        self.db = DbThread()
        self.store = await self.db.call(Store.open, cfg.db_path, cfg.terminal_id,
                                        cfg.merchant_id)
        self.bundle_state = await self.db.call(self._make_bundle_state)
        from agent.carddata.tokens import nid_token
        from agent.sync.lookup import member_lookup

        view = AgentView(
            terminal_id=cfg.terminal_id, merchant_id=cfg.merchant_id,
            default_country_code=cfg.default_country_code,
            bundle=lambda: self.bundle_state.current if self.bundle_state else None,
            rules_problem=self._rules_problem,
            online=self._online, link_since=self._link_since, readers=self._reader_rows,
            link_broker=self._link_broker,
            on_recorded=self._wake_link, started=self.started_at,
            lookup_member=member_lookup(cfg),
            nid_token=lambda digits: nid_token(cfg.read_pan_key(), digits))
        view.printer = assembly.make_printer(cfg, view.bundle, self._from_printer_thread)
        self.printer = view.printer
        from agent.staff import offline_only

        self.services = Services(view, self.db, outbox=self.store.outbox,
                                 members=self.store.members, records=self.store.records,
                                 catalogue=self.store.catalogue,
                                 offline_only=offline_only(cfg.raw))
        self.server = ApiServer(cfg.socket_path, self.services, limits=self._api_limits(cfg))
        view.broadcast = self.server.broadcast
        await self.server.start()
        self._check_certificate()
        await self._start_link()
        self._start_readers()

    @staticmethod
    def _api_limits(cfg: Config) -> ServerLimits:
        """The local API's limits: [local_api] of the configuration, the rest built in."""
        return assembly.api_limits(cfg)

    def _make_bundle_state(self) -> Any:
        """The rules state, restored from the store's last bundle (on the store thread)."""
        return assembly.make_bundle_state(self.config, self.store)

    async def _start_link(self) -> None:
        self.link = assembly.make_link(self.config, self.hooks.make_link, self.store,
                                       self.bundle_state, self._from_link_thread)
        if self.link is None:
            return
        try:  # start() reads the store and restores the bundle: not on the loop.
            await asyncio.to_thread(self.link.start)
        except ClubtermError as exc:
            log.error("the club link cannot start: %s; working offline", exc)
            self.link = None
        else:
            self.link.set_readers(self._reader_rows())
            if self.printer is not None:
                self.link.set_printer(assembly.printer_summary(self.printer.status()))

    def _start_readers(self) -> None:
        self.readers = assembly.start_readers(self.config, self.hooks.build_readers,
                                              self._from_reader_thread)

    async def _shutdown(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self.server is not None:
            await self.server.close(grace_s=10.0)
        await asyncio.to_thread(self._stop_readers)
        if self.printer is not None:
            await asyncio.to_thread(self.printer.stop)
        if self.link is not None:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.link.stop)
        if self.db is not None:
            if self.store is not None:
                with contextlib.suppress(Exception):
                    await self.db.call(self.store.close)
            self.db.close()
        self.lock.release()

    def _stop_readers(self) -> None:
        assembly.stop_readers(self.readers)
        self.readers = []

    # ------------------------------------------------------------------ events in

    def _from_reader_thread(self, event: Any) -> None:
        """A reader's ``emit`` (reader thread): hand the event to the loop."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._on_reader_event, event)

    def _from_link_thread(self, event: dict[str, Any]) -> None:
        """The club link's ``on_event`` (link thread): hand it to the loop."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._on_link_event, dict(event))

    def _from_printer_thread(self, state: dict[str, Any]) -> None:
        """The print worker's state changed (printer thread): hand it to the loop."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._on_printer_state, state)

    def _on_printer_state(self, state: dict[str, Any]) -> None:
        self._broadcast(assembly.printer_event(state))
        if self.link is not None:
            self.link.set_printer(assembly.printer_summary(state))
        self._update_status()

    def _on_reader_event(self, event: Any) -> None:
        kind = type(event).__name__
        if kind == "CardPresented":
            if not self._stop.is_set():
                task = asyncio.create_task(self._card(event))
                self._tasks.append(task)
                task.add_done_callback(lambda t: self._tasks.remove(t)
                                       if t in self._tasks else None)
        elif kind == "ReadFailed":
            self._broadcast({"type": "read_failed", "source": event.source,
                             "reader": event.reader, "message": event.message})
        elif kind == "ReaderState":
            for slot in self.readers:
                if slot.name == event.name:
                    slot.state, slot.detail = event.state, event.detail
            if event.state == "error":
                log.warning("reader %s: %s", event.name, event.detail)
            self._broadcast(assembly.reader_notification(event))
            if self.link is not None:
                self.link.set_readers(self._reader_rows())
            self._update_status()

    async def _card(self, event: Any) -> None:
        """A card or code was presented (:func:`agent.assembly.card_notification`)."""
        assert self.services is not None
        self._broadcast(await assembly.card_notification(self.services, event))

    def _on_link_event(self, event: dict[str, Any]) -> None:
        if event.get("type") == "queue" and isinstance(event.get("pending"), int):
            self._pending = event["pending"]
        if event.get("type") == "staff" and event.get("deactivated") and \
                self.services is not None:
            # Removed from the club's staff list: their sessions end now, not at next use.
            self.services.staff_removed(event["deactivated"])
        self._broadcast(event)
        self._update_status()

    def _broadcast(self, event: dict[str, Any]) -> None:
        if self.server is not None:
            self.server.broadcast(event)

    # ------------------------------------------------------------------ state

    def _rules_problem(self) -> str | None:
        """The link's view (a bundle fetch that failed, else the last refusal), or the
        bundle state's when there is no link."""
        link = self.link
        if link is not None and hasattr(link, "rules_problem"):
            problem: str | None = link.rules_problem()
            return problem
        return self.bundle_state.problem() if self.bundle_state else None

    def _online(self) -> bool:
        return bool(self.link is not None and self.link.state().online)

    def _link_since(self) -> datetime | None:
        if self.link is None:
            return None
        since = self.link.state().since
        return since if isinstance(since, datetime) else None

    def _link_broker(self) -> str | None:
        return self.link.state().broker if self.link is not None else None

    def _reader_rows(self) -> list[dict[str, Any]]:
        return [{"name": s.name, "kind": s.kind, "state": s.state, "detail": s.detail or None}
                for s in self.readers]

    def _wake_link(self) -> None:
        if self.link is not None:
            self.link.wake()

    def _status_line(self) -> str:
        online = "online" if self._online() else "offline"
        pending = self.link.state().pending if self.link is not None else self._pending
        version = self.bundle_state.version if self.bundle_state is not None else None
        readers = ", ".join(f"{s.name} {s.state}" for s in self.readers) or "no readers"
        rules = f"rules v{version}" if version is not None else "no rules"
        printer = f", printer {self.printer.status()['state']}" if self.printer is not None else ""
        return f"{online}, queue {pending}, {rules}, {readers}{printer}"

    def _update_status(self) -> None:
        line = self._status_line()
        if line != self._last_status:
            self._last_status = line
            self.notifier.status(line)

    async def _status_loop(self) -> None:
        while True:
            await asyncio.sleep(STATUS_EVERY_S)
            if self.link is None and self.db is not None:
                with contextlib.suppress(ClubtermError):
                    stats = await self.db.read(self.store.outbox.queue_stats)
                    self._pending = int(stats.pending)
            self._update_status()

    async def _watchdog_loop(self, interval: float) -> None:
        """Ping the watchdog only while the loop runs, the store answers and the club
        link's worker is alive (its heartbeat within ``[club] stall_limit_s``)."""
        assert self.db is not None
        while True:
            try:
                await asyncio.wait_for(self.db.call(self.store.members.members_version), interval)
            except (TimeoutError, ClubtermError) as exc:
                log.error("the store does not answer (%s); not petting the watchdog",
                          exc or "timeout")
            else:
                stalled = self.link.stalled() if self.link is not None else None
                if stalled:
                    # Restarted by systemd rather than left stuck with sales unsent.
                    log.error("%s; not petting the watchdog", stalled)
                else:
                    self.notifier.watchdog()
            await asyncio.sleep(interval)

    # ------------------------------------------------------------------ reload

    async def _reload_loop(self) -> None:
        while True:
            await self._reload_wanted.wait()
            self._reload_wanted.clear()
            await self.reload()

    async def reload(self) -> bool:
        """Re-read the configuration; apply what can change without a restart."""
        self.notifier.reloading()
        try:
            new = await asyncio.to_thread(self.hooks.load_config, self.config.path)
        except ConfigError as exc:
            log.error("reload refused, keeping the running configuration: %s", exc)
            self.notifier.ready(self._status_line())
            return False
        old = self.config
        for name in ("terminal_id", "merchant_id", "club_id", "state_dir", "socket_path"):
            if getattr(new, name) != getattr(old, name):
                log.warning("%s changed in the configuration; it takes effect at the next "
                            "restart", name)
        self.config = new
        if self.server is not None:  # new connections see new caps; none is dropped
            self.server.limits = self._api_limits(new)
        level = new.log_level
        logging.getLogger().setLevel(level.upper())
        if (new.profile != old.profile or new.debounce_ms != old.debounce_ms
                or new.pan_key_file != old.pan_key_file):
            log.info("readers changed: restarting them")
            await asyncio.to_thread(self._stop_readers)
            self._start_readers()
        if new.profile.printer != old.profile.printer and self.services is not None:
            log.info("printer changed: restarting it")
            if self.printer is not None:
                await asyncio.to_thread(self.printer.stop)
            self.printer = assembly.make_printer(new, self.services.view.bundle,
                                                 self._from_printer_thread)
            self.services.view.printer = self.printer
        link_keys = ("broker_url", "central_url", "allow_plain", "ca_file", "cert_file",
                     "key_file", "rules_keys_dir")
        if any(getattr(new, k) != getattr(old, k) for k in link_keys) or \
                old.raw.get("club") != new.raw.get("club"):
            log.info("club settings changed: reconnecting")
            if self.link is not None:
                await asyncio.to_thread(self.link.stop)
                self.link = None
            if self.db is not None:
                self.bundle_state = await self.db.call(self._make_bundle_state)
            await self._start_link()
            self._check_certificate()
        log.info("configuration reloaded from %s", new.path)
        self.notifier.ready(self._status_line())
        return True

    # ------------------------------------------------------------------ checks

    def _check_certificate(self) -> str | None:
        """Warn when the client certificate expires within 30 days (at start, daily)."""
        return assembly.check_certificate(self.config)

    # ------------------------------------------------------------------ pruning

    async def _prune_loop(self) -> None:
        """Prune at start, then every ``[store] prune_every_minutes`` (read each time)."""
        while True:
            await self.prune_outbox()
            await asyncio.sleep(self.config.store_prune_every_min * 60)

    async def prune_outbox(self) -> int:
        """Prune the outbox and old command results (:func:`agent.upkeep.prune_outbox`)."""
        if self.db is None or self.store is None:
            return 0
        return await prune_outbox(self.db, self.store, self.config, self._stop)

    async def _daily_loop(self) -> None:
        while True:
            await asyncio.sleep(24 * 3600)
            self._check_certificate()


def run_agent(config: Config, notifier: Notifier | None = None) -> int:
    """Run the agent in a new event loop until it is stopped (``clubterm run``)."""
    return asyncio.run(Agent(config, notifier=notifier).run())
