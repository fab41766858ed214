"""Validate captured MQTT traffic against the COMMITTED schemas (jsonschema, not the Structs)."""

from __future__ import annotations

import json
import re
from functools import cache

import jsonschema

from agent.protocol import schemas
from agent.protocol.registry import CHANNELS


@cache
def _validator(message: str) -> jsonschema.Draft202012Validator:
    path = schemas.SCHEMA_DIR / f"{message}.schema.json"
    return jsonschema.Draft202012Validator(json.loads(path.read_text(encoding="utf-8")))


def _channels() -> list[tuple[re.Pattern[str], str]]:
    out = []
    for address, message, *_ in CHANNELS.values():
        escaped = re.escape(f"clubterm/v1/{{club_id}}/{address}")
        pattern = re.sub(r"\\\{[a-z_]+\\\}", "[^/]+", escaped)
        out.append((re.compile(pattern + "$"), message))
    return out


def traffic_errors(topics: list[str], payloads: list[bytes]) -> list[str]:
    """One line per captured message that no channel documents or its schema refuses."""
    errors: list[str] = []
    channels = _channels()
    for topic, payload in zip(topics, payloads, strict=True):
        if not payload:
            continue  # a cleared retained message
        message = next((m for rx, m in channels if rx.match(topic)), None)
        if message is None:
            errors.append(f"{topic}: no channel in asyncapi.json")
            continue
        try:
            doc = json.loads(payload)
        except ValueError as exc:
            errors.append(f"{topic}: not JSON ({exc})")
            continue
        for err in _validator(message).iter_errors(doc):
            errors.append(f"{topic} ({message}): {err.message} at {err.json_path}")
    return errors
