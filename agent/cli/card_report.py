"""The report of ``clubterm card decode`` and ``card read`` as a person or a script
reads it, and the pan_key the report's token is computed with."""

from __future__ import annotations

import argparse
import json
from typing import Any

from agent.errors import ClubtermError


def mm_yy(yymm: str | None) -> str | None:
    """A card's ``YYMM`` expiry as people write it, ``MM/YY``."""
    return f"{yymm[2:]}/{yymm[:2]}" if yymm else None


def pan_key_of(args: argparse.Namespace) -> tuple[bytes | None, str | None]:
    """The club's pan_key if this machine has a usable configuration, else why not."""
    from agent.config import load_config

    try:
        cfg = load_config(getattr(args, "config", None), check_secrets=False)
        return cfg.read_pan_key(), None
    except ClubtermError as exc:
        return None, str(exc)
    except OSError as exc:
        return None, exc.strerror or "the configuration cannot be read"


_LABELS = (
    ("source", "source"),
    ("reader", "reader"),
    ("masked", "card number"),
    ("bin6", "BIN"),
    ("expiry", "expiry (MM/YY)"),
    ("name", "name"),
    ("service_code", "service code"),
    ("token_kind", "token kind"),
    ("token", "token"),
    ("token_note", ""),
    ("card_tag", "card number from tag"),
)


def format_card_report(report: dict[str, Any], as_json: bool) -> str:
    """The report of ``card decode`` / ``card read`` as text for a person, or JSON.

    Known keys come first with readable labels, then any other key as it is;
    ``tags`` (a TLV tag list) and ``notes`` last. The report must already be safe
    to show: this function prints what it is given.
    """
    if as_json:
        return json.dumps(report, indent=2, ensure_ascii=False)
    lines: list[str] = []
    width = max(len(label) for _, label in _LABELS) + 1
    known = {key for key, _ in _LABELS} | {"tags", "notes"}
    for key, label in _LABELS:
        if key not in report:
            continue
        value = report[key]
        if key == "token_note":
            if value:
                lines.append(f"{'token':<{width}} - ({value})")
            continue
        if key == "token" and value is None and report.get("token_note"):
            continue
        if value is None and key in ("reader", "card_tag"):
            continue
        lines.append(f"{label:<{width}} {'-' if value is None else value}")
    for key, value in report.items():
        if key not in known:
            lines.append(f"{key.replace('_', ' '):<{width}} {value}")
    tags = report.get("tags")
    if tags:
        lines.append("tags:")
        for item in tags:
            indent = "  " * (int(item.get("depth", 0)) + 1)
            name = item.get("name") or "(unknown tag)"
            size = item["length"]
            line = f"{indent}{item['tag']} {name} [{size} byte{'' if size == 1 else 's'}]"
            if item.get("value") is not None:
                line += f": {item['value']}"
            lines.append(line)
    for note in report.get("notes") or ():
        lines.append(f"note: {note}")
    return "\n".join(lines)
