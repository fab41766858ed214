"""Run the simulated club for the demo.

    python -m hw_sim.club --broker mqtt://127.0.0.1:1883 --state /tmp/club \\
        [--club acme] [--merchant M-7] [--members FILE] [--https-port 8443] [--pki DIR]

``--broker auto`` starts a private mosquitto in the state folder. With an
``mqtts://`` broker, ``--pki DIR`` holds the club CA (made on first use) and the
club's certificates; the snapshot server then speaks HTTPS with client
certificates. Members are seeded from a JSON file (``demo_members.json`` by
default) the first time; a rule bundle is signed and published (retained) for
every ``--merchant``, a signed staff list with the demo staff (unless
``--no-staff``) and the demo's product catalogue (unless ``--no-catalogue``). It
prints what a terminal's configuration needs.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import threading
from importlib import resources
from pathlib import Path
from typing import Any

from hw_sim.broker import MosquittoBroker, club_account
from hw_sim.club.pki import ClubCA
from hw_sim.club.sim import ClubTls, SimClub


def load_members_file(path: Path | None) -> dict[str, Any]:
    """The seed file: ``{"pan_key_hex": ..., "members": [record, ...]}``."""
    if path is None:
        text = resources.files("hw_sim.club").joinpath("demo_members.json").read_text()
    else:
        text = path.read_text()
    doc = json.loads(text)
    if not isinstance(doc, dict) or not isinstance(doc.get("members"), list):
        raise SystemExit(f"{path}: must be an object with a 'members' list")
    if path is None:
        _demo_packages(doc["members"])
    return doc


def _demo_packages(members: list[dict[str, Any]]) -> None:
    """(#19) The demo's visit packages, dated from today (the same as ``--demo``'s):
    Sara's gym pass with 7 visits left, Ali's monthly membership in its grace days."""
    from datetime import date

    from agent.localapi.demo import add_demo_packages

    for record in members:
        as_member = {"m-1001": "m-1", "m-1002": "m-2"}.get(str(record.get("member_id")))
        if as_member is not None:
            add_demo_packages(record, date.today(), as_member)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hw_sim.club", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--broker", required=True, help="mqtt://host:port, mqtts://..., or auto")
    ap.add_argument("--state", required=True, type=Path, help="folder for the ledger and keys")
    ap.add_argument("--club", default="acme")
    ap.add_argument("--merchant", action="append", default=None,
                    help="publish a rule bundle for this merchant (repeatable; default M-7)")
    ap.add_argument("--members", type=Path, default=None, help="seed file (JSON)")
    ap.add_argument("--bundle-version", type=int, default=1)
    ap.add_argument("--staff-version", type=int, default=1,
                    help="version of the demo staff list published per merchant")
    ap.add_argument("--no-staff", action="store_true",
                    help="publish no staff list (a v1 club: terminals keep local staff)")
    ap.add_argument("--no-catalogue", action="store_true",
                    help="publish no product catalogue (a v1 club: cashiers type prices)")
    ap.add_argument("--timezone", default="Europe/Berlin")
    ap.add_argument("--https-port", type=int, default=0)
    ap.add_argument("--coalesce", type=float, default=0.25,
                    help="gather member changes this many seconds into one change set")
    ap.add_argument("--pki", type=Path, default=None, help="club CA folder (for mqtts://)")
    ap.add_argument("--write-pan-key", type=Path, default=None,
                    help="write the seed file's pan_key (hex, mode 0600) for the demo terminal")
    ap.add_argument("--log-level", default="info")
    args = ap.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args.state.mkdir(parents=True, exist_ok=True)

    broker = None
    broker_url = args.broker
    if broker_url == "auto":
        broker = MosquittoBroker(args.state / "broker")
        broker.start()
        broker_url = broker.url

    tls = None
    if broker_url.startswith("mqtts://"):
        pki_dir = args.pki or args.state / "pki"
        ca = ClubCA.load_or_create(pki_dir)
        if not (pki_dir / "localhost.pem").exists():
            ca.issue(pki_dir, "localhost", server=True)
        # The club's own broker account (docs/sync.md "Broker identity").
        account = club_account(args.club)
        stem = f"club-account-{args.club}"
        if not (pki_dir / f"{stem}.pem").exists():
            ca.issue(pki_dir, account, stem=stem)
        tls = ClubTls(ca=ca.cert_file, client_cert=pki_dir / f"{stem}.pem",
                      client_key=pki_dir / f"{stem}.key", server_cert=pki_dir / "localhost.pem",
                      server_key=pki_dir / "localhost.key")

    seed = load_members_file(args.members)
    club = SimClub(args.state, broker_url, club_id=args.club, tls=tls, timezone=args.timezone,
                   https_port=args.https_port, change_coalesce_s=args.coalesce)
    club.start()
    if club.ledger.members_version() == 0:
        version = club.upsert_members(seed["members"])
        logging.info("seeded %d members (members version %d)", len(seed["members"]), version)
    for merchant in args.merchant or ["M-7"]:
        club.publish_bundle(merchant, args.bundle_version)
        if not args.no_catalogue:
            # The demo's products (python -m hw_sim list-products).
            club.publish_catalogue(merchant)
        if not args.no_staff:
            # The demo staff (1/1234 cashier, 2/4321 manager, 3/9999 technician).
            club.publish_staff(merchant, args.staff_version)
    if args.write_pan_key is not None and seed.get("pan_key_hex"):
        fd = os.open(args.write_pan_key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(seed["pan_key_hex"] + "\n")
    keys_dir = args.state / "keys"
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: done.set())
    signal.signal(signal.SIGINT, lambda *a: done.set())
    print(f"club {args.club} is running", flush=True)
    print(f"  broker_url      = {broker_url}")
    print(f"  central_url     = {club.central_url}")
    print(f"  rules_keys_dir  = {keys_dir}   (trusted key {club.signing_key.key_id}.pub)")
    if tls is not None:
        print(f"  ca_file         = {tls.ca}")
    print("Ctrl-C stops it.", flush=True)

    done.wait()
    club.stop()
    if broker is not None:
        broker.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
