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


PRINTER_KINDS = ("none", "network", "serial", "usb")
PRINTER_COLUMNS = (32, 42, 48)
PRINTER_CODE_PAGES = ("cp437", "cp850", "cp860", "cp863", "cp865", "cp1252", "cp866", "cp852",
                      "cp858")
_PRINTER_KEYS = {
    "kind", "address", "baud", "columns", "code_page", "drawer_pin", "auto_print", "language",
    "shop_name", "shop_lines", "footer", "font", "qr_native", "timeout_s", "status_poll_s",
    "model",
}


@dataclass(frozen=True)
class PrinterSpec:
    """The receipt printer of a terminal profile (``[printer]``, docs/configuration.md)."""

    kind: Literal["none", "network", "serial", "usb"] = "none"
    # network: host:port; serial: a device path; usb: vendor:product in hex.
    address: str = ""
    baud: int = 9600
    columns: int = 42
    code_page: str = "cp437"
    drawer_pin: int | None = 2
    auto_print: bool = True
    language: str = ""  # default: the UI's language ([ui] locale)
    shop_name: str = ""
    shop_lines: tuple[str, ...] = ()
    footer: str = ""
    font: str = ""
    qr_native: bool = True
    timeout_s: float = 5.0
    status_poll_s: float = 30.0
    model: str = ""


@dataclass(frozen=True)
class Profile:
    """Which readers a kind of box has (``terminal_profiles/NAME.toml``)."""

    name: str
    description: str
    readers: tuple[ReaderSpec, ...]
    source: str
    udev_rules: tuple[str, ...] = ()
    printer: PrinterSpec = field(default_factory=PrinterSpec)
    printer_raw: Mapping[str, Any] = field(default_factory=dict)


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
            "udev_rules": list(profile.udev_rules), "printer": dict(profile.printer_raw)}


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
    printer_raw = dict(top.table("printer").data)
    return Profile(name=name, description=description, readers=tuple(readers), source=source,
                   udev_rules=tuple(udev), printer=_parse_printer(top.table("printer")),
                   printer_raw=printer_raw)


def _seconds(t: TomlTable, name: str, default: float) -> float:
    value = t.data.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise t.error(name, f"must be a number of seconds, not {value!r}")
    return float(value)


def _parse_printer(t: TomlTable) -> PrinterSpec:
    """``[printer]``: every key checked, each error naming the file and key."""
    unknown = sorted(set(t.data) - _PRINTER_KEYS)
    if unknown:
        raise t.error(unknown[0], "is not a printer setting (known: "
                      f"{', '.join(sorted(_PRINTER_KEYS))})")
    kind = t.choice("kind", PRINTER_KINDS, "none")
    address = t.get("address", str, "")
    if kind != "none" and not address:
        raise t.error("address", f"is required for a {kind} printer (network: host:port, "
                                 "serial: a device path, usb: vendor:product in hex)")
    if kind == "usb":
        vendor, _, product = address.partition(":")
        try:
            int(vendor, 16), int(product, 16)
        except ValueError:
            raise t.error("address", f"must be vendor:product in hex (04b8:0202), not {address!r}"
                          ) from None
    if kind == "network":
        _, sep, port = address.rpartition(":")
        if sep and not (port.isdigit() and 0 < int(port) < 65536):
            raise t.error("address", f"must be host:port, not {address!r}")
    columns = t.get("columns", int, 42)
    if columns not in PRINTER_COLUMNS:
        raise t.error("columns", f"must be 32, 42 or 48, not {columns}")
    code_page = t.choice("code_page", PRINTER_CODE_PAGES, "cp437")
    pin = t.get("drawer_pin", int, 2)
    if pin not in (0, 2, 5):
        raise t.error("drawer_pin", f"must be 2 or 5 (0: no drawer), not {pin}")
    shop_lines = t.get("shop_lines", list, [])
    if len(shop_lines) > 6 or not all(isinstance(x, str) and len(x) <= 80 for x in shop_lines):
        raise t.error("shop_lines", "must be at most 6 strings of at most 80 characters")
    timeout_s = _seconds(t, "timeout_s", 5.0)
    if not 0.2 <= timeout_s <= 60:
        raise t.error("timeout_s", f"must be 0.2 to 60 seconds, not {timeout_s}")
    poll = _seconds(t, "status_poll_s", 30.0)
    if poll < 0:
        raise t.error("status_poll_s", "must be 0 (never) or more seconds")
    return PrinterSpec(
        kind=cast(Any, kind), address=address, baud=t.positive("baud", 9600), columns=columns,
        code_page=code_page, drawer_pin=pin or None, auto_print=t.get("auto_print", bool, True),
        language=t.get("language", str, ""), shop_name=t.get("shop_name", str, "")[:60],
        shop_lines=tuple(shop_lines), footer=t.get("footer", str, "")[:120],
        font=t.get("font", str, ""), qr_native=t.get("qr_native", bool, True),
        timeout_s=timeout_s, status_poll_s=poll, model=t.get("model", str, ""))
