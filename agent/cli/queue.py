"""`clubterm queue`: what the outbox holds, for a manager or technician.

    clubterm queue status [--json]
    clubterm queue list [--state STATE] [--limit N] [--json]
    clubterm queue export [--state STATE] [--out FILE]

The store is opened read-only (it never migrates, locks or changes anything), at
the configuration's ``paths.state_dir``/clubterm.db, or at ``--db PATH``.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from agent.offline_queue import Store

STATES = ("pending", "sent", "accepted", "rejected")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `queue` command and its sub-commands."""
    parser = sub.add_parser("queue", help="show and export the outbox of events",
                            description="Show and export the terminal's outbox of events.")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", metavar="PATH", default=None,
                        help="the store file (default: clubterm.db in the configured state_dir)")
    actions = parser.add_subparsers(dest="queue_command", metavar="ACTION")

    status = actions.add_parser("status", parents=[common],
                                help="waiting and rejected events, per type")
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(func=run_status)

    listing = actions.add_parser("list", parents=[common], help="list events as a table")
    listing.add_argument("--state", choices=STATES, default=None,
                         help="only events in this state")
    listing.add_argument("--limit", type=int, default=None, metavar="N",
                         help="at most N events (the oldest first)")
    listing.add_argument("--json", action="store_true", help="print a JSON array")
    listing.set_defaults(func=run_list)

    export = actions.add_parser("export", parents=[common],
                                help="write events as JSON lines (one event a line)")
    export.add_argument("--state", choices=STATES, default=None,
                        help="only events in this state")
    export.add_argument("--out", metavar="FILE", default=None,
                        help="write to FILE (default: standard output)")
    export.set_defaults(func=run_export)

    parser.set_defaults(func=lambda args: _usage(parser))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _open(args: argparse.Namespace) -> Store:
    from agent.offline_queue import Store

    if args.db:
        return Store.open(args.db, readonly=True)
    from agent.config import load_config

    config = load_config(args.config, check_secrets=False)
    return Store.open(config.db_path, config.terminal_id, config.merchant_id, readonly=True)


def _age(oldest: datetime | None, now: datetime) -> str:
    if oldest is None:
        return ""
    seconds = int((now - oldest).total_seconds())
    if seconds < 0:
        return " (in the future: check the clock)"
    hours, rest = divmod(seconds, 3600)
    return f" ({hours} h {rest // 60} min ago)" if hours else f" ({rest // 60} min ago)"


def run_status(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Print the queue's counts; exit 0."""
    out = out or sys.stdout
    with _open(args) as store:
        stats = store.outbox.queue_stats()
        info: dict[str, Any] = {
            **stats.to_dict(), "by_type": stats.by_type, "terminal_id": store.terminal_id,
            "last_seq": store.outbox.last_seq(),
            "club_applied_seq": store.outbox.club_applied_seq(),
            "members_version": store.members.members_version(), "store": str(store.path),
        }
    if args.json:
        print(json.dumps(info, indent=2), file=out)
        return 0
    print(f"store:            {info['store']} (terminal {info['terminal_id']})", file=out)
    print(f"waiting:          {stats.pending}", file=out)
    oldest = info["oldest_at"] or "-"
    print(f"oldest waiting:   {oldest}{_age(stats.oldest_at, datetime.now(UTC))}", file=out)
    print(f"rejected:         {stats.rejected}"
          + ("  (see: clubterm queue list --state rejected)" if stats.rejected else ""), file=out)
    print(f"last seq:         {info['last_seq']}   club applied: {info['club_applied_seq']}",
          file=out)
    print(f"members version:  {info['members_version']}", file=out)
    if stats.by_type:
        print("waiting by type:", file=out)
        for type_, count in sorted(stats.by_type.items()):
            print(f"  {type_:<14} {count}", file=out)
    return 0


def run_list(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Print events as a table (or JSON); exit 0."""
    out = out or sys.stdout
    rows = []
    with _open(args) as store:
        for entry in store.outbox.iter_events(args.state):
            rows.append(entry)
            if args.limit is not None and len(rows) >= args.limit:
                break
    if args.json:
        print(json.dumps([r.to_dict() for r in rows], indent=2, ensure_ascii=False), file=out)
        return 0
    if not rows:
        print("no events" + (f" in state {args.state}" if args.state else ""), file=out)
        return 0
    table = [("SEQ", "ID", "TYPE", "AT", "STATE", "REASON")]
    table += [(str(r.seq), r.id, r.type, r.at, r.state, r.reason or "") for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(5)]
    for row in table:
        cells = [row[i].ljust(widths[i]) for i in range(5)] + [row[5]]
        print("  ".join(cells).rstrip(), file=out)
    return 0


def run_export(args: argparse.Namespace) -> int:
    """Write events as JSON lines to --out or stdout; exit 0."""
    from agent.errors import StorageError

    count = 0
    with _open(args) as store:
        if args.out:
            try:
                fh: TextIO = open(args.out, "w", encoding="utf-8")
            except OSError as exc:
                raise StorageError(f"cannot write {args.out}: {exc.strerror}") from None
        else:
            fh = sys.stdout
        try:
            for entry in store.outbox.iter_events(args.state):
                fh.write(json.dumps(entry.to_dict(), ensure_ascii=False) + "\n")
                count += 1
        finally:
            if args.out:
                fh.close()
    if args.out:
        print(f"wrote {count} events to {args.out}", file=sys.stderr)
    return 0
