"""Enrolment and certificate rotation: the steps a technician runs, in order.

Everything that can fail for a reason outside the box (the club unreachable, a
wrong CA fingerprint, a wrong, used or expired code) is checked before anything is
written. The ``pan_key`` exists in clear only in memory and in its 0600 file.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from agent import __version__
from agent.config import (
    MAX_BROKER_URLS,
    Config,
    load_config,
    load_profile,
    parse_member_scope,
    read_secret_file,
)
from agent.errors import ConfigError, ProvisioningError
from provisioning.atomic import make_dir, write_atomic
from provisioning.client import ClubClient, ClubUnreachable, fetch_pinned_ca
from provisioning.crypto import (
    SealedKey,
    cert_fingerprint,
    check_issued_cert,
    generate_device_key,
    load_cert,
    load_private_key,
    make_csr,
    open_sealed,
    private_key_pem,
)
from provisioning.detect import (
    Hardware,
    detect_hardware,
    propose_profile,
    rank_profiles,
    shipped_profiles,
)
from provisioning.state import (
    PENDING_KEY,
    Identity,
    Owner,
    commit_config,
    config_data,
    generation_of,
    prune_generations,
    wipe_file,
    write_generation,
)

log = logging.getLogger(__name__)

Progress = Callable[[str], None]
NO_OWNER = Owner()  # leave files to the user running the command


def _quiet(message: str) -> None:
    pass


@dataclass(frozen=True)
class EnrolResult:
    """What an enrolment set up."""

    terminal_id: str
    club_id: str
    merchant_id: str
    profile: str
    config_path: Path
    generation: Path
    cert_not_after: datetime


def choose_profile(requested: str | None, hw: Hardware, progress: Progress,
                   suggested_by_club: str | None = None) -> str:
    """The profile to use: the one asked for, else the one the hardware fits."""
    if requested:
        load_profile(requested)  # fail early on a typo
        proposal = propose_profile(hw)
        if proposal is not None and proposal.name != requested:
            progress(f"  note: the attached readers look like profile '{proposal.name}', "
                     f"using '{requested}' as asked")
        return requested
    proposal = propose_profile(hw)
    if proposal is not None:
        found = ", ".join(f"{name} = {what}" for name, what in proposal.found)
        progress(f"  proposed profile: {proposal.name} ({proposal.description}); found {found}")
        return proposal.name
    if suggested_by_club:
        progress(f"  no profile matches the attached readers; using the club's choice "
                 f"'{suggested_by_club}'")
        load_profile(suggested_by_club)
        return suggested_by_club
    ranked = rank_profiles(shipped_profiles(), hw)
    lines = [f"    {m.name}: missing {', '.join(m.missing)}" for m in ranked]
    raise ProvisioningError(
        "no terminal profile has all its readers attached; plug the readers in, or name the "
        "profile with --profile NAME. Closest:\n" + "\n".join(lines))


def _parse_rules_keys(obj: Any) -> dict[str, bytes]:
    if not isinstance(obj, dict) or not obj:
        raise ProvisioningError("the club sent no trusted rule-signing keys")
    out = {}
    for key_id, pem in obj.items():
        try:
            key = serialization.load_pem_public_key(str(pem).encode())
        except ValueError:
            raise ProvisioningError(
                f"rule-signing key {key_id!r} is not a PEM public key") from None
        if not isinstance(key, ed25519.Ed25519PublicKey):
            raise ProvisioningError(f"rule-signing key {key_id!r} is not an Ed25519 key")
        out[str(key_id)] = key.public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    return out


def _broker_urls(obj: Any, broker_url: str) -> list[str]:
    """The club's optional ``broker_urls`` (the nodes of its cluster, first =
    ``broker_url``), checked; only ``broker_url`` when it sends none."""
    if obj is None:
        return [broker_url]
    if not isinstance(obj, list) or not obj or len(obj) > MAX_BROKER_URLS or not all(
            isinstance(u, str) and u.startswith(("mqtts://", "mqtt://")) for u in obj):
        raise ProvisioningError(f"the club sent unusable broker URLs ({obj!r:.200}): a list of "
                                f"1 to {MAX_BROKER_URLS} mqtts:// URLs was expected")
    urls = list(dict.fromkeys(obj))
    if broker_url not in urls:
        urls.insert(0, broker_url)
    return urls[:MAX_BROKER_URLS]


def _pending_key(path: Path) -> ec.EllipticCurvePrivateKey | None:
    """The device key an interrupted enrolment left, if it is usable."""
    if not path.exists():
        return None
    try:
        return load_private_key(read_secret_file(path))
    except (ProvisioningError, ConfigError):
        return None


def _is_current_key(config_out: Path, key: ec.EllipticCurvePrivateKey) -> bool:
    """Whether ``key`` is the device key the configuration already uses."""
    try:
        cfg = load_config(config_out, check_secrets=False)
        if cfg.cert_file is None:
            return False
        cert = load_cert(cfg.cert_file.read_bytes(), "certificate")
    except (ConfigError, ProvisioningError, OSError):
        return False
    return public_key_pem(key) == cert.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def public_key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    """The public half, SubjectPublicKeyInfo PEM."""
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def _existing_raw(config_out: Path) -> dict[str, Any]:
    if not config_out.exists():
        return {}
    try:
        return dict(load_config(config_out, check_secrets=False).raw)
    except ConfigError:
        # A broken or half-written older file: start from scratch rather than refuse.
        import tomllib
        try:
            return tomllib.loads(config_out.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}


def _refuse_to_orphan_events(config_out: Path, terminal_id: str) -> None:
    """Enrolling as another terminal would strand the old one's unsent events."""
    from provisioning.decommission import unacked_events

    try:
        old = load_config(config_out, check_secrets=False)
    except ConfigError:
        return
    if old.terminal_id == terminal_id:
        return  # the same terminal again (e.g. a lost key): its events stay its own
    count, _ = unacked_events(old)
    if count:
        raise ProvisioningError(
            f"this box is still terminal {old.terminal_id} with {count} event(s) the club has "
            f"not received; let them sync, or run 'clubterm provision decommission --force "
            f"--export FILE' first. Nothing was changed.")


def _current_generation(config_out: Path, state_dir: Path) -> Path | None:
    try:
        cfg = load_config(config_out, check_secrets=False)
    except ConfigError:
        return None
    return generation_of(cfg.cert_file, state_dir)


def _member_scope(scope: object, merchant_id: str) -> str | None:
    """``[club] member_scope`` from the club's answer (1.2), checked before anything is
    written; None when the club sends none (a v1 club: the terminal is club-wide)."""
    if scope is None:
        return None
    try:
        return parse_member_scope(str(scope), merchant_id)
    except ConfigError as exc:
        raise ProvisioningError(f"the club sent an unusable member scope: {exc.detail}; "
                                "nothing was changed") from None


def enrol(*, central_url: str, code: str, ca_fingerprint: str | None, config_out: Path,
          state_dir: Path, profile: str | None = None, owner: Owner = NO_OWNER,
          hardware: Hardware | None = None, timeout: float = 15, progress: Progress = _quiet,
          now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> EnrolResult:
    """Enrol this box with the club; see ``docs/provisioning.md`` for each step."""
    code = code.strip()
    if not code:
        raise ProvisioningError("the enrolment code is empty")
    if not ca_fingerprint:
        raise ProvisioningError(
            "--ca-fingerprint is required: the SHA-256 fingerprint of the club CA from the "
            "enrolment sheet (it is how this box knows it talks to the real club)")

    progress("1/6 Looking for attached readers")
    hw = hardware if hardware is not None else detect_hardware()
    for note in hw.notes:
        progress(f"  note: {note}")

    with tempfile.TemporaryDirectory(prefix="clubterm-enrol-") as tmp:
        progress(f"2/6 Checking the club's identity at {central_url}")
        ca = fetch_pinned_ca(central_url, ca_fingerprint, timeout=timeout)
        ca_pem = ca.public_bytes(serialization.Encoding.PEM)
        ca_file = Path(tmp) / "ca.crt"
        ca_file.write_bytes(ca_pem)
        progress(f"  club CA matches the pinned fingerprint ({cert_fingerprint(ca)[:23]}…)")
        client = ClubClient(central_url, ca_file, timeout=timeout)

        progress("3/6 Checking the enrolment code")
        pending = state_dir / PENDING_KEY
        key = _pending_key(pending)
        if key is not None and _is_current_key(config_out, key):
            # A crash right after the last commit left the key in use as "pending":
            # a new enrolment must not reuse it.
            wipe_file(pending)
            key = None
        info = client.lookup(code, None if key is None else public_key_pem(key))
        terminal_id = info["terminal_id"]
        club_id, merchant_id = info["club_id"], info["merchant_id"]
        progress(f"  code is for terminal {terminal_id} of merchant {merchant_id}, club {club_id}")
        chosen = choose_profile(profile, hw, progress, info.get("profile"))
        _refuse_to_orphan_events(config_out, terminal_id)

        # From here on the box changes: the device key is kept as "pending" so that a
        # retry after a lost answer presents the same key (the club answers it again).
        progress("4/6 Making the device key and certificate request")
        make_dir(state_dir, mode=0o750, owner=owner.uid, group=owner.gid)
        if key is not None:
            progress("  reusing the device key of an interrupted enrolment")
        else:
            key = generate_device_key()
            write_atomic(pending, private_key_pem(key), mode=0o600, owner=owner.uid,
                         group=owner.gid)
        csr = make_csr(key, terminal_id)

        progress("5/6 Enrolling with the club")
        try:
            answer = client.enrol(code, csr, profile=chosen, agent_version=__version__,
                                  hardware=hw.to_json())
        except ClubUnreachable:
            raise  # the answer may be lost in flight: keep the pending key for a retry
        except ProvisioningError:
            wipe_file(pending)
            raise
        for key_name, expected in (("terminal_id", terminal_id), ("club_id", club_id),
                                   ("merchant_id", merchant_id)):
            if answer.get(key_name) != expected:
                raise ProvisioningError(f"the club's answer names another {key_name} than its "
                                        f"lookup ({answer.get(key_name)!r}); not enrolled")
        cert = load_cert(str(answer.get("certificate", "")), "certificate")
        check_issued_cert(cert, ca, key, terminal_id, now())
        if answer.get("ca_certificate") and load_cert(str(answer["ca_certificate"]),
                                                      "CA certificate") != ca:
            raise ProvisioningError("the club's answer carries another CA than the pinned one")
        pan_key = open_sealed(key, SealedKey.from_json(answer.get("pan_key")), terminal_id)
        if len(pan_key) != 32:
            raise ProvisioningError("the club's pan_key is not 32 bytes")
        rules_keys = _parse_rules_keys(answer.get("rules_keys"))
        broker_url = answer.get("broker_url")
        if not isinstance(broker_url, str) or not broker_url.startswith(("mqtts://", "mqtt://")):
            raise ProvisioningError(f"the club sent no usable broker URL ({broker_url!r})")
        broker_urls = _broker_urls(answer.get("broker_urls"), broker_url)
        new_central = answer.get("central_url") or central_url
        member_scope = _member_scope(answer.get("member_scope"), merchant_id)

        progress("6/6 Writing the configuration")
        previous = _current_generation(config_out, state_dir)
        identity = Identity(key_pem=private_key_pem(key),
                            cert_pem=cert.public_bytes(serialization.Encoding.PEM),
                            ca_pem=ca_pem, pan_key=pan_key, rules_keys=rules_keys)
        gen = write_generation(state_dir, identity, now(), owner)
        data = config_data(_existing_raw(config_out), terminal_id=terminal_id,
                           merchant_id=merchant_id, club_id=club_id, profile=chosen,
                           state_dir=state_dir, gen=gen, broker_url=broker_url,
                           broker_urls=broker_urls, central_url=str(new_central),
                           default_country_code=answer.get("default_country_code"))
        if any(u.startswith("mqtt://") for u in broker_urls) \
                or str(new_central).startswith("http://"):
            data["club"]["allow_plain"] = True
        data["club"].pop("member_scope", None)
        if member_scope is not None:
            data["club"]["member_scope"] = member_scope
        commit_config(config_out, data)
        wipe_file(pending)
        keep = {gen.folder} | ({previous} if previous else set())
        prune_generations(state_dir, keep)

    progress(f"Enrolled as terminal {terminal_id} (club {club_id}, merchant {merchant_id}), "
             f"profile {chosen}.")
    progress(f"  configuration: {config_out}")
    progress(f"  certificate valid until {cert.not_valid_after_utc:%Y-%m-%d}")
    progress("Next: clubterm provision selftest")
    log.info("enrolled", extra={"terminal_id": terminal_id, "club_id": club_id,
                                "merchant_id": merchant_id, "profile": chosen})
    return EnrolResult(terminal_id, club_id, merchant_id, chosen, config_out, gen.folder,
                       cert.not_valid_after_utc)


@dataclass(frozen=True)
class RotateResult:
    """What a rotation did."""

    generation: Path
    previous: Path | None
    cert_not_after: datetime


def rotate(cfg: Config, *, owner: Owner = NO_OWNER, timeout: float = 15,
           progress: Progress = _quiet,
           now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> RotateResult:
    """New device key and certificate; the store and its queue are not touched."""
    for what, value in (("central_url", cfg.central_url), ("ca_file", cfg.ca_file),
                        ("cert_file", cfg.cert_file), ("key_file", cfg.key_file),
                        ("pan_key_file", cfg.pan_key_file), ("rules_keys_dir", cfg.rules_keys_dir)):
        if value is None:
            raise ProvisioningError(f"the configuration has no {what}; enrol the terminal first")
    assert cfg.central_url and cfg.ca_file and cfg.cert_file and cfg.key_file
    assert cfg.pan_key_file and cfg.rules_keys_dir
    ca = load_cert(cfg.ca_file.read_bytes(), "CA certificate")
    progress(f"1/3 Asking the club for a new certificate for {cfg.terminal_id}")
    key = generate_device_key()
    client = ClubClient(cfg.central_url, cfg.ca_file, timeout=timeout,
                        client_cert=(cfg.cert_file, cfg.key_file))
    answer = client.renew(cfg.terminal_id, make_csr(key, cfg.terminal_id))
    cert = load_cert(str(answer.get("certificate", "")), "certificate")
    check_issued_cert(cert, ca, key, cfg.terminal_id, now())

    progress("2/3 Writing the new key and certificate")
    rules_keys = {p.stem: p.read_bytes() for p in sorted(cfg.rules_keys_dir.glob("*.pub"))}
    pan_key = cfg.read_pan_key()
    identity = Identity(key_pem=private_key_pem(key),
                        cert_pem=cert.public_bytes(serialization.Encoding.PEM),
                        ca_pem=cfg.ca_file.read_bytes(), pan_key=pan_key, rules_keys=rules_keys)
    gen = write_generation(cfg.state_dir, identity, now(), owner)
    previous = generation_of(cfg.cert_file, cfg.state_dir)

    progress("3/3 Switching to the new certificate")
    data = config_data(dict(cfg.raw), terminal_id=cfg.terminal_id, merchant_id=cfg.merchant_id,
                       club_id=cfg.club_id, profile=cfg.profile.name, state_dir=cfg.state_dir,
                       gen=gen, broker_url=cfg.broker_url, broker_urls=cfg.broker_urls,
                       central_url=cfg.central_url,
                       default_country_code=None)
    commit_config(cfg.path, data)
    # The previous generation stays until the next rotation: a running agent may
    # still read it until it restarts.
    prune_generations(cfg.state_dir, {gen.folder} | ({previous} if previous else set()))
    progress(f"New certificate valid until {cert.not_valid_after_utc:%Y-%m-%d}. "
             f"Restart the agent to use it: systemctl restart clubterm")
    return RotateResult(gen.folder, previous, cert.not_valid_after_utc)
