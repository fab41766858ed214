"""Validate captured MQTT traffic against the COMMITTED schemas (jsonschema, not the Structs)."""

from __future__ import annotations

import base64
import binascii
import json
import re
from functools import cache

import jsonschema

from agent.protocol import schemas
from agent.protocol.registry import CHANNELS, ENVELOPE_PAYLOADS


@cache
def _validator(message: str) -> jsonschema.Draft202012Validator:
    path = schemas.SCHEMA_DIR / f"{message}.schema.json"
    return jsonschema.Draft202012Validator(json.loads(path.read_text(encoding="utf-8")))


def _channels() -> list[tuple[re.Pattern[str], str, str | None]]:
    """(topic pattern, message, the envelope payload's message or None) per channel."""
    out = []
    for name, (address, message, *_) in CHANNELS.items():
        escaped = re.escape(f"clubterm/v1/{{club_id}}/{address}")
        pattern = re.sub(r"\\\{[a-z_]+\\\}", "[^/]+", escaped)
        out.append((re.compile(pattern + "$"), message, ENVELOPE_PAYLOADS.get(name)))
    return out


def _payload_errors(topic: str, doc: object, inner: str) -> list[str]:
    """A signed envelope's payload checked too: the document, or (``type: manifest``)
    the manifest that names it."""
    if not isinstance(doc, dict) or not isinstance(doc.get("payload"), str):
        return []  # the envelope's own schema has said why
    message = "manifest" if doc.get("type") == "manifest" else inner
    try:
        body = json.loads(base64.b64decode(doc["payload"], validate=True))
    except (ValueError, binascii.Error) as exc:
        return [f"{topic}: envelope payload is not base64 JSON ({exc})"]
    return [f"{topic} ({message}): {err.message} at {err.json_path}"
            for err in _validator(message).iter_errors(body)]


def traffic_errors(topics: list[str], payloads: list[bytes]) -> list[str]:
    """One line per captured message that no channel documents or its schema refuses."""
    errors: list[str] = []
    channels = _channels()
    for topic, payload in zip(topics, payloads, strict=True):
        if not payload:
            continue  # a cleared retained message
        found = next(((m, inner) for rx, m, inner in channels if rx.match(topic)), None)
        if found is None:
            errors.append(f"{topic}: no channel in asyncapi.json")
            continue
        message, inner = found
        try:
            doc = json.loads(payload)
        except ValueError as exc:
            errors.append(f"{topic}: not JSON ({exc})")
            continue
        for err in _validator(message).iter_errors(doc):
            errors.append(f"{topic} ({message}): {err.message} at {err.json_path}")
        if inner is not None:
            errors += _payload_errors(topic, doc, inner)
    return errors
