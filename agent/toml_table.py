"""Typed reading of TOML files and tables, with errors that name the file and key."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar, cast

from agent.errors import ConfigError

T = TypeVar("T")

KIND_WORDS = {str: "string", bool: "true or false", dict: "table", list: "list", float: "number"}


def load_toml(path: Path, *, what: str) -> dict[str, Any]:
    """A TOML file as a dict; ``what`` names it in the error (missing, unreadable, bad)."""
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{what} not found", path=str(path)) from None
    except PermissionError:
        raise ConfigError(f"{what} cannot be read (permission denied)", path=str(path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"is not valid TOML: {exc}", path=str(path)) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"is not valid TOML: not UTF-8 text (byte {exc.start})",
                          path=str(path)) from None

class TomlTable:
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
            words = KIND_WORDS.get(kind, kind.__name__)
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

    def table(self, name: str) -> TomlTable:
        value = self.data.get(name, {})
        if not isinstance(value, dict):
            raise self.error(name, "must be a table")
        return TomlTable(value, self.source, self._key(name))

    def positive(self, name: str, default: int) -> int:
        value = self.get(name, int, default)
        if value <= 0:
            raise self.error(name, f"must be greater than zero, not {value}")
        return value
