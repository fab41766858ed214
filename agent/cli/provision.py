"""`clubterm provision`: enrol, selftest, rotate, status, detect, decommission.

What a technician runs to put a box into service and take it out again; the steps
and the enrolment protocol are in ``docs/provisioning.md``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

DEFAULT_STATE_DIR = Path("/var/lib/clubterm")


def _say(message: str) -> None:
    print(message, flush=True)


def _config_path(args: argparse.Namespace) -> Path:
    from agent.config import default_config_path

    return Path(args.config) if getattr(args, "config", None) else default_config_path()


def _owner(name: str | None) -> Any:
    from agent.errors import ProvisioningError
    from provisioning.state import Owner

    if not name:
        return Owner()
    import pwd

    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise ProvisioningError(f"there is no user {name!r} on this box (--user)") from None
    return Owner(entry.pw_uid, entry.pw_gid)


def _enrol(args: argparse.Namespace) -> int:
    from agent.config import load_config
    from agent.errors import ConfigError
    from provisioning.enrol import enrol

    config_out = Path(args.config_out) if args.config_out else _config_path(args)
    state_dir = Path(args.state_dir) if args.state_dir else None
    if state_dir is None:
        try:
            state_dir = load_config(config_out, check_secrets=False).state_dir
        except ConfigError:
            state_dir = DEFAULT_STATE_DIR
    enrol(central_url=args.central, code=args.code, ca_fingerprint=args.ca_fingerprint,
          config_out=config_out, state_dir=state_dir.absolute(), profile=args.profile,
          owner=_owner(args.user), timeout=args.timeout, progress=_say)
    return 0


def _detect(args: argparse.Namespace) -> int:
    from provisioning.detect import detect_hardware, rank_profiles, shipped_profiles

    hw = detect_hardware()
    _say("PC/SC readers: " + (", ".join(hw.pcsc_readers) or "none"))
    _say("Input devices: " + (", ".join(hw.input_devices) or "none"))
    _say("Serial ports:  " + (", ".join(hw.serial_ports) or "none"))
    for note in hw.notes:
        _say(f"note: {note}")
    for match in rank_profiles(shipped_profiles(), hw):
        state = "fits" if match.complete else f"missing {', '.join(match.missing)}"
        _say(f"  {match.name:28} {state}")
    return 0


def _selftest(args: argparse.Namespace) -> int:
    from provisioning.selftest import run_selftest

    path = _config_path(args)
    _say(f"Self-test of {path}")
    checks = run_selftest(path, tap_timeout=args.tap_timeout, timeout=args.timeout, progress=_say)
    failed = [c for c in checks if not c.ok]
    if failed:
        _say(f"{len(failed)} check(s) failed; fix them and run "
             f"'clubterm provision selftest' again.")
        return 1
    _say("All checks passed. The terminal is ready.")
    return 0


def _rotate(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime, timedelta

    from agent.config import load_config
    from provisioning.crypto import load_cert
    from provisioning.enrol import rotate

    cfg = load_config(_config_path(args))
    if args.if_expiring_within is not None and cfg.cert_file is not None:
        cert = load_cert(cfg.cert_file.read_bytes(), "certificate")
        left = cert.not_valid_after_utc - datetime.now(UTC)
        if left > timedelta(days=args.if_expiring_within):
            _say(f"The certificate is valid for {left.days} more days; nothing to do.")
            return 0
    rotate(cfg, owner=_owner(args.user), timeout=args.timeout, progress=_say)
    return 0


def _status(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from agent.config import load_config
    from provisioning.crypto import cert_fingerprint, load_cert
    from provisioning.expiry import cert_expiry_warning

    cfg = load_config(_config_path(args), check_secrets=False)
    _say(f"terminal {cfg.terminal_id}  merchant {cfg.merchant_id}  club {cfg.club_id}")
    _say(f"profile  {cfg.profile.name}  broker {cfg.broker_url}  central {cfg.central_url}")
    warning = None
    if cfg.cert_file is not None:
        try:
            cert = load_cert(cfg.cert_file.read_bytes(), "certificate")
            _say(f"certificate valid until {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC")
        except OSError:
            pass
        warning = cert_expiry_warning(cfg.cert_file, datetime.now(UTC))
    if cfg.ca_file is not None and cfg.ca_file.exists():
        _say(f"club CA  {cert_fingerprint(load_cert(cfg.ca_file.read_bytes(), 'CA'))}")
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
        return 1
    return 0


def _decommission(args: argparse.Namespace) -> int:
    from agent.config import load_config
    from provisioning.decommission import decommission

    cfg = load_config(_config_path(args), check_secrets=False)
    decommission(cfg, force=args.force, export=Path(args.export) if args.export else None,
                 progress=_say)
    _say("The terminal is decommissioned. Ask the club to revoke its certificate.")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from provisioning.demo import write_demo

    config = write_demo(config=_config_path(args), state_dir=Path(args.state_dir),
                        secrets_dir=Path(args.secrets_dir), socket=Path(args.socket),
                        owner=_owner(args.user), profile=args.profile,
                        broker_url=args.broker, progress=_say)
    _say(f"Demo ready ({config}). Start it: systemctl start clubterm; then try "
         "'clubterm status' and 'clubterm sale --quote-only --amount 12000 --phone 09120000000'.")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `provision` command and its sub-commands."""
    p = sub.add_parser("provision", help="enrol, test, rotate or decommission this terminal",
                       description="Put this terminal into service and take it out again "
                                   "(docs/provisioning.md).")
    steps = p.add_subparsers(dest="provision_command", metavar="STEP")

    def _help(args: argparse.Namespace) -> int:
        p.print_help()
        return 2

    p.set_defaults(func=_help)

    e = steps.add_parser("enrol", help="enrol this box with the club using a one-time code")
    e.add_argument("--central", required=True, metavar="URL", help="the club's https:// URL")
    e.add_argument("--code", required=True, help="the one-time enrolment code")
    e.add_argument("--ca-fingerprint", metavar="SHA256",
                   help="SHA-256 fingerprint of the club CA, from the enrolment sheet")
    e.add_argument("--profile", metavar="NAME",
                   help="terminal profile (default: proposed from the attached readers)")
    e.add_argument("--state-dir", metavar="DIR",
                   help=f"where keys and the store live (default: {DEFAULT_STATE_DIR})")
    e.add_argument("--config-out", metavar="FILE",
                   help="configuration file to write (default: --config or its default)")
    e.add_argument("--user", metavar="NAME", help="give the files to this user (the agent's)")
    e.add_argument("--timeout", type=float, default=15, help="network timeout in seconds")
    e.set_defaults(func=_enrol)

    d = steps.add_parser("detect", help="show attached readers and which profiles fit")
    d.set_defaults(func=_detect)

    s = steps.add_parser("selftest", help="check readers, broker, rules and members")
    s.add_argument("--tap-timeout", type=float, default=20, metavar="SECONDS",
                   help="how long to wait for a test card on each reader (0: presence only)")
    s.add_argument("--timeout", type=float, default=10, help="network timeout in seconds")
    s.set_defaults(func=_selftest)

    r = steps.add_parser("rotate", help="new device key and certificate (queue untouched)")
    r.add_argument("--if-expiring-within", type=int, metavar="DAYS",
                   help="only rotate if the certificate expires within DAYS")
    r.add_argument("--user", metavar="NAME", help="give the files to this user (the agent's)")
    r.add_argument("--timeout", type=float, default=15, help="network timeout in seconds")
    r.set_defaults(func=_rotate)

    st = steps.add_parser("status", help="identity and certificate expiry (exit 1 on a warning)")
    st.set_defaults(func=_status)

    m = steps.add_parser("demo", help="the simulated setup, to try the service before enrolment")
    m.add_argument("--state-dir", default=str(DEFAULT_STATE_DIR), metavar="DIR",
                   help=f"where the demo store lives (default: {DEFAULT_STATE_DIR})")
    m.add_argument("--secrets-dir", default="/etc/clubterm/secrets", metavar="DIR",
                   help="where the demo pan_key goes (default: /etc/clubterm/secrets)")
    m.add_argument("--socket", default="/run/clubterm/agent.sock", metavar="PATH",
                   help="the API socket (default: /run/clubterm/agent.sock)")
    m.add_argument("--user", metavar="NAME", help="give the files to this user (the agent's)")
    m.add_argument("--profile", metavar="NAME", help="terminal profile (default: no readers)")
    m.add_argument("--broker", metavar="URL", help="a broker for the club link (default: none)")
    m.set_defaults(func=_demo)

    x = steps.add_parser("decommission", help="wipe keys, pan_key and member cache")
    x.add_argument("--force", action="store_true",
                   help="go on although events are pending (they are exported first)")
    x.add_argument("--export", metavar="FILE", help="where to export pending events (JSON lines)")
    x.set_defaults(func=_decommission)
