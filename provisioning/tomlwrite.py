"""A small TOML writer for the agent configuration.

The standard library reads TOML but does not write it; the configuration holds
only strings, whole numbers, booleans, lists of those and tables, so this writer
covers exactly that (and refuses anything else rather than guess).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _key(name: str) -> str:
    return name if _BARE_KEY.fullmatch(name) else _string(name)


_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n",
            "\f": "\\f", "\r": "\\r"}


def _string(value: str) -> str:
    # TOML basic strings forbid control characters including DEL (which JSON lets through).
    out = []
    for ch in value:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _value(value: Any, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)  # "0.2", "3.0", "1e-05": each a TOML float
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v, where) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} at {where} as TOML")


def dump_toml(data: Mapping[str, Any], header: str = "") -> str:
    """TOML text for ``data`` (scalars first, then one ``[table]`` per nested mapping)."""
    lines: list[str] = [f"# {line}".rstrip() for line in header.splitlines()]
    if lines:
        lines.append("")

    def emit(table: Mapping[str, Any], path: list[str]) -> None:
        scalars = [(k, v) for k, v in table.items() if not isinstance(v, Mapping)]
        tables = [(k, v) for k, v in table.items() if isinstance(v, Mapping)]
        if path and (scalars or not tables):
            lines.append("[" + ".".join(_key(p) for p in path) + "]")
        for k, v in scalars:
            lines.append(f"{_key(k)} = {_value(v, '.'.join([*path, k]))}")
        if path and (scalars or not tables):
            lines.append("")
        for k, v in tables:
            emit(v, [*path, k])

    emit(data, [])
    return "\n".join(lines).rstrip("\n") + "\n"
