"""Generate (``--write``) or verify (``--check``) the published protocol documents.

``docs/protocol/schemas/<name>.schema.json`` per message, ``docs/protocol/asyncapi.json``
(MQTT) and ``docs/protocol/openapi.json`` (HTTPS), all derived from the Structs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import msgspec

from agent.protocol.localapi import METHODS
from agent.protocol.registry import CHANNELS, HTTPS_PATHS, MESSAGES

ROOT = Path(__file__).resolve().parents[2] / "docs" / "protocol"
SCHEMA_DIR = ROOT / "schemas"
DIALECT = "https://json-schema.org/draft/2020-12/schema"


def _dump(doc: Any) -> str:
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def message_schema(name: str) -> dict[str, Any]:
    """The standalone JSON Schema (2020-12) of one message."""
    schema = msgspec.json.schema(MESSAGES[name], ref_template="#/$defs/{name}")
    schema["$schema"] = DIALECT
    schema["$id"] = f"{name}.schema.json"
    return schema


def method_schema(method: str) -> dict[str, Any]:
    """One local API method (local-api.md): ``properties.params`` is what a client
    sends, ``properties.result`` what the agent answers."""
    params, result = METHODS[method]
    (p_top, r_top), defs = msgspec.json.schema_components(
        [params, result], ref_template="#/$defs/{name}")
    schema: dict[str, Any] = {
        "$schema": DIALECT, "$id": f"localapi.{method}.schema.json",
        "title": method, "type": "object",
        "properties": {"params": p_top, "result": r_top},
    }
    if defs:
        schema["$defs"] = defs
    return schema


def _components() -> tuple[dict[str, Any], dict[str, Any]]:
    """Top schemas per message (refs into a shared ``components/schemas``)."""
    names = list(MESSAGES)
    tops, comps = msgspec.json.schema_components(
        [MESSAGES[n] for n in names], ref_template="#/components/schemas/{name}")
    return dict(zip(names, tops, strict=True)), comps


def asyncapi() -> dict[str, Any]:
    """AsyncAPI 3.0 of the MQTT side."""
    tops, comps = _components()
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for name, (address, message, direction, qos, retained) in CHANNELS.items():
        messages[message] = {"name": message, "contentType": "application/json",
                             "payload": tops[message]}
        channels[name] = {
            "address": f"clubterm/v1/{{club_id}}/{address}",
            "messages": {message: {"$ref": f"#/components/messages/{message}"}},
            "bindings": {"mqtt": {"qos": qos, "retain": retained, "bindingVersion": "0.2.0"}},
        }
        operations[f"{direction}-{name}"] = {
            "action": direction, "channel": {"$ref": f"#/channels/{name}"},
            "bindings": {"mqtt": {"qos": qos, "retain": retained, "bindingVersion": "0.2.0"}},
        }
    return {
        "asyncapi": "3.0.0",
        "info": {"title": "clubterm terminal ⇄ club (MQTT)", "version": "1.1",
                 "description": "Generated from agent/protocol; see docs/protocol/club.md."},
        "defaultContentType": "application/json",
        "channels": channels, "operations": operations,
        "components": {"messages": messages, "schemas": comps},
    }


def openapi() -> dict[str, Any]:
    """OpenAPI 3.1 of the HTTPS side (paths from ``registry.HTTPS_PATHS``)."""
    tops, comps = _components()
    paths: dict[str, Any] = {}
    for path, (method, summary, request, response, content_type) in HTTPS_PATHS.items():
        op: dict[str, Any] = {"summary": summary, "responses": {"200": {
            "description": "OK",
            "content": {content_type: {"schema": tops[response]}}}}}
        if request is not None:
            op["requestBody"] = {"required": True, "content": {
                "application/json": {"schema": tops[request]}}}
        paths.setdefault(path, {})[method] = op
    return {"openapi": "3.1.0",
            "info": {"title": "clubterm terminal ⇄ club (HTTPS, mutual TLS)", "version": "1.1"},
            "paths": paths, "components": {"schemas": comps}}


def documents() -> dict[Path, str]:
    """Every generated file and its text."""
    out = {SCHEMA_DIR / f"{name}.schema.json": _dump(message_schema(name)) for name in MESSAGES}
    out.update({SCHEMA_DIR / f"localapi.{method}.schema.json": _dump(method_schema(method))
                for method in METHODS})
    out[ROOT / "asyncapi.json"] = _dump(asyncapi())
    out[ROOT / "openapi.json"] = _dump(openapi())
    return out


def drift() -> list[Path]:
    """Generated files whose committed text differs (or that are missing/stale)."""
    wanted = documents()
    bad = [p for p, text in wanted.items()
           if not p.exists() or p.read_text(encoding="utf-8") != text]
    if SCHEMA_DIR.exists():
        bad += [p for p in sorted(SCHEMA_DIR.glob("*.schema.json")) if p not in wanted]
    return bad


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agent.protocol.schemas")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--write", action="store_true", help="regenerate the documents")
    group.add_argument("--check", action="store_true", help="exit 1 if any document drifted")
    args = parser.parse_args(argv)
    if args.write:
        SCHEMA_DIR.mkdir(parents=True, exist_ok=True)
        for stale in SCHEMA_DIR.glob("*.schema.json"):
            stale.unlink()
        for path, text in documents().items():
            path.write_text(text, encoding="utf-8")
        return 0
    bad = drift()
    for path in bad:
        print(f"drift: {path.relative_to(ROOT.parents[1])} differs from agent/protocol; "
              "run python -m agent.protocol.schemas --write", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
