"""`clubterm tui`: the staff terminal UI."""

from __future__ import annotations

import argparse
import os

from agent.errors import ClubtermError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `tui` command."""
    parser = sub.add_parser(
        "tui",
        help="staff terminal UI (sales, clock-in, expenses, appointments, members)",
        description="Run the staff terminal UI against the agent's local API.",
    )
    parser.add_argument("--socket", metavar="PATH", default=None,
                        help="the agent's socket (default: from the configuration)")
    parser.add_argument("--fake", action="store_true",
                        help="run against an in-memory demo agent (training, demos)")
    parser.add_argument("--locale", metavar="LANG", default=None,
                        help="UI language: en or fa (default: from $LANG)")
    parser.add_argument("--idle-signout", metavar="SECONDS", type=float, default=300.0,
                        help="sign staff out after this long without activity (0: never)")
    parser.set_defaults(func=run)


def _locale(args: argparse.Namespace) -> str:
    if args.locale:
        return str(args.locale)
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(name)
        if value and value not in ("C", "POSIX", "C.UTF-8"):
            return value
    return "en"


def build_api(args: argparse.Namespace) -> object:
    """The local API client: the fake, or the real one over the agent's socket."""
    if args.fake:
        from agent.localapi.fake import FakeLocalApi

        return FakeLocalApi()
    path = args.socket
    if path is None:
        from agent.config import load_config

        path = load_config(args.config, check_secrets=False).socket_path
    try:
        from agent.localapi.client import SocketClient  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        raise ClubtermError(
            "this build has no local API client yet (agent.localapi.client); "
            "run 'clubterm tui --fake' for the demo agent") from None
    return SocketClient(str(path))


def run(args: argparse.Namespace) -> int:
    """Start the UI; returns when staff quit it (Ctrl+Q)."""
    api = build_api(args)
    from agent.tui.app import ClubtermApp

    app = ClubtermApp(api, locale=_locale(args), idle_signout_s=args.idle_signout)  # type: ignore[arg-type]
    app.run()
    return 0
