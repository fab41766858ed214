"""Benchmark of a large rule bundle by manifest (``python -m bench.bundle``).

A 10,000-rule bundle (made as ``bench.rules`` makes it) is signed, announced by a
signed manifest and served by the simulated club's HTTPS server (mutual TLS, on
loopback); the terminal's own code fetches it (:func:`agent.sync.download.fetch_document`:
size, digest, inflation), checks its signature and puts it in use
(:meth:`agent.rules.BundleState.offer`). Printed: each step's time, with and without
gzip, and the bytes on the wire (the MQTT manifest message and the HTTPS body). The
MQTT hop itself (one message under 1 KiB) is measured end to end in
``tests/e2e/test_large_bundle.py``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from agent.rules import BundleState
from agent.sync.download import DocumentClient, DocumentLimits, fetch_document
from agent.sync.messages import parse_manifest
from agent.sync.updates import load_document
from bench.rules import make_bundle
from hw_sim.club.bundles import (
    SigningKey,
    document_body,
    encode_bundle,
    make_manifest,
    sign_manifest,
)
from hw_sim.club.https import ClubHttpServer, Response
from hw_sim.club.pki import ClubCA


def run(rules: int, repeat: int) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="bench-bundle-"))
    ca = ClubCA.create(root / "pki")
    server_cert = ca.issue(root / "pki", "localhost", server=True)
    client = ca.issue(root / "pki" / "clients", "T-0001")
    key = SigningKey.load_or_create(root / "keys")
    now = datetime.now(UTC)
    bundle = make_bundle(rules)
    bundle.update(version=2, issued_at=now.isoformat(timespec="seconds"),
                  expires_at=(now + timedelta(days=30)).isoformat(timespec="seconds"))
    bodies: dict[str, bytes] = {}
    http = ClubHttpServer(tls=(ca.cert_file, server_cert.cert, server_cert.key))
    http.add_route("GET", r"/b/.*", lambda req: Response(200, bodies[req.path]))
    http.start()
    out: dict[str, Any] = {"rules": rules}
    try:
        docs = DocumentClient(http.url, ca.cert_file, client.cert, client.key,
                              DocumentLimits())
        for gzip_body in (False, True):
            best: dict[str, float] = {}
            for _ in range(repeat):
                t0 = time.perf_counter()
                envelope = key.sign(bundle)  # the club: sign ...
                body = document_body(envelope, gzip_body=gzip_body)  # ... and encode
                path = f"/b/{'gz' if gzip_body else 'raw'}"
                bodies[path] = body
                manifest_doc = make_manifest("bundle", "acme", "M-7", 2, body, path,
                                             gzip_body=gzip_body)
                manifest_msg = json.dumps(sign_manifest(manifest_doc, key)).encode()
                t1 = time.perf_counter()
                manifest = parse_manifest(encode_bundle(manifest_doc))
                raw = fetch_document(docs, manifest)  # the terminal: fetch, size, digest
                t2 = time.perf_counter()
                state = BundleState({key.key_id: key.key.public_key()}, club="acme",
                                    merchant="M-7")
                ok = state.offer(load_document(raw), datetime.now(UTC))  # signature + load
                t3 = time.perf_counter()
                assert ok, state.problem()
                for name, value in (("publish", t1 - t0), ("fetch", t2 - t1),
                                    ("verify_load", t3 - t2), ("total", t3 - t0)):
                    best[name] = min(best.get(name, value), value)
            label = "gzip" if gzip_body else "identity"
            out[label] = {"body_bytes": len(body), "manifest_bytes": len(manifest_msg),
                          **{k: round(v * 1000, 1) for k, v in best.items()}}
        out["inline_envelope_bytes"] = len(json.dumps(key.sign(bundle)).encode())
    finally:
        http.stop()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rules", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    out = run(args.rules, args.repeat)
    print(f"{out['rules']:,}-rule bundle: signed envelope {out['inline_envelope_bytes']:,} bytes "
          f"(MQTT payload cap 262,144)")
    for label in ("identity", "gzip"):
        r = out[label]
        print(f"  {label:8}: HTTPS body {r['body_bytes']:>10,} bytes, manifest message "
              f"~{r['manifest_bytes']} bytes; publish {r['publish']} ms, fetch+digest "
              f"{r['fetch']} ms, verify+load {r['verify_load']} ms, total {r['total']} ms "
              f"(best of {args.repeat})")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
