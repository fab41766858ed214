"""The terminal's identity on disk, and the one atomic step that switches to a new one.

Layout (``docs/provisioning.md``)::

    STATE_DIR/                      0750
      identity/GEN/                 0750   one generation per enrolment or rotation
        device.key                  0600   ECDSA P-256 device key
        device.crt                  0644   client certificate, CN = terminal id
        ca.crt                      0644   the pinned club CA
        pan_key                     0600   the club's pan_key, 64 hex digits
        rules_keys/KEY_ID.pub       0644   trusted rule-signing keys
      pending-enrol.key             0600   only while an enrolment is in flight
      clubterm.db                          the store (outbox, member cache); never touched here

A generation is written completely and fsynced before anything points at it. The
commit is a single ``rename`` of the agent configuration, which names the files of
exactly one generation: a crash before it leaves the old configuration and the old
generation as they were; a crash after it leaves the new ones. Generations nobody
points at (from a crash, or older than the previous one) are wiped on the next run.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent.config import load_config
from agent.errors import ConfigError, ProvisioningError
from provisioning.atomic import fsync_dir, make_dir, write_atomic
from provisioning.tomlwrite import dump_toml

IDENTITY_DIR = "identity"
PENDING_KEY = "pending-enrol.key"
CONFIG_HEADER = (
    "clubterm agent configuration, written by 'clubterm provision'.\n"
    "Keys in [terminal], [club] and [secrets] are rewritten by enrol and rotate;\n"
    "other sections are kept (comments are not). See docs/configuration.md."
)


@dataclass(frozen=True)
class Owner:
    """Who the agent runs as: files are given to this uid/gid (None = leave as is)."""

    uid: int | None = None
    gid: int | None = None


@dataclass(frozen=True)
class Identity:
    """Everything one generation holds."""

    key_pem: bytes
    cert_pem: bytes
    ca_pem: bytes
    pan_key: bytes
    rules_keys: Mapping[str, bytes]  # key_id -> public key PEM


@dataclass(frozen=True)
class GenerationFiles:
    """Paths of one generation's files."""

    folder: Path

    @property
    def key_file(self) -> Path:
        """The device key."""
        return self.folder / "device.key"

    @property
    def cert_file(self) -> Path:
        """The client certificate."""
        return self.folder / "device.crt"

    @property
    def ca_file(self) -> Path:
        """The pinned club CA."""
        return self.folder / "ca.crt"

    @property
    def pan_key_file(self) -> Path:
        """The pan_key (hex)."""
        return self.folder / "pan_key"

    @property
    def rules_keys_dir(self) -> Path:
        """Trusted rule-signing keys, ``KEY_ID.pub``."""
        return self.folder / "rules_keys"


def valid_key_id(key_id: str) -> bool:
    """A key id usable as a file name."""
    return bool(key_id) and len(key_id) <= 64 and all(c.isalnum() or c in "-_." for c in key_id) \
        and not key_id.startswith(".")


def new_generation_name(now: datetime) -> str:
    """Sortable and unique: ``20261122T121500Z-3fa1``."""
    return f"{now.astimezone(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(2)}"


def write_generation(state_dir: Path, identity: Identity, now: datetime,
                     owner: Owner) -> GenerationFiles:
    """Write a complete new generation under ``state_dir/identity`` and fsync it."""
    root = state_dir / IDENTITY_DIR
    make_dir(state_dir, mode=0o750, owner=owner.uid, group=owner.gid)
    make_dir(root, mode=0o750, owner=owner.uid, group=owner.gid)
    gen = GenerationFiles(root / new_generation_name(now))
    make_dir(gen.folder, mode=0o750, owner=owner.uid, group=owner.gid)
    make_dir(gen.rules_keys_dir, mode=0o750, owner=owner.uid, group=owner.gid)
    own = {"owner": owner.uid, "group": owner.gid}
    write_atomic(gen.key_file, identity.key_pem, mode=0o600, **own)
    write_atomic(gen.pan_key_file, identity.pan_key.hex().encode() + b"\n", mode=0o600, **own)
    write_atomic(gen.cert_file, identity.cert_pem, mode=0o644, **own)
    write_atomic(gen.ca_file, identity.ca_pem, mode=0o644, **own)
    for key_id, pem in identity.rules_keys.items():
        if not valid_key_id(key_id):
            raise ProvisioningError(
                f"the club sent a rule-signing key id that is not usable: {key_id!r}")
        write_atomic(gen.rules_keys_dir / f"{key_id}.pub", pem, mode=0o644, **own)
    fsync_dir(root)
    fsync_dir(state_dir)
    return gen


def config_data(existing: Mapping[str, Any], *, terminal_id: str, merchant_id: str, club_id: str,
                profile: str, state_dir: Path, gen: GenerationFiles, broker_url: str | None,
                central_url: str | None, default_country_code: str | None,
                broker_urls: Sequence[str] | None = None) -> dict[str, Any]:
    """The new configuration: ``existing`` with the enrolment keys replaced (pure).

    ``broker_urls`` (several brokers, the nodes of a cluster) is written as
    ``[club] broker_urls`` in place of ``broker_url``; one is written as ``broker_url``.
    """
    data: dict[str, Any] = {k: dict(v) if isinstance(v, Mapping) else v
                            for k, v in existing.items()}
    terminal = data.setdefault("terminal", {})
    terminal.update({"id": terminal_id, "merchant_id": merchant_id, "club_id": club_id,
                     "profile": profile})
    if default_country_code:
        terminal["default_country_code"] = default_country_code
    data.setdefault("paths", {})["state_dir"] = str(state_dir)
    data.setdefault("secrets", {})["pan_key_file"] = str(gen.pan_key_file)
    club = data.setdefault("club", {})
    urls = list(broker_urls) if broker_urls else ([broker_url] if broker_url else [])
    if len(urls) > 1:
        club.pop("broker_url", None)
        club["broker_urls"] = urls
    elif urls:
        club.pop("broker_urls", None)
        club["broker_url"] = urls[0]
    if central_url is not None:
        club["central_url"] = central_url
    club.update({"ca_file": str(gen.ca_file), "cert_file": str(gen.cert_file),
                 "key_file": str(gen.key_file), "rules_keys_dir": str(gen.rules_keys_dir)})
    return data


def commit_config(config_out: Path, data: Mapping[str, Any]) -> None:
    """Check the new configuration loads, then switch to it with one atomic rename."""
    text = dump_toml(data, CONFIG_HEADER).encode()
    if not config_out.parent.exists():
        make_dir(config_out.parent, mode=0o755)
    probe = config_out.with_name(f".{config_out.name}.check-{os.getpid()}")
    try:
        probe.write_bytes(text)
        load_config(probe, check_secrets=True)
    except ConfigError as exc:
        raise ProvisioningError(f"the new configuration would not load ({exc}); nothing was "
                                f"switched") from None
    finally:
        probe.unlink(missing_ok=True)
    # Not a secret (it names files, holds none); the agent's user must read it.
    write_atomic(config_out, text, mode=0o644)


def generation_of(path: Path | None, state_dir: Path) -> Path | None:
    """The generation folder a configured file lives in, if it is one of ours."""
    if path is None:
        return None
    root = (state_dir / IDENTITY_DIR).resolve()
    folder = path.resolve().parent
    if folder.name == "rules_keys":
        folder = folder.parent
    return folder if folder.parent == root else None


def wipe_file(path: Path) -> None:
    """Overwrite a secret with zeros, then remove it.

    On flash storage the overwrite is best effort (wear levelling may keep old
    blocks); the file is gone from the file system either way.
    """
    try:
        size = path.stat().st_size
        with path.open("r+b") as fh:
            fh.write(b"\0" * size)
            fh.flush()
            os.fsync(fh.fileno())
    except (FileNotFoundError, IsADirectoryError):
        pass
    except OSError:
        pass  # removal below still happens
    path.unlink(missing_ok=True)


def wipe_tree(folder: Path) -> None:
    """Wipe every file under ``folder`` and remove it."""
    if not folder.exists():
        return
    for sub in sorted(folder.rglob("*"), reverse=True):
        if sub.is_file() or sub.is_symlink():
            wipe_file(sub)
    shutil.rmtree(folder, ignore_errors=True)


def prune_generations(state_dir: Path, keep: set[Path]) -> list[Path]:
    """Wipe generations not in ``keep`` (crash leftovers, older ones); return what went."""
    root = state_dir / IDENTITY_DIR
    if not root.is_dir():
        return []
    keep_resolved = {k.resolve() for k in keep}
    gone = []
    for folder in sorted(root.iterdir()):
        if folder.is_dir() and folder.resolve() not in keep_resolved:
            wipe_tree(folder)
            gone.append(folder)
    fsync_dir(root)
    return gone
