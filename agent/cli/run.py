"""`clubterm run`: the agent service (what systemd starts on a box)."""

from __future__ import annotations

import argparse


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

    return run_agent(cfg)
