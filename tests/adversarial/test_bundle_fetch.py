"""A large rule bundle comes as a signed manifest and is fetched over HTTPS; a hostile or
broken fetch never replaces the bundle in use (issue #17, item 3 "Large bundles").

The real link on the real mosquitto and the simulated club (mutual TLS HTTPS). The
terminal holds bundle version 1 (inline); the club then announces version 2 by
manifest and serves it wrongly: a wrong digest, a body longer or shorter than
announced, a size over the terminal's cap, a server that trickles, a bundle signed
by a key the terminal does not trust, a redirect, an HTTP error. Each time version 1
stays in force, the reason shows in the status's ``rules_problem``, the fetch is
tried again with backoff, and once the club serves it right version 2 comes in.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hw_sim.broker import MosquittoBroker
from hw_sim.club.bundles import SigningKey, document_body, make_bundle
from hw_sim.club.https import Request, Response
from hw_sim.club.sim import DOCUMENT_ROUTE, SimClub
from tests.agent.sync.conftest import FAST, Terminal, make_terminal  # noqa: F401 (fixture)

pytestmark = pytest.mark.needs_mosquitto

TUNING = dataclasses.replace(FAST, document_retry_s=0.3, document_retry_cap_s=1.0,
                             document_deadline_s=3.0, document_timeout_s=2.0)


def start(club: SimClub, make: Callable[..., Terminal], broker: MosquittoBroker,
          **tuning: Any) -> Terminal:
    """A terminal with bundle version 1 (inline) in force."""
    club.publish_bundle("M-7", 1, manifest=False)
    term = make(club, broker.tls_url, tuning=dataclasses.replace(TUNING, **tuning))
    term.wait(lambda: term.bundle_state.version == 1, 15, "bundle version 1")
    return term


def problem(term: Terminal) -> str:
    assert term.link is not None
    return term.link.status_payload()["rules_problem"] or ""


def requests(club: SimClub, version: int) -> int:
    return sum(1 for _, path in club.document_requests if path.endswith(f"/bundles/{version}"))


def refused_then_fixed(club: SimClub, term: Terminal, fix: Callable[[], None],
                       expect: str, *, attempts: int = 2) -> dict[str, Any]:
    """Version 1 stays while the fetch fails (tried ``attempts`` times), then the fix
    brings version 2."""
    started = time.monotonic()
    term.wait(lambda: expect in problem(term), 20, f"the problem {expect!r}")
    first_s = time.monotonic() - started
    shown = problem(term)
    term.wait(lambda: requests(club, 2) >= attempts, 20, "the fetch tried again")
    assert term.bundle_state.version == 1, "a failed fetch replaced the bundle in use"
    assert term.store.bundles.current_bundle() is not None
    fix()
    term.wait(lambda: term.bundle_state.version == 2, 20, "version 2 once the club serves it")
    term.wait(lambda: problem(term) == "", 10, "the problem cleared")
    return {"problem": shown, "first_s": first_s, "requests": requests(club, 2)}


def serve_v2(club: SimClub, **kw: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Sign bundle version 2 and publish its manifest; returns (envelope, manifest)."""
    envelope = club.signing_key.sign(make_bundle(club.club_id, "M-7", 2))
    manifest = club.publish_bundle_manifest("M-7", envelope, 2, **kw)
    return envelope, manifest


def test_a_body_with_the_wrong_digest_is_refused_and_the_old_bundle_stays(
        sim_club: SimClub, mosquitto: MosquittoBroker,
        make_terminal: Callable[..., Terminal]) -> None:  # noqa: F811
    term = start(sim_club, make_terminal, mosquitto)
    _, manifest = serve_v2(sim_club)
    body = sim_club.documents[manifest["path"]]
    tampered = bytearray(body)
    tampered[len(tampered) // 2] ^= 0x01
    sim_club.documents[manifest["path"]] = bytes(tampered)
    out = refused_then_fixed(sim_club, term,
                             lambda: sim_club.documents.__setitem__(manifest["path"], body),
                             "digest")
    print(f"figure: wrong digest refused in {out['first_s']:.2f} s, {out['requests']} fetches "
          f"before the club fixed it: {out['problem'][:90]}")


@pytest.mark.parametrize("case", ["longer", "truncated"])
def test_a_body_longer_or_shorter_than_announced_is_refused(
        case: str, sim_club: SimClub, mosquitto: MosquittoBroker,
        make_terminal: Callable[..., Terminal]) -> None:  # noqa: F811
    term = start(sim_club, make_terminal, mosquitto)
    _, manifest = serve_v2(sim_club)
    body = sim_club.documents[manifest["path"]]
    sim_club.documents[manifest["path"]] = body + b"\0" * 4096 if case == "longer" \
        else body[: len(body) // 2]
    out = refused_then_fixed(sim_club, term,
                             lambda: sim_club.documents.__setitem__(manifest["path"], body),
                             "fetch_failed: size")
    print(f"figure: a {case} body refused: {out['problem'][:100]}")


def test_a_manifest_over_the_size_cap_is_not_fetched(
        sim_club: SimClub, mosquitto: MosquittoBroker,
        make_terminal: Callable[..., Terminal]) -> None:  # noqa: F811
    term = start(sim_club, make_terminal, mosquitto, document_max_bytes=1024)
    serve_v2(sim_club, gzip_body=False)
    term.wait(lambda: "too_large" in problem(term), 20, "too_large")
    time.sleep(1.0)
    assert requests(sim_club, 2) == 0, "a bundle over the cap was downloaded anyway"
    assert term.bundle_state.version == 1
    print(f"figure: over the cap, nothing fetched: {problem(term)[:100]}")


def test_a_gzip_bomb_is_cut_at_the_cap(
        sim_club: SimClub, mosquitto: MosquittoBroker,
        make_terminal: Callable[..., Terminal]) -> None:  # noqa: F811
    import gzip
    import hashlib
    term = start(sim_club, make_terminal, mosquitto, document_max_bytes=256 * 1024)
    bomb = gzip.compress(b"{" + b" " * (64 * 1024 * 1024), mtime=0)  # 64 MiB in ~64 KiB
    def spoil(doc: dict[str, Any]) -> None:
        doc.update(sha256=hashlib.sha256(bomb).hexdigest(), size=len(bomb))
        sim_club.documents[doc["path"]] = bomb

    envelope = sim_club.signing_key.sign(make_bundle(sim_club.club_id, "M-7", 2))
    sim_club.publish_bundle_manifest("M-7", envelope, 2, spoil=spoil)
    term.wait(lambda: "inflates to over the limit" in problem(term), 20, "the bomb refused")
    assert term.bundle_state.version == 1
    print(f"figure: a {len(bomb):,}-byte gzip bomb (64 MiB inflated) cut at 256 KiB: "
          f"{problem(term)[:80]}")


def test_a_trickling_server_is_abandoned_at_the_deadline(
        sim_club: SimClub, mosquitto: MosquittoBroker,
        make_terminal: Callable[..., Terminal]) -> None:  # noqa: F811
    term = start(sim_club, make_terminal, mosquitto)
    _, manifest = serve_v2(sim_club)
    body = sim_club.documents[manifest["path"]]

    def trickle(req: Request) -> Response:
        sim_club.document_requests.append((req.client_cn, req.path))

        def chunks() -> Iterator[bytes]:
            for i in range(min(len(body), 200)):
                time.sleep(0.1)
                yield body[i:i + 1]
        return Response(200, chunks(), {"Content-Length": str(len(body))})

    with replaced_route(sim_club, trickle):
        started = time.monotonic()
        term.wait(lambda: "deadline" in problem(term), 20, "the deadline")
        abandoned = time.monotonic() - started
        term.wait(lambda: requests(sim_club, 2) >= 2, 20, "a second attempt")
        assert term.bundle_state.version == 1
    term.wait(lambda: term.bundle_state.version == 2, 20, "version 2 once served right")
    print(f"figure: trickling server abandoned after {abandoned:.1f} s (deadline 3 s)")
    assert abandoned < 3.0 + 3.0


def test_a_bundle_signed_by_an_untrusted_key_is_refused(
        sim_club: SimClub, mosquitto: MosquittoBroker, tmp_path: Path,
        make_terminal: Callable[..., Terminal]) -> None:  # noqa: F811
    term = start(sim_club, make_terminal, mosquitto)
    stranger = SigningKey.load_or_create(tmp_path / "stranger", "club-sim-1")  # same key id
    bad = stranger.sign(make_bundle(sim_club.club_id, "M-7", 2))
    good = sim_club.signing_key.sign(make_bundle(sim_club.club_id, "M-7", 2))
    # The manifest is the club's (trusted), the bundle it points to is not.
    manifest = sim_club.publish_bundle_manifest("M-7", bad, 2)
    out = refused_then_fixed(
        sim_club, term,
        lambda: sim_club.publish_bundle_manifest("M-7", good, 2),
        "bad_signature")
    print(f"figure: bundle by an untrusted signer refused ({manifest['size']} bytes): "
          f"{out['problem'][:100]}")


def test_a_manifest_signed_by_an_untrusted_key_is_not_followed(
        sim_club: SimClub, mosquitto: MosquittoBroker, tmp_path: Path,
        make_terminal: Callable[..., Terminal]) -> None:  # noqa: F811
    term = start(sim_club, make_terminal, mosquitto)
    stranger = SigningKey.load_or_create(tmp_path / "stranger", "club-sim-1")
    envelope = sim_club.signing_key.sign(make_bundle(sim_club.club_id, "M-7", 2))
    sim_club.publish_bundle_manifest("M-7", envelope, 2, key=stranger)
    term.wait(lambda: "bad_signature: bundle manifest" in problem(term), 20, "refused")
    time.sleep(0.5)
    assert requests(sim_club, 2) == 0
    assert term.bundle_state.version == 1


@pytest.mark.parametrize("status", [302, 404, 500])
def test_a_redirect_or_an_http_error_is_a_failure(
        status: int, sim_club: SimClub, mosquitto: MosquittoBroker,
        make_terminal: Callable[..., Terminal]) -> None:  # noqa: F811
    term = start(sim_club, make_terminal, mosquitto)
    serve_v2(sim_club)

    def answer(req: Request) -> Response:
        sim_club.document_requests.append((req.client_cn, req.path))
        return Response(status, b"moved\n", {"Location": "https://evil.example/bundle"})

    with replaced_route(sim_club, answer):
        term.wait(lambda: f"HTTP {status}" in problem(term), 20, f"HTTP {status}")
        term.wait(lambda: requests(sim_club, 2) >= 2, 20, "a second attempt")
        assert term.bundle_state.version == 1
    term.wait(lambda: term.bundle_state.version == 2, 20, "version 2 once served right")
    print(f"figure: HTTP {status} is a failure, redirect not followed; old bundle kept")


def test_a_newer_manifest_supersedes_a_hanging_fetch(
        sim_club: SimClub, mosquitto: MosquittoBroker,
        make_terminal: Callable[..., Terminal]) -> None:  # noqa: F811
    term = start(sim_club, make_terminal, mosquitto, document_deadline_s=30.0,
                 document_timeout_s=30.0)
    serve_v2(sim_club)
    own = list(sim_club.http.routes) if sim_club.http else []

    def hang(req: Request) -> Response:
        sim_club.document_requests.append((req.client_cn, req.path))
        if req.path.endswith("/bundles/2"):
            def never() -> Iterator[bytes]:
                for _ in range(300):
                    time.sleep(0.1)
                    yield b""
            return Response(200, never(), {"Content-Length": "100"})
        return own_route(own)(req)

    with replaced_route(sim_club, hang):
        term.wait(lambda: requests(sim_club, 2) >= 1, 20, "the fetch of version 2")
        started = time.monotonic()
        envelope = sim_club.signing_key.sign(make_bundle(sim_club.club_id, "M-7", 3))
        sim_club.publish_bundle_manifest("M-7", envelope, 3)
        term.wait(lambda: term.bundle_state.version == 3, 20, "version 3")
        took = time.monotonic() - started
    print(f"figure: version 3's manifest superseded a hanging fetch of 2: in use after "
          f"{took:.2f} s (the fetch deadline is 30 s)")
    assert took < 10


def own_route(routes: list[Any]) -> Callable[[Request], Response]:
    for route in routes:
        if route.pattern.pattern == DOCUMENT_ROUTE:
            handler: Callable[[Request], Response] = route.handler
            return handler
    raise AssertionError("no document route")


class replaced_route:
    """Answer the club's document route with ``handler`` inside the block."""

    def __init__(self, club: SimClub, handler: Callable[[Request], Response]):
        assert club.http is not None
        self.server = club.http
        self.handler = handler
        self.saved = list(self.server.routes)

    def __enter__(self) -> None:
        self.server.routes[:] = [r for r in self.server.routes
                                 if r.pattern.pattern != DOCUMENT_ROUTE]
        self.server.add_route("GET", DOCUMENT_ROUTE, self.handler)

    def __exit__(self, *exc: object) -> None:
        self.server.routes[:] = self.saved


def test_document_body_is_what_the_manifest_announces() -> None:
    envelope = {"key_id": "k", "payload": "e30=", "sig": "AA=="}
    assert document_body(envelope, gzip_body=False).startswith(b'{"key_id"')
