"""A simulated terminal's files: configuration, secrets, rule keys and a seeded store.

Used by the daemon tests, the end-to-end tests, ``bench/agent.py`` and
``scripts/demo``; what a technician's ``clubterm provision enrol`` would leave on
a real box, made in a directory::

    python -m hw_sim.terminal setup DIR [--broker mqtt://127.0.0.1:PORT]
        [--profile sim] [--members 1000] [--no-bundle]

Demo staff: cashier ``1`` PIN ``1234`` (badge ``nfc:04AA000001``), manager
``2`` PIN ``4321`` (badge ``nfc:04AA000002``), technician ``3`` PIN ``9999``.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import secrets
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from provisioning.tomlwrite import dump_toml

TERMINAL_ID = "T-0001"
MERCHANT_ID = "M-7"
CLUB_ID = "acme"
KEY_ID = "club-2026-1"

STAFF = (
    ("1", "Mina Rahimi", "cashier", "1234", "nfc:04AA000001"),
    ("2", "Reza Karimi", "manager", "4321", "nfc:04AA000002"),
    ("3", "Tom Berger", "technician", "9999", "nfc:04AA000003"),
)

EMPTY_PROFILE = 'description = "No readers (API only)"\n'


def demo_bundle(version: int = 42, *, now: datetime | None = None,
                extra_rules: int = 0) -> dict[str, Any]:
    """The rules.md example bundle, valid for 30 days from ``now``.

    ``extra_rules`` adds that many narrow discount rules (benchmarks: 1,000 rules).
    """
    from hw_sim.club.bundles import EXAMPLE_RULES, make_bundle

    now = now or datetime.now(UTC)
    rules = copy.deepcopy(EXAMPLE_RULES)
    for i in range(extra_rules):
        rules.append({"id": f"sku-{i:04d}", "kind": "discount", "priority": 20 + i % 50,
                      "when": {"skus": [f"sku-{i:04d}"], "tiers": ["gold", "silver"][i % 2:]},
                      "then": {"percent_bps": 500 + i % 500, "max_amount": 1000}})
    bundle = make_bundle(CLUB_ID, MERCHANT_ID, version, now=now, rules=rules)
    # Issued an hour back, so a terminal whose clock runs a little behind accepts it.
    bundle["issued_at"] = (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return bundle


def demo_member_records(pan_key: bytes, count: int = 0) -> Iterator[dict[str, Any]]:
    """The demo members (holders of the hw_sim test cards), then ``count`` generated ones."""
    from agent.carddata.tokens import pan_token
    from hw_sim.cards import CARDS

    pans = sorted({c.pan for c in CARDS.values() if c.pan is not None})
    uids = sorted({c.uid for c in CARDS.values() if c.uid is not None})
    tiers = ("gold", "silver", "bronze")
    for i, pan in enumerate(pans):
        yield {"member_id": f"m-{i + 1}", "version": 1, "name": f"Card Holder {i + 1}",
               "status": "active", "tier": tiers[i % 3], "groups": [],
               "identifiers": [pan_token(pan_key, pan), f"tel:+98912000{i:04d}"],
               "balances": {"points": 1200, "credit.club": 5000},
               "stats": {"purchase_count": 3}, "applied": {}}
    for j, uid in enumerate(uids):
        yield {"member_id": f"m-tag-{j + 1}", "version": 1, "name": f"Tag Holder {j + 1}",
               "status": "active", "tier": "silver", "groups": [],
               "identifiers": [f"nfc:{uid.upper()}"], "balances": {"points": 300},
               "stats": {}, "applied": {}}
    for k in range(count):
        yield {"member_id": f"g-{k}", "version": 1, "name": f"Member {k}", "status": "active",
               "tier": tiers[k % 3], "groups": [],
               "identifiers": [f"code:CLUB-{k:07d}", f"tel:+4915{k:09d}"],
               "balances": {"points": 500 + k % 1000}, "stats": {}, "applied": {}}


@dataclass
class TerminalFiles:
    """Paths of a simulated terminal."""

    root: Path
    config: Path
    socket: Path
    state_dir: Path
    pan_key_file: Path
    club_keys: Path  # the club's private signing key lives here (not the terminal's)
    trusted_keys: Path

    @property
    def db(self) -> Path:
        return self.state_dir / "clubterm.db"

    def pan_key(self) -> bytes:
        return bytes.fromhex(self.pan_key_file.read_text().strip())


def sim_printer_table(address: str) -> str:
    """The ``[printer]`` table of a profile printing on the simulated network printer."""
    return ("\n[printer]\n"
            'kind = "network"\n'
            'model = "hw_sim simulated ESC/POS printer"\n'
            f"address = {json.dumps(address)}\n"
            "columns = 42\n"
            'shop_name = "Café Rose"\n'
            'shop_lines = ["12 Main St", "Open 8-20"]\n'
            "timeout_s = 2\n"
            "status_poll_s = 10\n")


def write_config(root: Path, *, broker_url: str | None = None, profile: str | None = None,
                 central_url: str | None = None, club_settings: Mapping[str, Any] | None = None,
                 socket: Path | None = None, club_id: str = CLUB_ID,
                 tls: tuple[Path, Path, Path] | None = None,
                 trusted_keys: Path | None = None, pan_key_hex: str | None = None,
                 profile_text: str | None = None, printer: str | None = None) -> TerminalFiles:
    """Write agent.toml, the pan_key (0600) and the rule keys into ``root``.

    ``tls`` is (CA, client certificate, client key); ``trusted_keys`` a folder of
    the club's public rule keys (default: a key pair made here, whose private half
    :func:`signed_bundle` uses); ``pan_key_hex`` the club's pan_key (default: a
    random one); ``profile_text`` a terminal profile written next to the config;
    ``club_settings`` more keys of ``[club]`` (link timings, limits); ``printer`` the
    ``host:port`` of a simulated network printer (``python -m hw_sim printer``): the
    profile gets a ``[printer]`` table printing every sale there.
    """
    from agent.rules import write_keypair

    root.mkdir(parents=True, exist_ok=True)
    files = TerminalFiles(root=root, config=root / "agent.toml",
                          socket=socket or root / "run" / "agent.sock",
                          state_dir=root / "state", pan_key_file=root / "secrets" / "pan_key",
                          club_keys=root / "club-keys",
                          trusted_keys=trusted_keys or root / "rules-keys")
    files.pan_key_file.parent.mkdir(parents=True, exist_ok=True)
    if not files.pan_key_file.exists():
        fd = os.open(files.pan_key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write((pan_key_hex or secrets.token_hex(32)) + "\n")
    if trusted_keys is None:
        if not (files.club_keys / f"{KEY_ID}.pem").exists():
            write_keypair(files.club_keys, KEY_ID)
        files.trusted_keys.mkdir(parents=True, exist_ok=True)
        (files.trusted_keys / f"{KEY_ID}.pub").write_bytes(
            (files.club_keys / f"{KEY_ID}.pub").read_bytes())
    if printer is not None:
        if profile_text is None:
            profile_text = f"extends = {json.dumps(profile)}\n" if profile else EMPTY_PROFILE
        profile_text += sim_printer_table(printer)
    if profile_text is not None:
        (root / "profile.toml").write_text(profile_text)
        profile = str(root / "profile.toml")
    if profile is None:
        (root / "no-readers.toml").write_text(EMPTY_PROFILE)
        profile = str(root / "no-readers.toml")
    club: dict[str, Any] = {"rules_keys_dir": str(files.trusted_keys)}
    if broker_url:
        club["broker_url"] = broker_url
    if central_url:
        club["central_url"] = central_url
    if (broker_url or "").startswith("mqtt://") or (central_url or "").startswith("http://"):
        club["allow_plain"] = True
    if tls is not None:
        club.update(ca_file=str(tls[0]), cert_file=str(tls[1]), key_file=str(tls[2]))
    club.update(club_settings or {})
    config = {
        "terminal": {"id": TERMINAL_ID, "merchant_id": MERCHANT_ID, "club_id": club_id,
                     "profile": profile, "default_country_code": "98"},
        "paths": {"state_dir": str(files.state_dir), "socket": str(files.socket)},
        "secrets": {"pan_key_file": str(files.pan_key_file)},
        "club": club,
        "log": {"format": "json"},
    }
    files.config.write_text(dump_toml(config))
    return files


def signed_bundle(files: TerminalFiles, bundle: dict[str, Any]) -> dict[str, str]:
    """``bundle`` signed with the club key of ``files``, as the retained envelope."""
    from agent.rules import load_private_key, sign_payload

    key = load_private_key(files.club_keys / f"{KEY_ID}.pem")
    payload = json.dumps(bundle, separators=(",", ":")).encode()
    return sign_payload(payload, key, key_id=KEY_ID)


def seed_store(files: TerminalFiles, *, members: int = 0, bundle: bool = True,
               extra_rules: int = 0, demo_members: bool = True) -> None:
    """Fill the store: staff, the demo members (+ ``members`` generated) and a bundle.

    Without ``demo_members`` and ``bundle`` only the staff are added (the members
    and the rules then come from the club, as on a real box).
    """
    from agent.offline_queue import Store

    store = Store.open(files.db, TERMINAL_ID, MERCHANT_ID)
    try:
        for staff_id, name, role, pin, badge in STAFF:
            store.records.put_staff(staff_id, name, role, by="setup", badges=[badge], pin=pin)
        if demo_members and store.members.members_version() == 0:
            lines = (json.dumps(m) for m in demo_member_records(files.pan_key(), members))
            store.members.import_snapshot(lines, 1, True)
        if bundle:
            data = demo_bundle(extra_rules=extra_rules)
            store.bundles.save_bundle(signed_bundle(files, data), data["version"])
    finally:
        store.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hw_sim.terminal",
                                     description="Make a simulated terminal's files.")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("setup", help="write config, secrets, keys and a seeded store")
    p.add_argument("dir", type=Path)
    p.add_argument("--broker", default=None, help="broker URL, e.g. mqtt://127.0.0.1:1883")
    p.add_argument("--central", default=None, help="HTTPS base URL of the club")
    p.add_argument("--profile", default=None, help="terminal profile (default: no readers)")
    p.add_argument("--socket", type=Path, default=None)
    p.add_argument("--members", type=int, default=0, help="generated members to add")
    p.add_argument("--extra-rules", type=int, default=0)
    p.add_argument("--no-bundle", action="store_true")
    p.add_argument("--club-id", default=CLUB_ID)
    p.add_argument("--trusted-keys", type=Path, default=None,
                   help="the club's public rule keys (default: a key pair made here)")
    p.add_argument("--pan-key-file", type=Path, default=None,
                   help="use the club's pan_key from this file (hex)")
    p.add_argument("--profile-file", type=Path, default=None,
                   help="copy this terminal profile next to the configuration")
    p.add_argument("--printer", default=None,
                   help="host:port of a simulated network printer (python -m hw_sim printer)")
    p.add_argument("--from-club", action="store_true",
                   help="staff only: members and rules come from the club")
    args = parser.parse_args(argv)
    pan_hex = args.pan_key_file.read_text().strip() if args.pan_key_file else None
    files = write_config(args.dir.resolve(), broker_url=args.broker, profile=args.profile,
                         central_url=args.central, socket=args.socket, club_id=args.club_id,
                         trusted_keys=args.trusted_keys, pan_key_hex=pan_hex,
                         profile_text=(args.profile_file.read_text() if args.profile_file
                                       else None), printer=args.printer)
    seed_store(files, members=args.members,
               bundle=not (args.no_bundle or args.from_club),
               extra_rules=args.extra_rules, demo_members=not args.from_club)
    print(files.config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
