"""Enrolment's downloads have a deadline and a size cap (issue #13, item 7).

A real local HTTPS server (hw_sim.club.https) plays a hostile or broken club at
each download of ``clubterm provision enrol``: the first, unauthenticated one (the
CA certificate) and a later one (the code lookup, verified against the pinned CA).
It trickles a byte at a time, sends an endless body, or accepts the connection and
says nothing. Enrolment must fail within its ``--timeout`` with a message a
technician can act on, with memory flat and nothing written.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.errors import ProvisioningError
from hw_sim.club.enrolment import ClubCA
from hw_sim.club.https import ClubHttpServer, Request, Response
from provisioning.client import ClubUnreachable
from provisioning.detect import Hardware
from provisioning.enrol import enrol

TIMEOUT_S = 2.0
SERVE_FOR_S = 30.0  # a hostile answer never outlives the test
MAX_SENT = 512 * 1024 * 1024  # nor grows without bound if the client does not stop


def rss_bytes() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def trickle(first: bytes) -> Iterator[bytes]:
    until = time.monotonic() + SERVE_FOR_S
    data = first * 1000
    for i in range(len(data)):
        if time.monotonic() > until:
            return
        yield data[i:i + 1]
        time.sleep(0.05)


def endless(first: bytes) -> Iterator[bytes]:
    piece = b"A" * 65536
    yield first
    for _ in range(MAX_SENT // len(piece)):
        yield piece


@pytest.fixture(scope="module")
def club_ca() -> ClubCA:
    return ClubCA.create("hostile-test-club")


def serve(club_ca: ClubCA, tmp_path: Path, *, ca_body: Iterator[bytes] | None = None,
          lookup_body: Iterator[bytes] | None = None) -> ClubHttpServer:
    cert_pem, key_pem = club_ca.issue_server(["127.0.0.1", "localhost"])
    files = [tmp_path / "ca.crt", tmp_path / "server.crt", tmp_path / "server.key"]
    for path, data in zip(files, [club_ca.cert_pem, cert_pem, key_pem], strict=True):
        path.write_bytes(data)
    server = ClubHttpServer(tls=(files[0], files[1], files[2]))

    def ca(req: Request) -> Response:
        if ca_body is None:
            return Response(200, club_ca.cert_pem)
        return Response(200, ca_body)

    def lookup(req: Request) -> Response:
        assert lookup_body is not None
        return Response(200, lookup_body, {"Content-Type": "application/json"})

    server.add_route("GET", "/v1/ca", ca, client_cert=False)
    server.add_route("POST", "/v1/enrolment/lookup", lookup, client_cert=False)
    server.start()
    return server


def run(url: str, club_ca: ClubCA, tmp_path: Path) -> tuple[ProvisioningError, float, int]:
    box = tmp_path / "box"
    before = rss_bytes()
    peak = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            peak[0] = max(peak[0], rss_bytes())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.monotonic()
    try:
        with pytest.raises(ProvisioningError) as err:
            enrol(central_url=url, code="ABCD-EFGH", ca_fingerprint=club_ca.fingerprint,
                  config_out=box / "etc/agent.toml", state_dir=box / "var", profile="sim",
                  hardware=Hardware(), timeout=TIMEOUT_S)
    finally:
        elapsed = time.monotonic() - started
        done.set()
        sampler.join(1)
    assert not box.exists(), "enrolment wrote something"
    return err.value, elapsed, peak[0] - before


@pytest.mark.parametrize("step", ["ca", "lookup"])
def test_a_trickling_club_fails_the_enrolment_within_its_timeout(
        club_ca: ClubCA, tmp_path: Path, step: str) -> None:
    body = trickle(club_ca.cert_pem if step == "ca" else b'{"terminal_id": "T-1", ')
    server = serve(club_ca, tmp_path, **{f"{step}_body": body})
    try:
        error, elapsed, grew = run(server.url, club_ca, tmp_path)
    finally:
        server.stop()
    print(f"figure: enrolment, {step} trickled: failed after {elapsed:.2f} s "
          f"(--timeout {TIMEOUT_S:g}); RSS +{grew / 2**20:.1f} MiB")
    assert isinstance(error, ClubUnreachable)
    assert f"did not answer in full within {TIMEOUT_S:g} s" in str(error)
    assert "--timeout" in str(error) and "Nothing was changed" in str(error)
    assert elapsed < TIMEOUT_S + 1.5


@pytest.mark.parametrize("step", ["ca", "lookup"])
def test_an_endless_answer_is_cut_at_its_size_cap(
        club_ca: ClubCA, tmp_path: Path, step: str) -> None:
    body = endless(club_ca.cert_pem if step == "ca" else b'{"terminal_id": "')
    server = serve(club_ca, tmp_path, **{f"{step}_body": body})
    try:
        error, elapsed, grew = run(server.url, club_ca, tmp_path)
    finally:
        server.stop()
    print(f"figure: enrolment, endless {step} answer: failed after {elapsed:.2f} s; "
          f"RSS +{grew / 2**20:.1f} MiB")
    assert isinstance(error, ClubUnreachable)
    assert "larger than this step ever needs" in str(error)
    assert "Nothing was changed" in str(error)
    assert elapsed < TIMEOUT_S + 1.5
    assert grew < 32 * 2**20


def test_a_server_that_accepts_and_never_speaks_fails_within_the_timeout(
        club_ca: ClubCA, tmp_path: Path) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    held: list[socket.socket] = []

    def accept() -> None:
        try:
            while True:
                conn, _ = listener.accept()
                held.append(conn)  # no TLS handshake, no answer
        except OSError:
            return

    threading.Thread(target=accept, daemon=True).start()
    try:
        error, elapsed, _ = run(f"https://127.0.0.1:{listener.getsockname()[1]}", club_ca,
                                tmp_path)
    finally:
        listener.close()
        for conn in held:
            conn.close()
    print(f"figure: enrolment, silent server: failed after {elapsed:.2f} s")
    assert isinstance(error, ClubUnreachable)
    assert elapsed < TIMEOUT_S + 1.5
