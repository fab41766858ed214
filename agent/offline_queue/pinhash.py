"""Staff PIN hashes with scrypt (from ``cryptography``).

Stored form: ``scrypt$<log2 n>$<r>$<p>$<salt b64>$<hash b64>``, so the cost can
be raised later without breaking existing hashes.
"""

from __future__ import annotations

import base64
import os
import secrets

from cryptography.exceptions import InvalidKey
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

# n = 2**14, r = 8: about 16 MiB and tens of milliseconds per check on a small box;
# a 4-6 digit PIN is weak whatever the cost, so it also needs the UI's lockout.
_LOG2_N = 14
_R = 8
_P = 1
_LENGTH = 32


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_pin(pin: str, *, log2_n: int = _LOG2_N) -> str:
    """A salted scrypt hash of ``pin`` in the stored form."""
    salt = os.urandom(16)
    kdf = Scrypt(salt=salt, length=_LENGTH, n=2**log2_n, r=_R, p=_P)
    digest = kdf.derive(pin.encode("utf-8"))
    return f"scrypt${log2_n}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def verify_pin(pin: str, stored: str) -> bool:
    """True if ``pin`` matches ``stored`` (constant-time compare inside scrypt)."""
    try:
        scheme, log2_n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        kdf = Scrypt(salt=base64.b64decode(salt), length=len(base64.b64decode(digest)),
                     n=2 ** int(log2_n), r=int(r), p=int(p))
        kdf.verify(pin.encode("utf-8"), base64.b64decode(digest))
    except (ValueError, InvalidKey):
        return False
    return True


_dummy_hash: str | None = None


def verify_absent(pin: str) -> bool:
    """Spend the time of one real check for a staff id that has no PIN; always False.

    Without it an unknown id answers in well under a millisecond and a known one
    in tens: the answer's time would tell which staff ids exist.
    """
    global _dummy_hash
    if _dummy_hash is None:  # two threads may both make one: harmless
        _dummy_hash = hash_pin(secrets.token_hex(16))
    verify_pin(pin, _dummy_hash)
    return False
