"""The agent's configuration: one TOML file plus a terminal profile.

Every problem is reported as a :class:`ConfigError` that names the file, the key
and what is wrong, in words a technician can act on. Every key is documented in
``docs/configuration.md``.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

from agent.errors import ConfigError
from agent.terminal_profile import (
    PARITIES,
    READER_KINDS,
    READER_ROLES,
    Profile,
    ReaderSpec,
    list_profiles,
    load_profile,
)
from agent.toml_table import TomlTable, load_toml

# Profiles are part of the configuration: importers keep using agent.config.
__all__ = [
    "API_MAX_CONNECTIONS_CEILING", "DEFAULT_CONFIG_PATH", "LOG_FORMATS", "LOG_LEVELS",
    "MAX_BROKER_URLS", "MQTT_VERSIONS", "PARITIES", "READER_KINDS", "READER_ROLES",
    "TERMINAL_ID", "Config", "Profile", "ReaderSpec",
    "check_secret_mode", "default_config_path", "list_profiles", "load_config",
    "load_profile", "parse_member_scope", "read_secret_file",
]

DEFAULT_CONFIG_PATH = Path("/etc/clubterm/agent.toml")
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("auto", "json", "text")
# [local_api] max_connections: each is a file descriptor; the unit has LimitNOFILE=1024.
API_MAX_CONNECTIONS_CEILING = 512
# [club] broker_urls: the brokers (nodes of one cluster) the link tries in turn.
MAX_BROKER_URLS = 16
# [club] mqtt_version: MQTT 5 by default; "3.1.1" for brokers that speak only that
# (aedes, older clusters). docs/fleet.md says what the link gives up on 3.1.1.
MQTT_VERSIONS = ("5", "3.1.1")

T = TypeVar("T")


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
    #: ``[club] broker_urls`` (or the one ``broker_url``): the brokers, tried in turn.
    broker_urls: tuple[str, ...] = ()
    #: ``[club] mqtt_version``: "5" (default) or "3.1.1".
    mqtt_version: str = "5"
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)
    # [local_api]: the socket's connection caps and idle timeout (docs/local-api.md).
    api_max_connections: int = 64
    api_max_connections_per_user: int = 16
    api_idle_timeout_s: int = 600
    #: ``[store] keep_days``: accepted events stay this long (docs/store.md).
    store_keep_days: int = 35
    #: ``[store] prune_every_minutes``: the daemon's pruning period.
    store_prune_every_min: int = 60
    #: ``[club] member_scope``: whose member changes this terminal follows ("club",
    #: "merchant:{id}", "group:{id}"; docs/protocol/club.md, "Member scopes").
    member_scope: str = "club"
    #: ``[club] lookup_timeout_s``: the online lookup of a member the cache does not
    #: hold (0: never look up; docs/fleet.md, "Scoped member changes").
    lookup_timeout_s: float = 2.0

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


def _not_negative(table: TomlTable, name: str) -> int:
    value = table.get(name, int, 0)
    if value < 0:
        raise table.error(name, f"must be 0 (never) or more, not {value}")
    return int(value)


# A terminal id is its certificate's CN, its MQTT user name and client id: no ':'
# (so it can never be the club's own broker account, ``club:{club_id}``) and no
# '/', '+' or '#' (so '%u' in a broker ACL pattern stays one topic level).
TERMINAL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")

# A merchant or merchant-group id inside a scope: one MQTT topic level, no wildcard.
_SCOPE_ID = re.compile(r"[^/+#\x00]{1,128}")


def parse_member_scope(value: str, merchant_id: str) -> str:
    """The member scope ``[club] member_scope`` names, in its wire form.

    ``"club"`` (every member, v1), ``"merchant"`` (this terminal's merchant, i.e.
    ``"merchant:{merchant_id}"``), ``"merchant:{id}"`` or ``"group:{group_id}"``
    (``docs/protocol/club.md``, "Member scopes"). Raises :class:`ConfigError`.
    """
    if value == "club":
        return value
    if value == "merchant":
        value = f"merchant:{merchant_id}"
    kind, _, ident = value.partition(":")
    if kind not in ("merchant", "group") or not _SCOPE_ID.fullmatch(ident):
        raise ConfigError(f"{value!r} is not a member scope: use \"club\", \"merchant\" or "
                          "\"group:<merchant group id>\" (no '/', '+' or '#')",
                          key="club.member_scope")
    return value


def _member_scope(club: TomlTable, merchant_id: str) -> tuple[str, float]:
    """``[club] member_scope`` and ``[club] lookup_timeout_s``, checked."""
    scope = club.get("member_scope", str, "club")
    try:
        scope = parse_member_scope(scope, merchant_id)
    except ConfigError as exc:
        raise club.error("member_scope", exc.detail) from None
    timeout = club.data.get("lookup_timeout_s", 2.0)
    if not isinstance(timeout, int | float) or isinstance(timeout, bool) \
            or not 0 <= timeout <= 10:
        raise club.error("lookup_timeout_s", f"must be 0 (never look up) to 10 seconds, "
                                             f"not {timeout!r}")
    return scope, float(timeout)


def _broker_urls(club: TomlTable, allow_plain: bool) -> tuple[str, ...]:
    """``[club] broker_urls`` (a list) or ``broker_url`` (one), each checked."""
    one = club.get("broker_url", str)
    many = club.get("broker_urls", list)
    if one is not None and many is not None:
        raise club.error("broker_urls", "give either broker_url (one broker) or broker_urls "
                                        "(a list), not both")
    key = "broker_urls" if many is not None else "broker_url"
    urls: list[str] = list(many) if many is not None else ([one] if one is not None else [])
    if many is not None and not urls:
        raise club.error(key, "is empty; give at least one mqtts:// URL")
    if len(urls) > MAX_BROKER_URLS:
        raise club.error(key, f"has {len(urls)} URLs; at most {MAX_BROKER_URLS} (a DNS name "
                              "with several addresses counts once)")
    for url in urls:
        if not isinstance(url, str):
            raise club.error(key, f"must be a list of mqtts:// URLs, not {url!r}")
        scheme = url.split("://", 1)[0] if "://" in url else ""
        if scheme not in ("mqtt", "mqtts"):
            raise club.error(key, f"must start with mqtts:// (or mqtt://), not {url!r}")
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise club.error(key, f"{url!r} is not a URL (host[:port])") from None
        if not parts.hostname or (parts.path not in ("", "/")) or parts.query \
                or parts.username or parts.password:
            raise club.error(key, f"{url!r} must be mqtts://host[:port] and nothing more")
        if port == 0:
            raise club.error(key, f"{url!r} has port 0")
        if scheme == "mqtt" and not allow_plain:
            raise club.error(
                key,
                f"{url!r} is a plain mqtt:// URL; TLS is required unless [club] allow_plain = "
                "true (for tests and the demo only)",
            )
    if len(set(urls)) != len(urls):
        raise club.error(key, "names the same broker twice")
    return tuple(urls)


def _mqtt_version(club: TomlTable) -> str:
    """``[club] mqtt_version``: "5" (also the number 5) or "3.1.1"."""
    value = club.data.get("mqtt_version", "5")
    if value == 5 and not isinstance(value, bool):
        return "5"
    if value not in MQTT_VERSIONS:
        raise club.error("mqtt_version", f'must be "5" or "3.1.1", not {value!r}')
    return str(value)


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
    data = load_toml(cfg_path, what="configuration file")
    src = str(cfg_path)
    # absolute() now: the agent may change folder later (systemd, the daemon).
    base = cfg_path.absolute().parent
    top = TomlTable(data, src, "")
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
    allow_plain = club.get("allow_plain", bool, False)
    broker_urls = _broker_urls(club, allow_plain)
    broker_url = broker_urls[0] if broker_urls else None
    mqtt_version = _mqtt_version(club)
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
    member_scope, lookup_timeout = _member_scope(club, merchant_id)

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
        api_idle_timeout_s=api_idle, member_scope=member_scope,
        lookup_timeout_s=lookup_timeout, broker_urls=broker_urls, mqtt_version=mqtt_version,
    )
    if check_secrets:
        for key, secret in (("secrets.pan_key_file", pan_key_file), ("club.key_file", key_file)):
            if secret is not None:
                try:
                    check_secret_mode(secret)
                except ConfigError as exc:
                    raise ConfigError(exc.detail, path=src, key=key) from None
    return cfg
