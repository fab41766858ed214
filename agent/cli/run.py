"""`clubterm run`: the agent service (what systemd starts on a box)."""

from __future__ import annotations

import argparse
import logging
import threading
from pathlib import Path
from typing import Any

log = logging.getLogger("agent.fault")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `run` command."""
    p = sub.add_parser(
        "run",
        help="run the agent (readers, store, club link, local API) until stopped",
        description="Run the agent in the foreground: readers, the durable store, the club "
                    "link and the local API on its Unix socket. Under systemd it reports "
                    "READY/STATUS/WATCHDOG; SIGTERM stops it cleanly, SIGHUP reloads the "
                    "configuration.",
    )
    p.add_argument("--check", action="store_true",
                   help="only load and check the configuration, then exit")
    p.add_argument("--stall-link-when", metavar="FILE", type=Path, default=None,
                   help="fault test of the watchdog (docs/packaging.md): while FILE exists, "
                        "every store call of the club link's threads hangs, so systemd "
                        "must restart the agent. Never set on a working box")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from agent.config import load_config
    from agent.log import configure_logging

    cfg = load_config(args.config)
    configure_logging(args.log_level or cfg.log_level, cfg.log_format)
    if args.check:
        print(f"configuration {cfg.path} is valid (terminal {cfg.terminal_id}, "
              f"profile {cfg.profile.name})")
        return 0
    from agent.daemon import run_agent

    trigger = getattr(args, "stall_link_when", None)
    if trigger is None:
        return run_agent(cfg)
    import asyncio

    from agent.daemon import Agent, Hooks

    log.warning("fault test armed: the club link's store calls hang while %s exists", trigger)
    return asyncio.run(Agent(cfg, hooks=Hooks(make_link=_stalling_link(trigger))).run())


class StallingStore:
    """A store part as the club link sees it, except that while ``trigger`` exists
    every call from a thread other than the event loop's hangs (for good: the watchdog
    ends the process). The daemon's own store calls are not touched, so what stops the
    watchdog is the link's stalled worker, as a hung disk or a blocking job would."""

    def __init__(self, store: Any, trigger: Path):
        self._store = store
        self._trigger = trigger

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._store, name)
        if not callable(value):
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            if threading.current_thread() is not threading.main_thread() \
                    and self._trigger.exists():
                log.error("fault test: the club link's store call %s hangs (%s exists)",
                          name, self._trigger)
                threading.Event().wait()
            return value(*args, **kwargs)

        return call


def _stalling_link(trigger: Path) -> Any:
    from agent.sync import ClubLink, LinkParts

    def make_link(cfg: Any, store: Any, bundle_state: Any, on_event: Any) -> Any:
        # Each store part the link uses, wrapped: whichever the worker calls hangs.
        parts = LinkParts(**{name: StallingStore(getattr(store, name), trigger)
                             for name in ("outbox", "members", "bundles", "commands",
                                          "records", "catalogue")})
        return ClubLink(cfg, parts, bundle_state, on_event)

    return make_link
