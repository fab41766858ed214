"""`clubterm staff`: the terminal's local staff, for a technician setting up a box.

    clubterm staff list [--all] [--json]
    clubterm staff add STAFF_ID --name NAME --role ROLE [--badge TOKEN]... [--pin-stdin | --no-pin]
    clubterm staff set-pin STAFF_ID [--pin-stdin]
    clubterm staff set-badges STAFF_ID [TOKEN ...]
    clubterm staff disable STAFF_ID
    clubterm staff enable STAFF_ID

The store is the configuration's ``paths.state_dir``/clubterm.db (or ``--db PATH``),
opened for writing. The running agent reads staff from the store on every sign-in,
so a change counts at once, without a restart; SQLite's lock makes the two writers
take turns. A PIN is read from the terminal (asked twice) or, with ``--pin-stdin``,
as one line of standard input; never from the command line, where ``ps`` shows it.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import pwd
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from agent.errors import ClubtermError

if TYPE_CHECKING:
    from agent.offline_queue import Store

ROLES = ("cashier", "manager", "technician")
MAX_ID = 32  # what the staff UI's number field takes
MAX_NAME = 100
PIN_DIGITS = (4, 12)  # the staff UI's PIN field takes digits only, at most 12

EPILOG = """\
roles:
  cashier     sales, clock, cash entries, diary, members (no refunds)
  manager     what a cashier does, plus refunds and per-staff figures
  technician  signs in for the status and the clock only; cannot sell

PIN:
  asked twice on the terminal; or one line on standard input with --pin-stdin:
      printf '%s\\n' "$PIN" | clubterm staff add 7 --name "Sara K." --role cashier --pin-stdin
  4 to 12 digits (the till's keypad types digits only). Never on the command line.

badges:
  a badge is the token of its NFC tag, nfc:<UID in hex>, e.g. nfc:04AA0000BEEF; a
  bare UID is taken as that. 'clubterm card read' shows a tag's token (stop the
  agent first if it holds the reader).

The agent may keep running: it reads staff on every sign-in, changes count at once.
Run as the agent's user (sudo -u clubterm clubterm staff ...) so that files SQLite
creates next to the store stay the agent's.

examples:
  clubterm staff add 1 --name "Mina Rahimi" --role manager --badge nfc:04AA000001
  clubterm staff list
  clubterm staff set-pin 1
  clubterm staff disable 1
"""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `staff` command and its sub-commands."""
    parser = sub.add_parser(
        "staff", help="add, list and change the terminal's local staff",
        description="Add, list and change the staff who sign in at this terminal "
                    "(local staff, kept in the agent's store).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", metavar="PATH", default=None,
                        help="the store file (default: clubterm.db in the configured state_dir)")
    actions = parser.add_subparsers(dest="staff_command", metavar="ACTION")

    listing = actions.add_parser("list", parents=[common], help="list staff members",
                                 description="List staff members (active ones by default).")
    listing.add_argument("--all", action="store_true", help="disabled ones too")
    listing.add_argument("--json", action="store_true", help="print a JSON array")
    listing.set_defaults(func=run_list)

    add = actions.add_parser(
        "add", parents=[common], help="add a staff member",
        description="Add a staff member with a PIN (asked for) and optional badges.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add.add_argument("staff_id", metavar="STAFF_ID",
                     help=f"the number the staff member types at sign-in (at most {MAX_ID} "
                          "characters, no spaces)")
    add.add_argument("--name", required=True, help="the name shown on screens and receipts")
    add.add_argument("--role", required=True, choices=ROLES, help="what the member may do")
    add.add_argument("--badge", action="append", default=[], metavar="TOKEN",
                     help="a badge token (nfc:<UID>); repeat for several")
    pin = add.add_mutually_exclusive_group()
    pin.add_argument("--pin-stdin", action="store_true",
                     help="read the PIN as one line of standard input (scripts)")
    pin.add_argument("--no-pin", action="store_true",
                     help="no PIN: signs in by badge only")
    _refuse_pin_in_argv(add)
    add.set_defaults(func=run_add)

    set_pin = actions.add_parser("set-pin", parents=[common], help="set a new PIN",
                                 description="Set a staff member's PIN (asked for twice).")
    set_pin.add_argument("staff_id", metavar="STAFF_ID")
    set_pin.add_argument("--pin-stdin", action="store_true",
                         help="read the PIN as one line of standard input")
    _refuse_pin_in_argv(set_pin)
    set_pin.set_defaults(func=run_set_pin)

    badges = actions.add_parser(
        "set-badges", parents=[common], help="replace a staff member's badges",
        description="Replace a staff member's badges with the TOKENs given (none: no badge).")
    badges.add_argument("staff_id", metavar="STAFF_ID")
    badges.add_argument("tokens", nargs="*", metavar="TOKEN", help="badge tokens (nfc:<UID>)")
    badges.set_defaults(func=run_set_badges)

    for name, active, text in (("disable", False, "stop a staff member signing in"),
                               ("enable", True, "let a disabled staff member sign in again")):
        action = actions.add_parser(name, parents=[common], help=text,
                                    description=text[0].upper() + text[1:] + " (history "
                                    "stays; sessions already open end when they expire).")
        action.add_argument("staff_id", metavar="STAFF_ID")
        action.set_defaults(func=run_set_active, active=active)

    parser.set_defaults(func=lambda args: _usage(parser))


def _refuse_pin_in_argv(parser: argparse.ArgumentParser) -> None:
    # Without it argparse would take "--pin 1234" as --pin-stdin (an abbreviation)
    # and then echo "unrecognized arguments: 1234" to the screen.
    parser.add_argument("--pin", dest="pin_in_argv", default=None, help=argparse.SUPPRESS)


def _no_pin_in_argv(args: argparse.Namespace) -> None:
    if getattr(args, "pin_in_argv", None) is not None:
        raise ClubtermError("a PIN is never given on the command line (any user can see it "
                            "with ps): type it when asked, or pipe it in with --pin-stdin; "
                            "nothing was changed")


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


# ------------------------------------------------------------------ checks (pure)


def check_staff_id(staff_id: str) -> str:
    """The staff id, or ClubtermError saying what is wrong with it."""
    if not staff_id or len(staff_id) > MAX_ID or not staff_id.isprintable() or \
            any(ch.isspace() for ch in staff_id):
        raise ClubtermError(f"the staff id must be 1 to {MAX_ID} characters without spaces, "
                            f"not {staff_id!r}")
    return staff_id


def check_name(name: str) -> str:
    """The trimmed name, or ClubtermError."""
    name = name.strip()
    if not name or len(name) > MAX_NAME or not name.isprintable():
        raise ClubtermError(f"the name must be 1 to {MAX_NAME} printable characters")
    return name


def check_pin(pin: str) -> str:
    """The PIN, or ClubtermError (never naming the PIN)."""
    low, high = PIN_DIGITS
    if not pin:
        raise ClubtermError("the PIN is empty")
    if not (pin.isascii() and pin.isdigit() and low <= len(pin) <= high):
        raise ClubtermError(f"the PIN must be {low} to {high} digits (the till's keypad types "
                            "digits only)")
    return pin


def badge_token(text: str) -> str:
    """The badge token of ``text`` (``nfc:<UID>`` or a bare UID), or ClubtermError."""
    from agent.carddata.tokens import token_kind

    text = text.strip()
    if ":" not in text:
        text = "nfc:" + text.upper()
    elif text.lower().startswith("nfc:"):
        text = "nfc:" + text[4:].upper()
    try:
        token_kind(text)
    except ClubtermError:
        raise ClubtermError(f"{text!r} is not a badge token: give nfc:<UID in hex>, e.g. "
                            "nfc:04AA0000BEEF") from None
    return text


# ------------------------------------------------------------------ I/O


def _open(args: argparse.Namespace) -> Store:
    from agent.offline_queue import Store

    if args.db:
        path, terminal_id, merchant_id = Path(args.db), None, None
    else:
        from agent.config import load_config

        config = load_config(args.config, check_secrets=False)
        path, terminal_id, merchant_id = config.db_path, config.terminal_id, config.merchant_id
    if not path.exists():
        raise ClubtermError(f"there is no store at {path} yet: start the agent once (it "
                            "creates the store), then add staff")
    owner = path.stat().st_uid
    if os.geteuid() == 0 and owner != 0:
        try:
            user = pwd.getpwuid(owner).pw_name
        except KeyError:
            user = str(owner)
        raise ClubtermError(f"run this as the store's owner, e.g. 'sudo -u {user} clubterm "
                            "staff ...': as root, SQLite could leave files next to the store "
                            "that the agent cannot open")
    return Store.open(path, terminal_id, merchant_id)


def read_pin(args: argparse.Namespace, staff_id: str, stdin: TextIO | None = None) -> str:
    """The new PIN: one line of stdin with --pin-stdin, else asked twice on the terminal."""
    stdin = stdin or sys.stdin
    if args.pin_stdin:
        return check_pin(stdin.readline().rstrip("\r\n"))
    if not stdin.isatty():
        raise ClubtermError("standard input is not a terminal, so the PIN cannot be asked "
                            "for: pipe it in with --pin-stdin")
    pin = check_pin(getpass.getpass(f"PIN for staff {staff_id}: "))
    if getpass.getpass("The same PIN again: ") != pin:
        raise ClubtermError("the two PINs differ; nothing was changed")
    return pin


def _by() -> str:
    try:
        return "cli:" + getpass.getuser()
    except (KeyError, OSError):
        return "cli"


def _existing(store: Store, staff_id: str) -> dict[str, Any]:
    found = store.records.staff(staff_id)
    if found is None:
        raise ClubtermError(f"there is no staff member {staff_id!r} (see: clubterm staff "
                            "list --all)")
    return found


def _free_badges(store: Store, staff_id: str, tokens: list[str]) -> list[str]:
    badges = [badge_token(t) for t in tokens]
    for other in store.records.list_staff(include_inactive=True):
        taken = set(other["badges"]) & set(badges)
        if other["staff_id"] != staff_id and taken:
            raise ClubtermError(f"the badge {sorted(taken)[0]} belongs to staff member "
                                f"{other['staff_id']} ({other['name']}); take it from them "
                                "first (clubterm staff set-badges)")
    return list(dict.fromkeys(badges))


# ------------------------------------------------------------------ actions


def run_list(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Print the staff as a table (or JSON); exit 0. Badge tokens are counted, not shown."""
    out = out or sys.stdout
    with _open(args) as store:
        rows = store.records.list_staff(include_inactive=args.all)
    items = [{"staff_id": r["staff_id"], "name": r["name"], "role": r["role"],
              "source": r.get("source", "local"), "groups": r.get("groups", [r["role"]]),
              "active": r["active"], "has_pin": r["has_pin"], "badges": len(r["badges"]),
              "updated_at": r["updated_at"], "updated_by": r["updated_by"]} for r in rows]
    if args.json:
        print(json.dumps(items, indent=2, ensure_ascii=False), file=out)
        return 0
    if not items:
        print("no staff" + ("" if args.all else " (active); see also --all") +
              ": add one with 'clubterm staff add'", file=out)
        return 0
    table = [("ID", "NAME", "ROLE", "ACTIVE", "PIN", "BADGES")]
    table += [(i["staff_id"], i["name"], i["role"], "yes" if i["active"] else "no",
               "yes" if i["has_pin"] else "no", str(i["badges"])) for i in items]
    widths = [max(len(row[c]) for row in table) for c in range(6)]
    for row in table:
        print("  ".join(row[c].ljust(widths[c]) for c in range(6)).rstrip(), file=out)
    return 0


def run_add(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Add a staff member; a taken id or badge is an error (exit 2)."""
    out = out or sys.stdout
    _no_pin_in_argv(args)
    staff_id = check_staff_id(args.staff_id)
    name = check_name(args.name)
    with _open(args) as store:
        if store.records.staff(staff_id) is not None:
            raise ClubtermError(f"staff member {staff_id!r} already exists; change them with "
                                "set-pin, set-badges, enable or disable")
        badges = _free_badges(store, staff_id, args.badge)
        if args.no_pin and not badges:
            raise ClubtermError("without a PIN the staff member needs a badge (--badge)")
        pin = None if args.no_pin else read_pin(args, staff_id)
        store.records.put_staff(staff_id, name, args.role, by=_by(), badges=badges, pin=pin)
    how = ("PIN" if pin else "") + (" and " if pin and badges else "") + \
        (f"{len(badges)} badge(s)" if badges else "")
    print(f"added staff member {staff_id} ({name}, {args.role}); signs in with {how}", file=out)
    return 0


def run_set_pin(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Set a staff member's PIN."""
    out = out or sys.stdout
    _no_pin_in_argv(args)
    with _open(args) as store:
        found = _existing(store, args.staff_id)
        pin = read_pin(args, found["staff_id"])
        store.records.put_staff(found["staff_id"], found["name"], found["role"], by=_by(), pin=pin)
        if not found["active"]:  # put_staff enables; keep a disabled member disabled
            store.records.set_staff_active(found["staff_id"], False, by=_by())
    print(f"new PIN set for staff member {found['staff_id']} ({found['name']})", file=out)
    return 0


def run_set_badges(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Replace a staff member's badges."""
    out = out or sys.stdout
    with _open(args) as store:
        found = _existing(store, args.staff_id)
        badges = _free_badges(store, found["staff_id"], args.tokens)
        if not badges and not found["has_pin"]:
            raise ClubtermError("this staff member has no PIN: without a badge they could not "
                                "sign in (set a PIN first: clubterm staff set-pin)")
        store.records.put_staff(found["staff_id"], found["name"], found["role"], by=_by(),
                        badges=badges)
        if not found["active"]:
            store.records.set_staff_active(found["staff_id"], False, by=_by())
    print(f"staff member {found['staff_id']} ({found['name']}) now has {len(badges)} "
          "badge(s)", file=out)
    return 0


def run_set_active(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Disable or enable a staff member (their history stays)."""
    out = out or sys.stdout
    with _open(args) as store:
        found = _existing(store, args.staff_id)
        store.records.set_staff_active(found["staff_id"], args.active, by=_by())
    state = "enabled" if args.active else "disabled: can no longer sign in or clock"
    print(f"staff member {found['staff_id']} ({found['name']}) {state}", file=out)
    return 0
