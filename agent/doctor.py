"""Health checks a technician runs on a box (``clubterm doctor``).

Each check returns a :class:`Check`: what was looked at, whether it is fine, and,
when it is not, one thing to try. Nothing here changes the box.
"""

from __future__ import annotations

import fnmatch
import glob
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from agent.config import Config, Profile, ReaderSpec, check_secret_mode
from agent.errors import ConfigError


@dataclass(frozen=True)
class Check:
    """One line of the doctor's checklist."""

    area: str
    name: str
    ok: bool
    detail: str
    fix: str = ""
    # A warning is not a failure: the box works, but someone should look.
    warning: bool = False


def _pcsc_readers() -> list[str]:
    from smartcard.System import readers

    return [str(r) for r in readers()]


def check_reader(spec: ReaderSpec, pcsc_list: Callable[[], list[str]] = _pcsc_readers) -> Check:
    """Is the reader of the profile attached (and reachable by this user)?"""
    label = f"{spec.name} ({spec.kind}{', ' + spec.model if spec.model else ''})"
    if spec.kind == "pcsc":
        try:
            names = pcsc_list()
        except ImportError:
            return Check("readers", label, False, "pyscard is not installed",
                         "pip install 'clubterm[pcsc]' (needs libpcsclite-dev and swig)")
        except Exception as exc:  # pyscard raises its own types; doctor reports them all.
            return Check("readers", label, False, f"PC/SC service not reachable: {exc}",
                         "start it: systemctl start pcscd.socket")
        pattern = spec.reader or "*"
        found = [n for n in names if fnmatch.fnmatch(n, pattern)]
        if found:
            return Check("readers", label, True, f"found {found[0]!r}")
        seen = ", ".join(repr(n) for n in names) or "no readers at all"
        return Check("readers", label, False, f"no PC/SC reader matches {pattern!r} ({seen})",
                     "plug the reader in, or fix 'reader' in the terminal profile")
    device = spec.device or ""
    matches = sorted(glob.glob(device)) if any(c in device for c in "*?[") else (
        [device] if os.path.exists(device) else [])
    if not matches:
        return Check("readers", label, False, f"{device} does not exist",
                     "plug the reader in; check the udev rules (systemd/udev) and the "
                     "profile's 'device'")
    path = matches[0]
    if not os.access(path, os.R_OK | (os.W_OK if spec.kind == "serial" else 0)):
        return Check("readers", label, False, f"{path} is not accessible to this user",
                     "add the user to the clubterm group; see systemd/udev/60-clubterm.rules")
    return Check("readers", label, True, f"{path} present")


def check_profile_readers(profile: Profile) -> list[Check]:
    """One check per reader of the profile."""
    if not profile.readers:
        return [Check("readers", profile.name, False, "the profile names no readers",
                      "choose another profile")]
    return [check_reader(spec) for spec in profile.readers]


def check_store(cfg: Config) -> list[Check]:
    """The state folder and the SQLite store."""
    checks: list[Check] = []
    state = cfg.state_dir
    if not state.is_dir():
        checks.append(Check("store", "state folder", False, f"{state} does not exist",
                            f"create it: install -d -m 0750 {state}"))
        return checks
    if not os.access(state, os.W_OK):
        checks.append(Check("store", "state folder", False, f"{state} is not writable",
                            "run as the clubterm user, or fix the folder's owner"))
    else:
        checks.append(Check("store", "state folder", True, f"{state} writable"))
    free = shutil.disk_usage(state).free
    low = free < 50 * 1024 * 1024
    checks.append(Check("store", "free disk", not low, f"{free // (1024 * 1024)} MiB free",
                        "free space on this disk: the outbox needs room to record sales"
                        if low else ""))
    db = cfg.db_path
    checks.append(Check("store", "database", True,
                        f"{db} ({db.stat().st_size // 1024} KiB)" if db.exists()
                        else f"{db} not created yet (made at first start)"))
    return checks


def _check_file(area: str, name: str, path: Path | None, *, secret: bool, fix: str) -> Check:
    if path is None:
        return Check(area, name, False, "not configured", fix)
    if secret:
        try:
            check_secret_mode(path)
        except ConfigError as exc:
            return Check(area, name, False, str(exc), fix)
    elif not path.is_file():
        return Check(area, name, False, f"{path} does not exist", fix)
    return Check(area, name, True, str(path))


def check_certificate_expiry(cert_file: Path, now: datetime) -> Check:
    """The terminal's client certificate: warn 30 days before it expires."""
    from provisioning.expiry import WARN_BEFORE, cert_not_after

    try:
        not_after = cert_not_after(cert_file)
    except (OSError, ValueError) as exc:
        return Check("club", "certificate validity", False, f"cannot read {cert_file}: {exc}",
                     "re-enrol: clubterm provision enrol")
    left = not_after - now
    if left.total_seconds() <= 0:
        return Check("club", "certificate validity", False, "the certificate has expired",
                     "clubterm provision rotate (or enrol again)")
    if left <= WARN_BEFORE:
        return Check("club", "certificate validity", True,
                     f"expires in {left.days} days", "clubterm provision rotate", warning=True)
    return Check("club", "certificate validity", True, f"valid for {left.days} more days")


def check_club(cfg: Config, now: datetime | None = None) -> list[Check]:
    """The club link settings and the files they name."""
    enrol = "enrol the terminal: clubterm provision enrol --central URL --code CODE"
    checks = [
        Check("club", "terminal", True,
              f"{cfg.terminal_id} of merchant {cfg.merchant_id} in club {cfg.club_id}"),
    ]
    if cfg.broker_url is None:
        checks.append(Check("club", "broker", False, "no broker_url configured", enrol))
    else:
        plain = cfg.broker_url.startswith("mqtt://")
        checks.append(Check("club", "broker", True,
                            cfg.broker_url + (" (plain, allowed by allow_plain)" if plain else "")))
        if not plain:
            checks.append(_check_file("club", "club CA", cfg.ca_file, secret=False, fix=enrol))
            checks.append(_check_file("club", "client certificate", cfg.cert_file, secret=False,
                                      fix=enrol))
            checks.append(_check_file("club", "client key", cfg.key_file, secret=True,
                                      fix=f"chmod 600 {cfg.key_file}" if cfg.key_file else enrol))
            if cfg.cert_file is not None and cfg.cert_file.is_file():
                checks.append(check_certificate_expiry(cfg.cert_file, now or datetime.now(UTC)))
    checks.append(_check_file("club", "pan_key", cfg.pan_key_file, secret=True,
                              fix=f"chmod 600 {cfg.pan_key_file}" if cfg.pan_key_file else enrol))
    keys = cfg.rules_keys_dir
    if keys is None or not keys.is_dir() or not any(keys.glob("*.pub")):
        checks.append(Check("club", "rule-signing keys", False,
                            f"no trusted keys in {keys}" if keys else "rules_keys_dir not set",
                            enrol))
    else:
        checks.append(Check("club", "rule-signing keys", True,
                            ", ".join(sorted(p.stem for p in keys.glob("*.pub")))))
    return checks
