"""``build_readers(config, pan_key)``: one reader per entry of the terminal profile."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent.config import Config, ReaderSpec
from agent.drivers.base import Backoff, Debouncer, ThreadedReader
from agent.errors import ConfigError


def _opt(spec: ReaderSpec, key: str, kind: type, default: Any) -> Any:
    options: Mapping[str, Any] = spec.options
    value = options.get(key, default)
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(f"must be a whole number, not {value!r}",
                          key=f"readers.{spec.name}.{key}")
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind):
        raise ConfigError(f"has the wrong type ({value!r})", key=f"readers.{spec.name}.{key}")
    return value


def build_reader(spec: ReaderSpec, pan_key: bytes, *, debouncer: Debouncer | None = None,
                 diagnostics: bool = False) -> ThreadedReader:
    """The reader for one profile entry (not started).

    Extra per-reader profile keys: ``backoff_initial_s`` (0.5), ``backoff_max_s`` (30);
    pcsc: ``terminal_country`` (840), ``currency`` (840), ``read_ndef`` (true);
    serial: ``gap_ms`` (200); evdev: ``min_length`` (4), ``code_pattern`` (a regular
    expression a barcode must match in full, e.g. ``"[0-9]{8,14}|CLUB-[A-Z0-9]+"``).
    """
    backoff = Backoff(_opt(spec, "backoff_initial_s", float, 0.5),
                      _opt(spec, "backoff_max_s", float, 30.0))
    if spec.kind == "pcsc":
        from agent.drivers.pcsc import PcscReader

        return PcscReader(
            spec.name, spec.reader or "*", pan_key, debouncer=debouncer, backoff=backoff,
            country=_opt(spec, "terminal_country", int, 840),
            currency=_opt(spec, "currency", int, 840),
            read_ndef=_opt(spec, "read_ndef", bool, True), diagnostics=diagnostics,
        )
    if spec.kind == "serial":
        from agent.drivers.serial import SerialReader

        assert spec.device is not None
        return SerialReader(
            spec.name, spec.device, pan_key, role=spec.role, baud=spec.baud,
            bytesize=spec.bytesize, parity=spec.parity, stopbits=spec.stopbits,
            gap_ms=_opt(spec, "gap_ms", int, 200), debouncer=debouncer, backoff=backoff,
            diagnostics=diagnostics,
        )
    if spec.kind == "evdev":
        from agent.drivers.evdev import SUFFIXES, EvdevReader

        assert spec.device is not None
        if spec.suffix not in SUFFIXES:
            raise ConfigError(f"must be one of {', '.join(SUFFIXES)}, not {spec.suffix!r}",
                              key=f"readers.{spec.name}.suffix")
        return EvdevReader(
            spec.name, spec.device, pan_key, role=spec.role, keymap=spec.keymap,
            suffix=spec.suffix, inter_key_timeout_ms=spec.inter_key_timeout_ms,
            min_length=_opt(spec, "min_length", int, 4),
            code_pattern=_opt(spec, "code_pattern", str, "") or None, debouncer=debouncer,
            backoff=backoff, diagnostics=diagnostics,
        )
    raise ConfigError(f"unknown reader kind {spec.kind!r}", key=f"readers.{spec.name}.kind")


def build_readers(config: Config, pan_key: bytes, *, only: str | None = None,
                  diagnostics: bool = False) -> list[ThreadedReader]:
    """One reader per profile entry, sharing one debouncer (``config.debounce_ms``).

    ``only`` keeps the reader of that name (ConfigError if there is none);
    ``diagnostics`` adds the expiry to events (for ``clubterm card read`` only).
    The readers are not started: call ``reader.start(emit)`` on each.
    """
    specs = list(config.profile.readers)
    if only is not None:
        specs = [s for s in specs if s.name == only]
        if not specs:
            names = ", ".join(s.name for s in config.profile.readers) or "none"
            raise ConfigError(f"the profile has no reader named {only!r} (it has: {names})",
                              key="terminal.profile")
    debouncer = Debouncer(config.debounce_ms)
    return [build_reader(s, pan_key, debouncer=debouncer, diagnostics=diagnostics) for s in specs]
