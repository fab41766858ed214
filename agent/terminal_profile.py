"""Terminal profiles: which readers a kind of box has (``terminal_profiles/NAME.toml``),
following ``extends``. Part of the configuration (:mod:`agent.config`)."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal, cast

from agent.errors import ConfigError
from agent.toml_table import TomlTable, load_toml

READER_KINDS = ("pcsc", "serial", "evdev")
READER_ROLES = ("card", "barcode")
PARITIES = ("N", "E", "O", "M", "S")


@dataclass(frozen=True)
class ReaderSpec:
    """One reader of a terminal profile."""

    name: str
    kind: Literal["pcsc", "serial", "evdev"]
    role: Literal["card", "barcode"]
    model: str = ""
    # serial: the port; evdev: a /dev/input/by-id path (a glob is allowed).
    device: str | None = None
    # pcsc: a reader-name pattern (fnmatch), e.g. "ACS ACR122U*".
    reader: str | None = None
    baud: int = 9600
    bytesize: int = 8
    parity: str = "N"
    stopbits: int = 1
    keymap: str = "us"
    suffix: str = "enter"
    inter_key_timeout_ms: int = 80
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Profile:
    """Which readers a kind of box has (``terminal_profiles/NAME.toml``)."""

    name: str
    description: str
    readers: tuple[ReaderSpec, ...]
    source: str
    udev_rules: tuple[str, ...] = ()


def _is_profile_path(name: str) -> bool:
    return "/" in name or name.endswith(".toml")


def _profile_text_source(name: str, base: Path | None) -> tuple[str, dict[str, Any]]:
    """Find a profile by name (shipped in ``terminal_profiles``) or by path (a
    relative one taken from ``base``, or from the current folder without it)."""
    if _is_profile_path(name):
        path = Path(name)
        if base is not None and not path.is_absolute():
            path = base / path
        return str(path), load_toml(path, what="terminal profile")
    if not all(c.isalnum() or c in "-_" for c in name):
        raise ConfigError(f"terminal profile name {name!r} is not valid", key="terminal.profile")
    ref = resources.files("terminal_profiles").joinpath(f"{name}.toml")
    if not ref.is_file():
        raise ConfigError(
            f"no terminal profile named {name!r}; see 'clubterm doctor' or terminal_profiles/ "
            f"for the shipped ones ({', '.join(list_profiles())})",
            key="terminal.profile",
        )
    source = f"terminal_profiles/{name}.toml"
    try:
        return source, tomllib.loads(ref.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"is not valid TOML: {exc}", path=source) from None


def list_profiles() -> list[str]:
    """Names of the profiles shipped in ``terminal_profiles/``."""
    root = resources.files("terminal_profiles")
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".toml"))


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def load_profile(name: str, _seen: tuple[str, ...] = (), *, base: Path | None = None
                 ) -> Profile:
    """Load a terminal profile, following ``extends`` (readers merge by name).

    A relative path is taken from ``base`` (the configuration file's folder), or
    from the current folder when it is None (a name typed on the command line); a
    relative ``extends`` path from the folder of the profile file that names it.
    """
    source, data = _profile_text_source(name, base)
    if source in _seen:
        raise ConfigError(f"profiles extend each other in a loop: {' -> '.join((*_seen, source))}")
    parent = data.get("extends")
    if parent is not None:
        if not isinstance(parent, str):
            raise ConfigError("must be a profile name", path=source, key="extends")
        folder = Path(source).parent if _is_profile_path(name) else None
        inherited = load_profile(parent, (*_seen, source), base=folder)
        merged = _merge(_profile_raw(inherited), {k: v for k, v in data.items() if k != "extends"})
    else:
        merged = data
    return _parse_profile(name, source, merged)


def _profile_raw(profile: Profile) -> dict[str, Any]:
    readers: dict[str, Any] = {}
    for r in profile.readers:
        entry: dict[str, Any] = {
            "kind": r.kind, "role": r.role, "model": r.model, "baud": r.baud,
            "bytesize": r.bytesize, "parity": r.parity, "stopbits": r.stopbits,
            "keymap": r.keymap, "suffix": r.suffix,
            "inter_key_timeout_ms": r.inter_key_timeout_ms, **dict(r.options),
        }
        if r.device is not None:
            entry["device"] = r.device
        if r.reader is not None:
            entry["reader"] = r.reader
        readers[r.name] = entry
    return {"description": profile.description, "readers": readers,
            "udev_rules": list(profile.udev_rules)}


_READER_KEYS = {
    "kind", "role", "model", "device", "reader", "baud", "bytesize", "parity", "stopbits",
    "keymap", "suffix", "inter_key_timeout_ms", "enabled",
}


def _parse_profile(name: str, source: str, data: Mapping[str, Any]) -> Profile:
    top = TomlTable(data, source, "")
    description = top.get("description", str, "")
    udev = top.get("udev_rules", list, [])
    readers_t = top.table("readers")
    readers: list[ReaderSpec] = []
    for rname, raw in readers_t.data.items():
        t = readers_t.table(rname)
        if not t.get("enabled", bool, True):
            continue
        kind = t.choice("kind", READER_KINDS, required=True)
        role = t.choice("role", READER_ROLES, "card")
        device = t.get("device", str)
        reader = t.get("reader", str)
        if kind in ("serial", "evdev") and not device:
            raise t.error("device", f"is required for a {kind} reader (the device path)")
        if kind == "pcsc" and not reader:
            raise t.error("reader", "is required for a pcsc reader (a reader-name pattern)")
        parity = t.choice("parity", PARITIES, "N")
        bytesize = t.get("bytesize", int, 8)
        if bytesize not in (5, 6, 7, 8):
            raise t.error("bytesize", f"must be 5, 6, 7 or 8, not {bytesize}")
        stopbits = t.get("stopbits", int, 1)
        if stopbits not in (1, 2):
            raise t.error("stopbits", f"must be 1 or 2, not {stopbits}")
        options = {k: v for k, v in raw.items() if k not in _READER_KEYS}
        readers.append(
            ReaderSpec(
                name=rname, kind=cast(Any, kind), role=cast(Any, role),
                model=t.get("model", str, ""), device=device, reader=reader,
                baud=t.positive("baud", 9600), bytesize=bytesize, parity=parity,
                stopbits=stopbits, keymap=t.get("keymap", str, "us"),
                suffix=t.get("suffix", str, "enter"),
                inter_key_timeout_ms=t.positive("inter_key_timeout_ms", 80),
                options=options,
            )
        )
    for i, rule in enumerate(udev):
        if not isinstance(rule, str):
            raise top.error(f"udev_rules[{i}]", "must be a string")
    return Profile(name=name, description=description, readers=tuple(readers), source=source,
                   udev_rules=tuple(udev))
