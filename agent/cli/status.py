"""`clubterm status`: what the running agent says about itself (a local-API client)."""

from __future__ import annotations

import argparse
import json
from typing import Any


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `status` command."""
    p = sub.add_parser(
        "status",
        help="show the running agent's state (link, queue, rules, readers)",
        description="Ask the running agent over its local API (agent.status) and print "
                    "its state. Exit code 0 when it answers, 3 when it is not running.",
    )
    p.add_argument("--json", action="store_true", help="print the raw JSON answer")
    p.add_argument("--socket", metavar="PATH", default=None,
                   help="the agent's socket (default: from the configuration)")
    p.set_defaults(func=_status)


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


def format_status(s: dict[str, Any]) -> str:
    """The status as lines a technician reads on SSH."""
    queue = s.get("queue") or {}
    lines = [
        f"terminal     {s.get('terminal_id')}  (merchant {s.get('merchant_id')})",
        f"club link    {'online' if s.get('online') else 'OFFLINE'}"
        + (f" since {s['link_since']}" if s.get("link_since") else ""),
        f"queue        {queue.get('pending', 0)} waiting"
        + (f", oldest {queue['oldest_at']}" if queue.get("oldest_at") else "")
        + (f", {queue['rejected']} rejected" if queue.get("rejected") else ""),
        "rules        " + (f"version {s['rules_version']}" if s.get("rules_version") is not None
                            else "none yet")
        + (f"  PROBLEM: {s['rules_problem']}" if s.get("rules_problem") else ""),
        f"members      cache version {s.get('members_version')}",
    ]
    readers = s.get("readers") or []
    if not readers:
        lines.append("readers      none")
    for i, r in enumerate(readers):
        label = "readers" if i == 0 else ""
        lines.append(f"{label:<12} {r.get('name')} ({r.get('kind')}): {r.get('state')}")
    if s.get("agent_version"):
        lines.append(f"agent        {s['agent_version']}, up {s.get('uptime_s', 0):.0f} s")
    return "\n".join(lines)


def _status(args: argparse.Namespace) -> int:
    from agent.errors import ApiError
    from agent.localapi.client import ApiUnavailable, SyncClient

    path = socket_path(args)
    try:
        with SyncClient(path, timeout_s=10) as client:
            status = client.call("agent.status")
    except ApiUnavailable as exc:
        print(f"clubterm: {exc}")
        return 3
    except ApiError as exc:
        print(f"clubterm: the agent answered: {exc}")
        return 1
    print(json.dumps(status, indent=2, ensure_ascii=False) if args.json else format_status(status))
    return 0
