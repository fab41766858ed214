"""``clubterm doctor``: what is configured, what is present, and what to fix."""

from __future__ import annotations

import argparse
import json
import sys

from agent.config import load_config, load_profile


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``doctor`` command."""
    p = sub.add_parser(
        "doctor",
        help="check readers, store and club link settings",
        description="Check the configured readers, the store and the club link settings. "
        "Each line says OK, WARN or FAIL, and for a problem one thing to try. "
        "Exits 1 when anything failed.",
    )
    p.add_argument("--profile", metavar="NAME",
                   help="check only the readers of this terminal profile (no configuration "
                        "needed; e.g. on a box that is not enrolled yet)")
    p.add_argument("--json", action="store_true", help="print the checks as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from agent import doctor

    checks: list[doctor.Check] = []
    if args.profile:
        checks += doctor.check_profile_readers(load_profile(args.profile))
    else:
        # Secrets are checked one by one below, so a bad mode is a FAIL line, not an abort.
        cfg = load_config(args.config, check_secrets=False)
        checks.append(doctor.Check("config", str(cfg.path), True,
                                   f"profile {cfg.profile.name}: {cfg.profile.description}"))
        checks += doctor.check_profile_readers(cfg.profile)
        checks += doctor.check_store(cfg)
        checks += doctor.check_club(cfg)
    failed = [c for c in checks if not c.ok]
    if args.json:
        print(json.dumps([c.__dict__ for c in checks], indent=2))
    else:
        area = None
        for c in checks:
            if c.area != area:
                area = c.area
                print(f"{area}:")
            mark = "FAIL" if not c.ok else ("WARN" if c.warning else " OK ")
            print(f"  [{mark}] {c.name}: {c.detail}")
            if c.fix and (not c.ok or c.warning):
                print(f"         -> {c.fix}")
        print()
        print(f"{len(failed)} problem(s) found." if failed else "Everything checked is fine.")
    sys.stdout.flush()
    return 1 if failed else 0
