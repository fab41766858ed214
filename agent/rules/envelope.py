"""The signed envelope of a rule bundle (``protocol.md``, "Rule bundle").

``{"key_id": "...", "payload": "<base64 bundle JSON>", "sig": "<base64 Ed25519>"}``

:func:`accept_envelope` is pure (the time is passed in). Only the small key
helpers read files.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import gc
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from agent.errors import BundleRejected, RulesError
from agent.rules.bundle import Bundle, parse_bundle

REASONS = ("malformed", "unknown_key", "bad_signature", "foreign_club", "foreign_merchant",
           "downgrade", "expired")
DEFAULT_KEY_ID = "club-1"


def sign_payload(payload: bytes, private_key: Ed25519PrivateKey, *,
                 key_id: str = DEFAULT_KEY_ID) -> dict[str, str]:
    """The envelope for ``payload`` (the bundle JSON bytes, signed exactly as given)."""
    return {
        "key_id": key_id,
        "payload": base64.b64encode(payload).decode("ascii"),
        "sig": base64.b64encode(private_key.sign(payload)).decode("ascii"),
    }


def _b64(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise BundleRejected("malformed", f"the envelope's {what!r} must be a base64 string")
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise BundleRejected("malformed", f"the envelope's {what!r} is not valid base64") from None


def verify_envelope(envelope: Mapping[str, Any],
                    trusted: Mapping[str, Ed25519PublicKey]) -> Bundle:
    """Check the signature and parse the payload, without the club/version/expiry checks.

    Raises :class:`BundleRejected` (``malformed``, ``unknown_key``, ``bad_signature``).
    """
    payload = verify_signed_payload(envelope, trusted)
    try:
        return parse_bundle(payload)
    except RulesError as exc:
        raise BundleRejected("malformed", str(exc)) from None


def verify_signed_payload(envelope: Mapping[str, Any],
                          trusted: Mapping[str, Ed25519PublicKey]) -> bytes:
    """The payload bytes of ``envelope`` once its signature verifies with a trusted key.

    The one signature check of every signed club document (rule bundles, staff
    lists). Raises :class:`BundleRejected` (``malformed``, ``unknown_key``,
    ``bad_signature``).
    """
    if not isinstance(envelope, Mapping):
        raise BundleRejected("malformed", "the bundle envelope must be a JSON object")
    key_id = envelope.get("key_id")
    if not isinstance(key_id, str) or not key_id:
        raise BundleRejected("malformed", "the envelope has no 'key_id'")
    payload = _b64(envelope.get("payload"), "payload")
    sig = _b64(envelope.get("sig"), "sig")
    key = trusted.get(key_id)
    if key is None:
        known = ", ".join(sorted(trusted)) or "none"
        raise BundleRejected("unknown_key", f"key {key_id!r} is not trusted here "
                                            f"(trusted keys: {known})")
    try:
        key.verify(sig, payload)
    except InvalidSignature:
        raise BundleRejected("bad_signature",
                             f"the signature does not verify with key {key_id!r}") from None
    return payload


def acceptance_refusal(document: str, *, club_of: str, merchant_of: str, version: int,
                       club: str, merchant: str, current_version: int | None,
                       not_newer: str) -> tuple[str, str] | None:
    """The acceptance policy of every signed club document (rule bundles, staff lists).

    A document is for this club, then this merchant, and newer than the version in
    use (``current_version`` None: none in use). Returns ``(reason, message)`` of the
    first rule broken — ``foreign_club``, ``foreign_merchant`` or ``not_newer`` (the
    document's own name for it: ``downgrade`` for bundles, ``stale`` for staff
    lists) — or None when the document may be used.
    """
    if club_of != club:
        return "foreign_club", (f"the {document} is for club {club_of!r}, "
                                f"this terminal is {club!r}")
    if merchant_of != merchant:
        return "foreign_merchant", (f"the {document} is for merchant {merchant_of!r}, "
                                    f"not {merchant!r}")
    if current_version is not None and version <= current_version:
        return not_newer, (f"version {version} is not newer than the version "
                           f"{current_version} in use")
    return None


def check_bundle(bundle: Bundle, *, club: str, merchant: str, current_version: int | None,
                 now: dt.datetime | None) -> None:
    """The acceptance policy: this club and merchant, newer, not expired (``now`` None: skip)."""
    refusal = acceptance_refusal("bundle", club_of=bundle.club, merchant_of=bundle.merchant,
                                 version=bundle.version, club=club, merchant=merchant,
                                 current_version=current_version, not_newer="downgrade")
    if refusal is not None:
        raise BundleRejected(*refusal)
    if now is not None and bundle.expires_at <= now:
        raise BundleRejected("expired",
                             f"the bundle expired at {bundle.expires_at.isoformat()}")


def accept_envelope(envelope: Mapping[str, Any], trusted: Mapping[str, Ed25519PublicKey], *,
                    club: str, merchant: str, current_version: int | None,
                    now: dt.datetime) -> Bundle:
    """The bundle in ``envelope`` if this terminal may use it.

    Raises :class:`BundleRejected` with ``reason`` one of ``malformed``,
    ``unknown_key``, ``bad_signature``, ``foreign_club``, ``foreign_merchant``,
    ``downgrade``, ``expired`` (checked in that order).
    """
    bundle = verify_envelope(envelope, trusted)
    check_bundle(bundle, club=club, merchant=merchant, current_version=current_version,
                 now=now)
    return bundle


def settle() -> None:
    """Take the objects alive now — a bundle just loaded, tens of thousands of them —
    out of the garbage collector's generations (``gc.freeze()``).

    A bundle lives until the next one and holds no reference cycles, so reference
    counting frees it; the collector would only walk it again and again, and a full
    collection in the middle of a quote is what makes the slowest quotes slow. The
    collection first leaves no garbage frozen. Called after a bundle is put in use;
    never by the pure engine.
    """
    gc.collect()
    gc.freeze()


class BundleState:
    """The bundle a terminal uses, and why the last one offered was refused.

    A refused bundle never replaces a good one. Persisting envelopes is the store's
    job: save ``envelope`` after :meth:`offer` returns True. Thread-safe.
    """

    def __init__(self, trusted: Mapping[str, Ed25519PublicKey], *, club: str, merchant: str):
        self.trusted = dict(trusted)
        self.club = club
        self.merchant = merchant
        self._lock = threading.Lock()
        self.current: Bundle | None = None
        self.envelope: Mapping[str, Any] | None = None
        self.refused_reason: str | None = None
        self.refused_message: str | None = None

    @property
    def version(self) -> int | None:
        """The version in use, or None."""
        current = self.current
        return current.version if current is not None else None

    def problem(self) -> str | None:
        """For the status ``rules_problem``: ``"reason: message"`` of the last refusal."""
        if self.refused_reason is None:
            return None
        return f"{self.refused_reason}: {self.refused_message}"

    def restore(self, envelope: Mapping[str, Any]) -> Bundle:
        """Load the envelope saved by the store at start-up.

        Checks signature, club and merchant but neither version nor expiry: an
        expired bundle is kept (quotes then say the rules expired).
        """
        bundle = verify_envelope(envelope, self.trusted)
        check_bundle(bundle, club=self.club, merchant=self.merchant, current_version=None,
                     now=None)
        with self._lock:
            self.current, self.envelope = bundle, envelope
        settle()
        return bundle

    def offer(self, envelope: Mapping[str, Any], now: dt.datetime) -> bool:
        """Try a newly received envelope; True if it is now in use.

        The same envelope as the one in use (a retained message seen again) is
        neither accepted again nor counted as a refusal.
        """
        with self._lock:
            current = self.current
            if (current is not None and self.envelope is not None
                    and envelope.get("payload") == self.envelope.get("payload")
                    and envelope.get("sig") == self.envelope.get("sig")):
                return False
            try:
                bundle = accept_envelope(envelope, self.trusted, club=self.club,
                                         merchant=self.merchant,
                                         current_version=self.version, now=now)
            except BundleRejected as exc:
                self.refused_reason, self.refused_message = exc.reason, str(exc)
                return False
            self.current, self.envelope = bundle, envelope
            self.refused_reason = self.refused_message = None
        settle()
        return True


# ---------------------------------------------------------------- key files


def load_trusted_keys(directory: str | os.PathLike[str]) -> dict[str, Ed25519PublicKey]:
    """The trusted bundle keys: every ``<key_id>.pub`` (PEM, Ed25519) in ``directory``."""
    path = Path(directory)
    if not path.is_dir():
        raise RulesError(f"{path}: no such directory of trusted rule keys")
    keys: dict[str, Ed25519PublicKey] = {}
    for file in sorted(path.glob("*.pub")):
        keys[file.stem] = load_public_key(file)
    return keys


def load_public_key(file: str | os.PathLike[str]) -> Ed25519PublicKey:
    """An Ed25519 public key from a PEM file."""
    try:
        key = serialization.load_pem_public_key(Path(file).read_bytes())
    except OSError as exc:
        raise RulesError(f"{file}: cannot read: {exc.strerror}") from None
    except ValueError:
        raise RulesError(f"{file}: not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise RulesError(f"{file}: not an Ed25519 key")
    return key


def load_private_key(file: str | os.PathLike[str]) -> Ed25519PrivateKey:
    """An Ed25519 private key from an unencrypted PEM (PKCS#8) file."""
    try:
        key = serialization.load_pem_private_key(Path(file).read_bytes(), password=None)
    except OSError as exc:
        raise RulesError(f"{file}: cannot read: {exc.strerror}") from None
    except (ValueError, TypeError):
        raise RulesError(f"{file}: not an unencrypted PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise RulesError(f"{file}: not an Ed25519 key")
    return key


def write_keypair(directory: str | os.PathLike[str], key_id: str) -> tuple[Path, Path]:
    """Make a new Ed25519 key: ``<key_id>.pem`` (private, 0600) and ``<key_id>.pub``."""
    if not key_id or "/" in key_id or key_id.startswith("."):
        raise RulesError(f"key id {key_id!r} cannot be a file name")
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    private = Ed25519PrivateKey.generate()
    priv_path, pub_path = out / f"{key_id}.pem", out / f"{key_id}.pub"
    if priv_path.exists():
        raise RulesError(f"{priv_path} exists already; not overwriting a key")
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    fd = os.open(priv_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    pub_path.write_bytes(private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return priv_path, pub_path
