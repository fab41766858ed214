"""Rule bundles the simulated club publishes: made, signed, and spoiled on request."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.rules import sign_payload

# The rules of rules.md's worked examples.
EXAMPLE_RULES: list[dict[str, Any]] = [
    {"id": "gold10", "kind": "discount", "priority": 100, "when": {"tiers": ["gold"]},
     "then": {"percent_bps": 1000}},
    {"id": "coffee-2", "kind": "discount", "priority": 50, "when": {"categories": ["coffee"]},
     "then": {"amount": 200}},
    {"id": "base-points", "kind": "points", "priority": 10, "when": {},
     "then": {"per_spend": 100, "points": 1}},
    {"id": "tuesday-x2", "kind": "multiplier", "priority": 10, "when": {"weekdays": ["tue"]},
     "then": {"bps": 20000}},
    {"id": "cashback", "kind": "credit", "priority": 10, "when": {"min_gross": 5000},
     "then": {"percent_bps": 200, "kind": "credit.club", "expires_days": 90}},
    # Works on the product catalogue's categories (hw_sim.club.catalogue): members
    # get 10 % off bakery products.
    {"id": "bakery-members-10", "kind": "discount", "priority": 40,
     "when": {"categories": ["bakery"]}, "then": {"percent_bps": 1000}},
]


#: (1.3) The example club's way to gold: 500.00 spent or 10 purchases in 30 days
#: (docs/rules.md, "Tier progress"); the ledger applies the same thresholds.
GOLD_UPGRADE: dict[str, int] = {"min_spend": 50000, "min_purchases": 10, "window_days": 30}
#: (1.3) The demo's balance types: a wallet (money), gift cards, car-wash units.
STORED_VALUE: dict[str, Any] = {
    "types": [
        {"kind": "value.wallet", "name": "Wallet", "spendable": True, "max_balance": 100000,
         "expires_days": 365},
        {"kind": "value.gift", "name": "Gift card", "spendable": True, "expires_days": 730},
        {"kind": "units.wash", "name": "Car wash", "unit": "wash", "spendable": False},
    ],
    "offline_max_spend_per_holder_day": 20000,
    "offline_max_units_per_holder_day": 3,
}


def demo_adjustments(rules: list[dict[str, Any]]) -> dict[str, Any]:
    """The ``adjustments`` of the demo bundle: points from an amount at the rate of the
    ``base-points`` rule when the bundle has it (1 point per 1.00), else the same rate
    written out; credit.club and car-wash units granted by a manager."""
    has_base = any(r.get("id") == "base-points" for r in rules)
    rate: dict[str, Any] = ({"earn_rule": "base-points"} if has_base
                            else {"per_spend": 100, "points": 1})
    return {"points": {"max_add": 5000, "max_deduct": 5000, "max_per_member_day": 10000,
                       **rate},
            "credit": {"kinds": ["credit.club", "units.wash"], "max_grant": 5000,
                       "max_deduct": 5000, "max_per_member_day": 10000},
            "require_note": True}


def make_bundle(club: str, merchant: str, version: int, *, now: datetime | None = None,
                valid_days: int = 30, timezone: str = "Europe/Berlin",
                rules: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
    """A complete bundle per ``rules.md`` (the worked example's settings)."""
    now = now or datetime.now(UTC)
    bundle: dict[str, Any] = {
        "club": club, "merchant": merchant, "version": version,
        "issued_at": now.isoformat(timespec="seconds"),
        "expires_at": (now + timedelta(days=valid_days)).isoformat(timespec="seconds"),
        "currency": "EUR", "minor_units": 2, "timezone": timezone,
        "tiers": [{"id": "bronze", "rank": 1}, {"id": "silver", "rank": 2},
                  {"id": "gold", "rank": 3, "upgrade": dict(GOLD_UPGRADE)}],
        "points": {"value": 1, "min_redeem": 100, "max_redeem_share_bps": 5000},
        "credits": {"accepted": ["credit.club", f"credit.merchant:{merchant}"],
                    "use_cap_per_invoice": 50000, "use_cap_per_day": 100000},
        "offline": {"max_redeem_value_per_member_day": 2000, "max_pending": 5000,
                    "max_age_hours": 72,
                    # (1.3) house accounts: at most 200.00 charged per account offline.
                    "max_account_charge": 20000,
                    # (1.3) manual additions by one staff member per day while offline
                    "adjust_points_per_staff_day": 2000, "adjust_credit_per_staff_day": 5000},
        "rules": EXAMPLE_RULES if rules is None else rules,
        # (1.3) Stored value (docs/protocol/bundle.md, "Stored value").
        "stored_value": STORED_VALUE,
        # (1.3) Manual points and granted credit (bundle.md "Adjustments").
        "adjustments": demo_adjustments(EXAMPLE_RULES if rules is None else rules),
    }
    bundle.update(extra)
    return bundle


def sign_envelope(payload: bytes, key: Ed25519PrivateKey, key_id: str) -> dict[str, str]:
    """The protocol envelope: ``key_id``, base64 payload, base64 Ed25519 signature.

    Signed with the project's own signer, so the club and the terminal cannot drift.
    """
    return dict(sign_payload(payload, key, key_id=key_id))


def encode_bundle(bundle: dict[str, Any]) -> bytes:
    return json.dumps(bundle, separators=(",", ":"), sort_keys=True).encode()


class SigningKey:
    """The club's Ed25519 rule-signing key, kept in a directory (``<key_id>.key``/``.pub``)."""

    def __init__(self, key: Ed25519PrivateKey, key_id: str):
        self.key = key
        self.key_id = key_id

    @classmethod
    def load_or_create(cls, directory: Path, key_id: str = "club-sim-1") -> SigningKey:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{key_id}.key"
        if path.exists():
            key = serialization.load_pem_private_key(path.read_bytes(), None)
            assert isinstance(key, Ed25519PrivateKey)
        else:
            key = Ed25519PrivateKey.generate()
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
        out = cls(key, key_id)
        out.write_public(directory)
        return out

    def write_public(self, directory: Path) -> Path:
        """Write ``<key_id>.pub`` (PEM), the file a terminal's trusted-keys folder holds."""
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{self.key_id}.pub"
        path.write_bytes(self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        return path

    def sign(self, bundle: dict[str, Any]) -> dict[str, str]:
        return sign_envelope(encode_bundle(bundle), self.key, self.key_id)


# A signed envelope larger than this goes out as a manifest and is served over HTTPS
# (the MQTT payload cap is 256 KiB; the rest is headroom for the topic and the broker).
INLINE_MAX_BYTES = 192 * 1024


def document_body(envelope: dict[str, Any], *, gzip_body: bool) -> bytes:
    """The bytes the HTTPS server sends for a document: its envelope JSON, gzip'd or not."""
    raw = json.dumps(envelope, separators=(",", ":")).encode()
    return gzip.compress(raw, compresslevel=6, mtime=0) if gzip_body else raw


def make_manifest(kind: str, club: str, merchant: str, version: int, body: bytes, path: str,
                  *, gzip_body: bool) -> dict[str, Any]:
    """The manifest of a document served at ``path`` (``docs/protocol/club.md``)."""
    manifest: dict[str, Any] = {
        "kind": kind, "club": club, "merchant": merchant, "version": version,
        "sha256": hashlib.sha256(body).hexdigest(), "size": len(body), "path": path,
    }
    if gzip_body:
        manifest["content_encoding"] = "gzip"
    return manifest


def sign_manifest(manifest: dict[str, Any], key: SigningKey) -> dict[str, str]:
    """The retained manifest message: an envelope with ``"type": "manifest"``."""
    return {"type": "manifest", **sign_envelope(encode_bundle(manifest), key.key, key.key_id)}
