"""The agent's configuration: one TOML file plus a terminal profile.

Every problem is reported as a :class:`ConfigError` that names the file, the key
and what is wrong, in words a technician can act on. Every key is documented in
``docs/configuration.md``.
"""

from __future__ import annotations

import os
import re
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal, TypeVar, cast

from agent.errors import ConfigError

DEFAULT_CONFIG_PATH = Path("/etc/clubterm/agent.toml")
READER_KINDS = ("pcsc", "serial", "evdev")
READER_ROLES = ("card", "barcode")
PARITIES = ("N", "E", "O", "M", "S")
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("auto", "json", "text")
# [local_api] max_connections: each is a file descriptor; the unit has LimitNOFILE=1024.
API_MAX_CONNECTIONS_CEILING = 512

T = TypeVar("T")


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


@dataclass(frozen=True)
class Config:
    """The whole validated configuration of one terminal."""

    path: Path
    terminal_id: str
    merchant_id: str
    club_id: str
    profile: Profile
    state_dir: Path
    socket_path: Path
    pan_key_file: Path | None
    broker_url: str | None
    central_url: str | None
    allow_plain: bool
    ca_file: Path | None
    cert_file: Path | None
    key_file: Path | None
    rules_keys_dir: Path | None
    default_country_code: str
    debounce_ms: int
    log_level: str
    log_format: str
    ui_locale: str
    ui_idle_signout_s: int
    ui_confirm_above: int = 0
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)
    # [local_api]: the socket's connection caps and idle timeout (docs/local-api.md).
    api_max_connections: int = 64
    api_max_connections_per_user: int = 16
    api_idle_timeout_s: int = 600
    #: ``[store] keep_days``: accepted events stay this long (docs/store.md).
    store_keep_days: int = 35
    #: ``[store] prune_every_minutes``: the daemon's pruning period.
    store_prune_every_min: int = 60

    @property
    def db_path(self) -> Path:
        """The SQLite store (outbox, member cache, bundles, local data)."""
        return self.state_dir / "clubterm.db"

    def read_pan_key(self) -> bytes:
        """The club's 32-byte ``pan_key`` (raw bytes or 64 hex digits in a 0600 file)."""
        if self.pan_key_file is None:
            raise ConfigError(
                "no pan_key_file is configured; enrol the terminal first "
                "(clubterm provision enrol)",
                path=str(self.path),
                key="secrets.pan_key_file",
            )
        data = read_secret_file(self.pan_key_file, key="secrets.pan_key_file")
        text = data.strip()
        if len(text) == 64:
            try:
                return bytes.fromhex(text.decode("ascii"))
            except (UnicodeDecodeError, ValueError):
                pass
        if len(data) == 32:
            return data
        raise ConfigError(
            f"{self.pan_key_file} must hold 32 bytes (raw, or as 64 hex digits)",
            path=str(self.path),
            key="secrets.pan_key_file",
        )


def check_secret_mode(path: Path, *, key: str | None = None) -> None:
    """Refuse a secret file that is missing or readable by anyone but its owner."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ConfigError(f"secret file {path} does not exist", key=key) from None
    except OSError as exc:
        raise ConfigError(f"secret file {path} cannot be read: {exc.strerror}", key=key) from None
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(f"secret file {path} is not a regular file", key=key)
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        raise ConfigError(
            f"secret file {path} has mode {mode:04o}; it must be readable by its owner only. "
            f"Fix it with: chmod 600 {path}",
            key=key,
        )


def read_secret_file(path: Path, *, key: str | None = None) -> bytes:
    """Read a secret after :func:`check_secret_mode`."""
    check_secret_mode(path, key=key)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"secret file {path} cannot be read: {exc.strerror}", key=key) from None


class _Table:
    """Typed access to one TOML table, with errors that name file and key."""

    def __init__(self, data: Mapping[str, Any], source: str, prefix: str):
        self.data = data
        self.source = source
        self.prefix = prefix

    def _key(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def error(self, name: str, message: str) -> ConfigError:
        return ConfigError(message, path=self.source, key=self._key(name))

    def get(
        self, name: str, kind: type[T], default: T | None = None, *, required: bool = False
    ) -> T:
        if name not in self.data:
            if required:
                raise self.error(name, "is required but missing")
            return cast(T, default)
        value = self.data[name]
        # bool is an int in Python; a TOML boolean is never a valid number here.
        if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
            raise self.error(name, f"must be a whole number, not {value!r}")
        if not isinstance(value, kind):
            words = _KIND_WORDS.get(kind, kind.__name__)
            raise self.error(name, f"must be a {words}, not {value!r}")
        return value

    def choice(self, name: str, choices: tuple[str, ...], default: str | None = None, *,
               required: bool = False) -> str:
        value = self.get(name, str, default, required=required)
        if value not in choices:
            raise self.error(name, f"must be one of {', '.join(choices)}, not {value!r}")
        return value

    def path(self, name: str, default: str | None = None, *, required: bool = False,
             base: Path | None = None) -> Path | None:
        value = self.get(name, str, default, required=required)
        if value is None:
            return None
        p = Path(value)
        if not p.is_absolute() and base is not None:
            p = base / p
        return p

    def table(self, name: str) -> _Table:
        value = self.data.get(name, {})
        if not isinstance(value, dict):
            raise self.error(name, "must be a table")
        return _Table(value, self.source, self._key(name))

    def positive(self, name: str, default: int) -> int:
        value = self.get(name, int, default)
        if value <= 0:
            raise self.error(name, f"must be greater than zero, not {value}")
        return value


def _not_negative(table: _Table, name: str) -> int:
    value = table.get(name, int, 0)
    if value < 0:
        raise table.error(name, f"must be 0 (never) or more, not {value}")
    return int(value)


# A terminal id is its certificate's CN, its MQTT user name and client id: no ':'
# (so it can never be the club's own broker account, ``club:{club_id}``) and no
# '/', '+' or '#' (so '%u' in a broker ACL pattern stays one topic level).
TERMINAL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")

_KIND_WORDS = {str: "string", bool: "true or false", dict: "table", list: "list", float: "number"}


def _load_toml(path: Path, *, what: str) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{what} not found", path=str(path)) from None
    except PermissionError:
        raise ConfigError(f"{what} cannot be read (permission denied)", path=str(path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"is not valid TOML: {exc}", path=str(path)) from None


def _is_profile_path(name: str) -> bool:
    return "/" in name or name.endswith(".toml")


def _profile_text_source(name: str, base: Path | None) -> tuple[str, dict[str, Any]]:
    """Find a profile by name (shipped in ``terminal_profiles``) or by path (a
    relative one taken from ``base``, or from the current folder without it)."""
    if _is_profile_path(name):
        path = Path(name)
        if base is not None and not path.is_absolute():
            path = base / path
        return str(path), _load_toml(path, what="terminal profile")
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
    top = _Table(data, source, "")
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


def default_config_path() -> Path:
    """``$CLUBTERM_CONFIG`` or ``/etc/clubterm/agent.toml``."""
    return Path(os.environ.get("CLUBTERM_CONFIG", str(DEFAULT_CONFIG_PATH)))


def load_config(path: Path | str | None = None, *, check_secrets: bool = True) -> Config:
    """Load and validate the configuration and its terminal profile.

    Relative paths in the file are taken from the file's own folder. With
    ``check_secrets`` the secret files named in it must exist with mode 0600.
    """
    cfg_path = Path(path) if path is not None else default_config_path()
    if not cfg_path.exists():
        raise ConfigError(
            "configuration file not found; pass --config FILE (or set CLUBTERM_CONFIG), "
            "or enrol this terminal first: clubterm provision enrol",
            path=str(cfg_path),
        )
    data = _load_toml(cfg_path, what="configuration file")
    src = str(cfg_path)
    # absolute() now: the agent may change folder later (systemd, the daemon).
    base = cfg_path.absolute().parent
    top = _Table(data, src, "")
    known = {"terminal", "paths", "secrets", "club", "readers", "log", "ui", "local_api",
             "store"}
    for key in data:
        if key not in known:
            raise top.error(key, f"is not a known section (known: {', '.join(sorted(known))})")

    term = top.table("terminal")
    terminal_id = term.get("id", str, required=True)
    merchant_id = term.get("merchant_id", str, required=True)
    club_id = term.get("club_id", str, required=True)
    if not club_id or len(club_id) > 64 or not all(c.islower() or c.isdigit() or c == "-"
                                                     for c in club_id):
        raise term.error("club_id", f"must be a slug of a-z, 0-9 and '-' (1-64), not {club_id!r}")
    if not TERMINAL_ID.fullmatch(terminal_id):
        raise term.error("id", f"{terminal_id!r} is not a terminal id (letters, digits, '.', "
                         "'_' and '-', 1-128, starting with a letter or digit; it is also the "
                         "certificate's CN and the MQTT client id)")
    if not merchant_id or any(c in merchant_id for c in "/+#") or len(merchant_id) > 128:
        raise term.error("merchant_id", f"{merchant_id!r} cannot be used in MQTT topics")
    profile_name = term.get("profile", str, required=True)
    try:
        profile = load_profile(profile_name, base=base)
    except ConfigError as exc:
        if exc.path is None:
            raise ConfigError(exc.detail, path=src, key="terminal.profile") from None
        raise
    country = term.get("default_country_code", str, "1")
    if not country.isdigit() or not 1 <= len(country) <= 3:
        raise term.error("default_country_code",
                         f"must be 1 to 3 digits (e.g. 98), not {country!r}")

    paths = top.table("paths")
    state_dir = paths.path("state_dir", "/var/lib/clubterm", base=base)
    socket_path = paths.path("socket", "/run/clubterm/agent.sock", base=base)

    secrets = top.table("secrets")
    pan_key_file = secrets.path("pan_key_file", base=base)

    club = top.table("club")
    broker_url = club.get("broker_url", str)
    allow_plain = club.get("allow_plain", bool, False)
    if broker_url is not None:
        scheme = broker_url.split("://", 1)[0] if "://" in broker_url else ""
        if scheme not in ("mqtt", "mqtts"):
            raise club.error("broker_url",
                             f"must start with mqtts:// (or mqtt://), not {broker_url!r}")
        if scheme == "mqtt" and not allow_plain:
            raise club.error(
                "broker_url",
                "is a plain mqtt:// URL; TLS is required unless [club] allow_plain = true "
                "(for tests and the demo only)",
            )
    central_url = club.get("central_url", str)
    if central_url is not None and not central_url.startswith(("https://", "http://")):
        raise club.error("central_url", f"must be an https:// URL, not {central_url!r}")
    if central_url is not None and central_url.startswith("http://") and not allow_plain:
        raise club.error("central_url", "is plain http://; HTTPS is required unless allow_plain")
    ca_file = club.path("ca_file", base=base)
    cert_file = club.path("cert_file", base=base)
    key_file = club.path("key_file", base=base)
    rules_keys_dir = club.path("rules_keys_dir", base=base)

    readers = top.table("readers")
    debounce_ms = readers.get("debounce_ms", int, 1500)
    if debounce_ms < 0:
        raise readers.error("debounce_ms", "must not be negative")

    log = top.table("log")
    ui = top.table("ui")

    api = top.table("local_api")
    api_max = api.positive("max_connections", 64)
    if api_max > API_MAX_CONNECTIONS_CEILING:
        raise api.error("max_connections",
                        f"must be at most {API_MAX_CONNECTIONS_CEILING} (each connection is an "
                        f"open file and the service allows 1024), not {api_max}")
    api_per_user = api.positive("max_connections_per_user", 16)
    if api_per_user > api_max:
        raise api.error("max_connections_per_user",
                        f"must not be more than max_connections ({api_max}), not {api_per_user}")
    api_idle = api.positive("idle_timeout_s", 600)
    store = top.table("store")
    keep_days = store.get("keep_days", int, 35)
    if keep_days < 2:
        raise store.error("keep_days", f"must be at least 2 (today's report and refunds read "
                                       f"the recent events), not {keep_days}")
    prune_every = store.positive("prune_every_minutes", 60)

    cfg = Config(
        path=cfg_path, terminal_id=terminal_id, merchant_id=merchant_id, club_id=club_id,
        profile=profile, state_dir=cast(Path, state_dir), socket_path=cast(Path, socket_path),
        pan_key_file=pan_key_file, broker_url=broker_url, central_url=central_url,
        allow_plain=allow_plain, ca_file=ca_file, cert_file=cert_file, key_file=key_file,
        rules_keys_dir=rules_keys_dir, default_country_code=country, debounce_ms=debounce_ms,
        log_level=log.choice("level", LOG_LEVELS, "info"),
        log_format=log.choice("format", LOG_FORMATS, "auto"),
        ui_locale=ui.get("locale", str, "en"),
        ui_idle_signout_s=ui.positive("idle_signout_s", 300),
        ui_confirm_above=_not_negative(ui, "confirm_above"),
        raw=data, store_keep_days=keep_days, store_prune_every_min=prune_every,
        api_max_connections=api_max, api_max_connections_per_user=api_per_user,
        api_idle_timeout_s=api_idle,
    )
    if check_secrets:
        for key, secret in (("secrets.pan_key_file", pan_key_file), ("club.key_file", key_file)):
            if secret is not None:
                try:
                    check_secret_mode(secret)
                except ConfigError as exc:
                    raise ConfigError(exc.detail, path=src, key=key) from None
    return cfg
