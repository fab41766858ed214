"""The ``clubterm`` command.

Each sub-command lives in its own module of this package and exposes
``register(subparsers)``; heavy imports happen inside the handlers so that
``clubterm --help`` and the daemon start fast (and the daemon never imports
``textual``).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from agent import __version__
from agent.errors import ClubtermError

# Order is the order shown in --help.
COMMAND_MODULES = (
    "run",
    "status",
    "sale",
    "tui",
    "card",
    "rules",
    "queue",
    "staff",
    "provision",
    "doctor",
)

DEFAULT_CONFIG = "/etc/clubterm/agent.toml"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="clubterm",
        description="Agent for loyalty-club card terminals.",
        epilog="Run 'clubterm COMMAND --help' for the options of one command.",
    )
    parser.add_argument("--version", action="version", version=f"clubterm {__version__}")
    parser.add_argument(
        "--config",
        metavar="FILE",
        default=None,
        help=f"agent configuration file (default: $CLUBTERM_CONFIG or {DEFAULT_CONFIG})",
    )
    parser.add_argument(
        "--log-level",
        metavar="LEVEL",
        default=None,
        help="debug, info, warning or error (default: from the configuration, else info)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"agent.cli.{name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    try:
        code = args.func(args)
    except ClubtermError as exc:
        from agent.safe_text import escape_for_terminal

        print(f"clubterm: error: {escape_for_terminal(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("clubterm: interrupted", file=sys.stderr)
        return 130
    return int(code or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
