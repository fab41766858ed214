"""What the CLI's local-API clients (``status``, ``sale``) share: where the agent's
socket is, and how an amount from its answers is shown."""

from __future__ import annotations

import argparse


def socket_path(args: argparse.Namespace) -> str:
    """The socket: --socket, else the configuration's [paths] socket, else the default."""
    if getattr(args, "socket", None):
        return str(args.socket)
    from agent.config import default_config_path, load_config
    from agent.errors import ConfigError

    path = args.config or default_config_path()
    try:
        return str(load_config(path, check_secrets=False).socket_path)
    except ConfigError:
        return "/run/clubterm/agent.sock"


def amount_text(amount: int | None, minor_units: int | None) -> str:
    """An amount of an answer in the rules engine's one format; ``-`` when absent.

    ``minor_units`` defaults to 2 when an answer leaves it out.
    """
    if amount is None:
        return "-"
    # The engine's formatter, not a copy: the CLI shows what the receipt shows.
    from agent.rules.engine import format_money

    return format_money(int(amount), 2 if minor_units is None else int(minor_units))
