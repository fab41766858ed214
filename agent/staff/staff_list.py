"""The club's staff list for one merchant (``docs/protocol/staff.md``): parsed and checked.

The list travels in the same signed envelope as a rule bundle
(:func:`agent.rules.envelope.verify_signed_payload`, the same trusted keys);
its payload is JSON::

    {"kind": "staff_list", "club_id": "acme", "merchant_id": "M-7", "version": 3,
     "groups": {"cashier": {"permissions": {"sale": ["view", "add"]}}},
     "staff": [{"staff_id": "1", "name": "Mina", "active": true,
                "pin": {"scheme": "scrypt", "n": 16384, "r": 8, "p": 1,
                        "salt": "<b64>", "hash": "<b64>"},
                "badges": ["nfc:04AA000001"], "groups": ["cashier"]}]}

Pure: :func:`accept_staff_list` takes the envelope, the trusted keys, the
terminal's club and merchant and the version in force, and returns a
:class:`StaffList` or raises :class:`StaffListRefused` with a short ``reason``.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from agent.carddata.detect import find_card_data
from agent.carddata.tokens import token_kind
from agent.errors import BundleRejected, ClubtermError
from agent.rules.envelope import acceptance_refusal, verify_signed_payload
from agent.staff.permissions import ACTIONS, DEFAULT_GROUPS, FEATURES, Permissions, permission

KIND = "staff_list"

# Limits (docs/protocol/staff.md, "Limits"). A list over them is refused whole.
MAX_LIST_BYTES = 4 * 1024 * 1024  # the signed payload
# The MQTT message: the envelope carries the payload in base64 (4/3) plus a signature.
MAX_MESSAGE_BYTES = MAX_LIST_BYTES * 4 // 3 + 4096
MAX_STAFF = 10_000
MAX_GROUPS = 256
MAX_GROUPS_PER_STAFF = 32
MAX_BADGES_PER_STAFF = 16
MAX_ID = 64
MAX_NAME = 200
# scrypt costs a list may ask for: a signed list still must not make each sign-in
# take seconds or a gigabyte.
SCRYPT_LOG2_N = (10, 17)
SCRYPT_MAX_R = 16
SCRYPT_MAX_P = 4
SCRYPT_MAX_MEMORY = 64 * 1024 * 1024  # 128 * n * r bytes
SALT_BYTES = (8, 64)
HASH_BYTES = (16, 64)
BADGE_KINDS = ("nfc", "pan")

REASONS = ("malformed", "unknown_key", "bad_signature", "too_large", "too_many",
           "foreign_club", "foreign_merchant", "stale")


class StaffListRefused(ClubtermError):
    """A staff list was refused; ``reason`` is one of :data:`REASONS`."""

    def __init__(self, reason: str, message: str, *, version: int | None = None):
        self.reason = reason
        self.version = version  # the refused list's version, when it was read
        super().__init__(message)


@dataclass(frozen=True)
class StaffEntry:
    """One person of the list. ``pin_hash`` is in the store's form
    (:mod:`agent.offline_queue.pinhash`), or None (badge only)."""

    staff_id: str
    name: str
    pin_hash: str | None
    badges: tuple[str, ...]
    groups: tuple[str, ...]
    active: bool


@dataclass(frozen=True)
class StaffList:
    """A checked staff list."""

    club_id: str
    merchant_id: str
    version: int
    groups: Mapping[str, Permissions]
    staff: tuple[StaffEntry, ...]
    ignored: tuple[str, ...] = ()  # features/actions this terminal does not know

    def entry(self, staff_id: str) -> StaffEntry | None:
        """The person ``staff_id``, or None."""
        for entry in self.staff:
            if entry.staff_id == staff_id:
                return entry
        return None

    def permissions_of(self, entry: StaffEntry) -> Permissions:
        """The union of the permissions of ``entry``'s groups."""
        out: set[str] = set()
        for name in entry.groups:
            out |= self.groups.get(name, frozenset())
        return frozenset(out)


def _bad(message: str) -> StaffListRefused:
    return StaffListRefused("malformed", message)


def _text(value: object, what: str, limit: int) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > limit \
            or not value.isprintable():
        raise _bad(f"{what} must be 1 to {limit} printable characters")
    return value


def _int(value: object, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise _bad(f"{what} must be a whole number")
    return value


def _b64(value: object, what: str, sizes: tuple[int, int]) -> bytes:
    if not isinstance(value, str):
        raise _bad(f"{what} must be base64")
    try:
        raw = base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise _bad(f"{what} is not valid base64") from None
    if not sizes[0] <= len(raw) <= sizes[1]:
        raise _bad(f"{what} must be {sizes[0]} to {sizes[1]} bytes")
    return raw


def pin_to_stored(pin: object, who: str) -> str | None:
    """The wire PIN object as the store's ``scrypt$log2n$r$p$salt$hash`` (None: no PIN)."""
    if pin is None:
        return None
    if not isinstance(pin, Mapping):
        raise _bad(f"{who}: 'pin' must be an object or null")
    if pin.get("scheme") != "scrypt":
        raise _bad(f"{who}: the PIN scheme must be 'scrypt'")
    n, r, p = (_int(pin.get(k), f"{who}: pin.{k}") for k in ("n", "r", "p"))
    log2_n = n.bit_length() - 1
    if n <= 0 or n != 1 << log2_n or not SCRYPT_LOG2_N[0] <= log2_n <= SCRYPT_LOG2_N[1]:
        raise _bad(f"{who}: pin.n must be a power of two from 2^{SCRYPT_LOG2_N[0]} "
                   f"to 2^{SCRYPT_LOG2_N[1]}")
    if not 1 <= r <= SCRYPT_MAX_R or not 1 <= p <= SCRYPT_MAX_P or 128 * n * r > \
            SCRYPT_MAX_MEMORY:
        raise _bad(f"{who}: pin.r must be 1-{SCRYPT_MAX_R}, pin.p 1-{SCRYPT_MAX_P}, and "
                   f"128*n*r at most {SCRYPT_MAX_MEMORY // (1024 * 1024)} MiB")
    salt = _b64(pin.get("salt"), f"{who}: pin.salt", SALT_BYTES)
    digest = _b64(pin.get("hash"), f"{who}: pin.hash", HASH_BYTES)
    return (f"scrypt${log2_n}${r}${p}${base64.b64encode(salt).decode('ascii')}$"
            f"{base64.b64encode(digest).decode('ascii')}")


def stored_to_pin(stored: str | None) -> dict[str, Any] | None:
    """The store's PIN hash as the wire object (for ``staff_change`` events)."""
    if stored is None:
        return None
    scheme, log2_n, r, p, salt, digest = stored.split("$")
    return {"scheme": scheme, "n": 1 << int(log2_n), "r": int(r), "p": int(p),
            "salt": salt, "hash": digest}


def check_badge(value: object, who: str) -> str:
    """A badge token (``nfc:`` or ``pan:``), never a raw UID, PAN or track."""
    if not isinstance(value, str):
        raise _bad(f"{who}: badges must be tokens (strings)")
    try:
        kind = token_kind(value)
    except ClubtermError:
        raise _bad(f"{who}: a badge is not a token (nfc:<UID hex> or pan:<32 hex>)") from None
    if kind not in BADGE_KINDS:
        raise _bad(f"{who}: a badge must be an nfc: or pan: token, not {kind}:")
    if kind == "nfc" and find_card_data(value[4:]) is not None:
        # A "UID" that is a card number is a PAN sent where a token belongs.
        raise _bad(f"{who}: a badge looks like a card number, not a tag UID")
    return value


def _groups(doc: object, ignored: list[str]) -> dict[str, Permissions]:
    out = dict(DEFAULT_GROUPS)
    if doc is None:
        return out
    if not isinstance(doc, Mapping):
        raise _bad("'groups' must be an object of group name → {permissions}")
    if len(doc) > MAX_GROUPS:
        raise StaffListRefused("too_many", f"the list defines {len(doc)} groups; at most "
                                           f"{MAX_GROUPS}")
    for name, group in doc.items():
        _text(name, "a group name", MAX_ID)
        perms = group.get("permissions") if isinstance(group, Mapping) else None
        if not isinstance(perms, Mapping):
            raise _bad(f"group {name!r} needs 'permissions': {{feature: [actions]}}")
        granted: set[str] = set()
        for feature, actions in perms.items():
            if not isinstance(actions, list) or not all(isinstance(a, str) for a in actions):
                raise _bad(f"group {name!r}: the actions of {str(feature)[:40]!r} must be "
                           "a list of strings")
            if feature not in FEATURES:
                ignored.append(str(feature)[:40])
                continue
            for action in actions:
                if action not in ACTIONS:
                    ignored.append(f"{feature}.{action[:20]}")
                    continue
                granted.add(permission(feature, action))
        out[name] = frozenset(granted)
    return out


def _entry(doc: object, index: int, groups: Mapping[str, Permissions]) -> StaffEntry:
    who = f"staff[{index}]"
    if not isinstance(doc, Mapping):
        raise _bad(f"{who} must be an object")
    staff_id = _text(doc.get("staff_id"), f"{who}.staff_id", MAX_ID)
    if any(ch.isspace() for ch in staff_id):
        raise _bad(f"{who}.staff_id must not contain spaces")
    who = f"staff {staff_id!r}"
    name = _text(doc.get("name"), f"{who}: name", MAX_NAME)
    badges = doc.get("badges", [])
    if not isinstance(badges, list) or len(badges) > MAX_BADGES_PER_STAFF:
        raise _bad(f"{who}: 'badges' must be a list of at most {MAX_BADGES_PER_STAFF} tokens")
    member_of = doc.get("groups")
    if not isinstance(member_of, list) or not member_of or \
            len(member_of) > MAX_GROUPS_PER_STAFF:
        raise _bad(f"{who}: 'groups' must list 1 to {MAX_GROUPS_PER_STAFF} group names")
    for name_ in member_of:
        if not isinstance(name_, str) or name_ not in groups:
            raise _bad(f"{who}: group {str(name_)[:40]!r} is not defined in the list")
    active = doc.get("active", True)
    if not isinstance(active, bool):
        raise _bad(f"{who}: 'active' must be true or false")
    pin_hash = pin_to_stored(doc.get("pin"), who)
    checked = tuple(dict.fromkeys(check_badge(b, who) for b in badges))
    if pin_hash is None and not checked and active:
        raise _bad(f"{who}: an active staff member needs a PIN or a badge")
    return StaffEntry(staff_id, name, pin_hash, checked, tuple(dict.fromkeys(member_of)),
                      active)


def parse_staff_list(payload: bytes) -> StaffList:
    """The staff list in ``payload`` (the signed bytes), or StaffListRefused."""
    if len(payload) > MAX_LIST_BYTES:
        raise StaffListRefused("too_large", f"the list is {len(payload)} bytes; at most "
                                            f"{MAX_LIST_BYTES} ({MAX_LIST_BYTES // 1048576} MiB)")
    try:
        doc = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise _bad("the list is not UTF-8 JSON") from None
    if not isinstance(doc, dict) or doc.get("kind") != KIND:
        raise _bad(f"the signed document is not a staff list (its 'kind' must be {KIND!r})")
    club_id = _text(doc.get("club_id"), "club_id", 128)
    merchant_id = _text(doc.get("merchant_id"), "merchant_id", 128)
    version = _int(doc.get("version"), "version")
    if version < 1:
        raise _bad("version must be 1 or more")
    staff = doc.get("staff")
    if not isinstance(staff, list):
        raise _bad("'staff' must be a list")
    if len(staff) > MAX_STAFF:
        raise StaffListRefused("too_many", f"the list has {len(staff)} staff; at most "
                                           f"{MAX_STAFF}")
    ignored: list[str] = []
    groups = _groups(doc.get("groups"), ignored)
    entries = tuple(_entry(item, i, groups) for i, item in enumerate(staff))
    seen_ids: set[str] = set()
    seen_badges: dict[str, str] = {}
    for entry in entries:
        if entry.staff_id in seen_ids:
            raise _bad(f"staff id {entry.staff_id!r} is in the list twice")
        seen_ids.add(entry.staff_id)
        for badge in entry.badges:
            other = seen_badges.setdefault(badge, entry.staff_id)
            if other != entry.staff_id:
                raise _bad(f"staff {other!r} and {entry.staff_id!r} share a badge")
    return StaffList(club_id, merchant_id, version, groups, entries,
                     tuple(dict.fromkeys(ignored)))


def accept_staff_list(envelope: Mapping[str, Any], trusted: Mapping[str, Ed25519PublicKey],
                      *, club: str, merchant: str, current_version: int | None) -> StaffList:
    """The list in ``envelope`` if this terminal may use it.

    Checked in this order: signature (``malformed``, ``unknown_key``,
    ``bad_signature``), size and shape (``too_large``, ``too_many``, ``malformed``),
    ``foreign_club``, ``foreign_merchant``, and ``stale`` (a version not newer than
    ``current_version``): the policy of rule bundles
    (:func:`agent.rules.envelope.acceptance_refusal`).
    """
    try:
        payload = verify_signed_payload(envelope, trusted)
    except BundleRejected as exc:
        raise StaffListRefused(exc.reason, str(exc)) from None
    staff_list = parse_staff_list(payload)
    refusal = acceptance_refusal("list", club_of=staff_list.club_id,
                                 merchant_of=staff_list.merchant_id, version=staff_list.version,
                                 club=club, merchant=merchant, current_version=current_version,
                                 not_newer="stale")
    if refusal is not None:
        reason, message = refusal
        raise StaffListRefused(reason, message,
                               version=staff_list.version if reason == "stale" else None)
    return staff_list


def load_envelope(payload: bytes) -> dict[str, Any]:
    """The envelope JSON object of an MQTT message (at most :data:`MAX_MESSAGE_BYTES`)."""
    if len(payload) > MAX_MESSAGE_BYTES:
        raise StaffListRefused("too_large", f"the message is {len(payload)} bytes; a staff "
                                            f"list may be at most {MAX_MESSAGE_BYTES}")
    try:
        doc = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):  # nesting past the parser's limit
        raise _bad("the message is not UTF-8 JSON") from None
    if not isinstance(doc, dict):
        raise _bad("the message is not a JSON object (an envelope)")
    return doc


def payload_of(envelope: Mapping[str, Any]) -> bytes:
    """The (already verified) payload bytes of a stored envelope."""
    return base64.b64decode(str(envelope.get("payload", "")).encode("ascii"))
