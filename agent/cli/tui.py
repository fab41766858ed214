"""`clubterm tui`: the staff terminal UI."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agent.config import Config
    from agent.localapi import LocalApi


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `tui` command."""
    parser = sub.add_parser(
        "tui",
        help="staff terminal UI (sales, clock-in, expenses, appointments, members)",
        description="Run the staff terminal UI against the agent's local API.",
    )
    parser.add_argument("--socket", metavar="PATH", default=None,
                        help="the agent's socket (default: from the configuration)")
    parser.add_argument("--demo", action="store_true",
                        help="run against a demo agent: the real agent with demo staff and "
                             "members in a temporary folder, removed on exit (training, demos)")
    # The old name of --demo (it was an in-memory stand-in); says so when used.
    parser.add_argument("--fake", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--locale", metavar="LANG", default=None,
                        help="UI language: en or fa (default: [ui] locale of the "
                             "configuration, else $LANG)")
    parser.add_argument("--idle-signout", metavar="SECONDS", type=float, default=None,
                        help="sign staff out after this long without activity (0: never; "
                             "default: [ui] idle_signout_s of the configuration, else 300)")
    parser.set_defaults(func=run)


def _config(args: argparse.Namespace) -> Config | None:
    """The agent's configuration when the UI needs it (the real agent), else None."""
    if _demo(args) and args.config is None:
        return None
    if args.socket is not None and args.config is None:
        return None
    from agent.config import load_config

    return load_config(args.config, check_secrets=False)


def _locale(args: argparse.Namespace, config: Config | None = None) -> str:
    if args.locale:
        return str(args.locale)
    if config is not None:
        return config.ui_locale
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(name)
        if value and value not in ("C", "POSIX", "C.UTF-8"):
            return value
    return "en"


def _demo(args: argparse.Namespace) -> bool:
    return bool(args.demo or args.fake)


def build_api(args: argparse.Namespace, config: Config | None = None) -> LocalApi:
    """The local API client: the demo agent's, or the real one over the agent's socket."""
    if _demo(args):
        if args.fake:
            print("clubterm tui: --fake is now --demo: the real agent in a temporary folder",
                  file=sys.stderr)
        from agent.localapi.demo import DemoStarting

        return DemoStarting()
    path = args.socket
    if path is None:
        if config is None:
            config = _config(args)
        assert config is not None
        path = config.socket_path
    from agent.localapi.client import SocketClient

    client: LocalApi = SocketClient(str(path))
    return client


def run(args: argparse.Namespace) -> int:
    """Start the UI; returns when staff quit it (Ctrl+Q)."""
    config = _config(args)
    api = build_api(args, config)  # the demo agent is built in a thread meanwhile
    from agent.tui.app import ClubtermApp

    idle = args.idle_signout
    if idle is None:
        idle = float(config.ui_idle_signout_s) if config is not None else 300.0

    confirm_above = config.ui_confirm_above if config is not None else 0
    try:
        ClubtermApp(api, locale=_locale(args, config), idle_signout_s=idle,
                    confirm_above=confirm_above).run()
    finally:
        shutdown = getattr(api, "shutdown", None)  # the demo agent: remove its folder
        if shutdown is not None:
            shutdown()
    return 0
