"""``clubterm provision demo``: the simulated setup on a real box, before enrolment.

A technician who installed the package can try the service without a club: this
writes a demo configuration, a random pan_key, a demo club's rule key and a store
seeded with the demo staff, members (the holders of the ``hw_sim`` test cards) and a
signed rule bundle, all in the places the packaged unit uses. No readers (an API-only
profile) unless ``--profile`` names one; no club link unless ``--broker`` is given.

It refuses when a configuration already exists: it never replaces an enrolled box's
files. ``clubterm provision decommission`` removes the demo again (it holds no
unsent sales unless sales were made), after which ``provision enrol`` can run.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from agent.errors import ProvisioningError
from provisioning.state import Owner


def _chown_tree(path: Path, owner: Owner) -> None:
    if owner.uid is None:
        return
    gid = -1 if owner.gid is None else owner.gid
    os.chown(path, owner.uid, gid)
    for dirpath, dirnames, filenames in os.walk(path):
        for name in (*dirnames, *filenames):
            os.chown(os.path.join(dirpath, name), owner.uid, gid)


def write_demo(*, config: Path, state_dir: Path, secrets_dir: Path, socket: Path,
               owner: Owner, profile: str | None = None, broker_url: str | None = None,
               progress: Callable[[str], None] = lambda m: None) -> Path:
    """Write the demo configuration and seeded store; return the configuration's path."""
    from hw_sim.terminal import (
        CLUB_ID,
        EMPTY_PROFILE,
        MERCHANT_ID,
        TERMINAL_ID,
        TerminalFiles,
        seed_store,
    )

    if config.exists():
        raise ProvisioningError(
            f"{config} already exists: this box is enrolled or already set up for the demo. "
            f"Nothing was changed. 'clubterm provision decommission' removes it first.")
    if broker_url is not None and not broker_url.startswith(("mqtt://", "mqtts://")):
        raise ProvisioningError(f"--broker {broker_url!r}: give an mqtt:// or mqtts:// URL")
    demo_dir = state_dir / "demo"
    if profile is None:
        demo_dir.mkdir(parents=True, exist_ok=True)
        (demo_dir / "no-readers.toml").write_text(EMPTY_PROFILE)
        profile = str(demo_dir / "no-readers.toml")
    secrets_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    pan_key_file = secrets_dir / "pan_key"
    # The club's signing key is only needed to sign the demo bundle: it never stays.
    with tempfile.TemporaryDirectory(prefix="clubterm-demo-") as club_keys:
        files = TerminalFiles(root=config.parent, config=config, socket=socket,
                              state_dir=state_dir, pan_key_file=pan_key_file,
                              club_keys=Path(club_keys), trusted_keys=demo_dir / "rules_keys")
        from agent.rules import write_keypair
        from hw_sim.terminal import KEY_ID

        write_keypair(files.club_keys, KEY_ID)
        files.trusted_keys.mkdir(parents=True, exist_ok=True)
        (files.trusted_keys / f"{KEY_ID}.pub").write_bytes(
            (files.club_keys / f"{KEY_ID}.pub").read_bytes())
        fd = os.open(pan_key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(os.urandom(32).hex() + "\n")
        progress(f"Seeding the demo store in {state_dir} (staff, members, rules)")
        seed_store(files)
    club = f'rules_keys_dir = "{files.trusted_keys}"\n'
    if broker_url is not None:
        club += f'broker_url = "{broker_url}"\n'
        if broker_url.startswith("mqtt://"):
            club += "allow_plain = true\n"
    text = (
        "# clubterm DEMO configuration, written by 'clubterm provision demo'.\n"
        "# Not a club terminal: 'clubterm provision decommission' removes it before enrolment.\n"
        "[terminal]\n"
        f'id = "{TERMINAL_ID}"\nmerchant_id = "{MERCHANT_ID}"\nclub_id = "{CLUB_ID}"\n'
        f'profile = "{profile}"\ndefault_country_code = "98"\n\n'
        "[paths]\n"
        f'state_dir = "{state_dir}"\nsocket = "{socket}"\n\n'
        "[secrets]\n"
        f'pan_key_file = "{pan_key_file}"\n\n'
        f"[club]\n{club}\n"
        '[log]\nformat = "json"\n')
    _chown_tree(state_dir, owner)
    _chown_tree(secrets_dir, owner)
    tmp = config.with_name(config.name + ".tmp")
    tmp.write_text(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, config)
    progress(f"Wrote {config}")
    return config
