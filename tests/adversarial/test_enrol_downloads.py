"""Enrolment's downloads have a deadline and a size cap (issue #13, item 7).

A real club HTTPS server (the shared ``hostile_club`` fixture) plays a hostile or
broken club at each download of ``clubterm provision enrol``: the first,
unauthenticated one (the CA certificate) and a later one (the code lookup,
verified against the pinned CA). It trickles a byte at a time, sends an endless
body, or accepts the connection and says nothing. Enrolment must fail within its
``--timeout`` with a message a technician can act on, with memory flat and nothing
written.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from agent.errors import ProvisioningError
from hw_sim.club.https import Request, Response
from hw_sim.club.pki import ClubCA
from provisioning.client import ClubUnreachable
from provisioning.detect import Hardware
from provisioning.enrol import enrol
from tests.fixtures.club import ClubPki
from tests.fixtures.hostile import Body, HostileClub, PeakRss, endless, trickle

TIMEOUT_S = 2.0


def serve(make: Callable[..., HostileClub], ca: ClubCA, step: str, body: Body) -> HostileClub:
    """The club CA at /v1/ca and an empty lookup, with ``step``'s answer hostile."""
    club = make()

    def good_ca(req: Request) -> Response:
        return Response(200, ca.cert_pem)

    club.server.add_route("GET", "/v1/ca", good_ca, client_cert=False)
    if step == "ca":
        club.serve("GET", "/v1/ca", body, client_cert=False)
    else:
        club.serve("POST", "/v1/enrolment/lookup", body,
                   headers={"Content-Type": "application/json"}, client_cert=False)
    return club


def run(url: str, ca: ClubCA, tmp_path: Path) -> tuple[ProvisioningError, float, int]:
    box = tmp_path / "box"
    rss = PeakRss()
    started = time.monotonic()
    try:
        with pytest.raises(ProvisioningError) as err:
            enrol(central_url=url, code="ABCD-EFGH", ca_fingerprint=ca.fingerprint,
                  config_out=box / "etc/agent.toml", state_dir=box / "var", profile="sim",
                  hardware=Hardware(), timeout=TIMEOUT_S)
    finally:
        elapsed = time.monotonic() - started
        grew = rss.stop()
    assert not box.exists(), "enrolment wrote something"
    return err.value, elapsed, grew


@pytest.mark.parametrize("step", ["ca", "lookup"])
def test_a_trickling_club_fails_the_enrolment_within_its_timeout(
        club_pki: ClubPki, hostile_club: Callable[..., HostileClub], tmp_path: Path,
        step: str) -> None:
    ca = club_pki.ca
    club = serve(hostile_club, ca, step,
                 trickle(ca.cert_pem if step == "ca" else b'{"terminal_id": "T-1", '))
    error, elapsed, grew = run(club.url, ca, tmp_path)
    print(f"figure: enrolment, {step} trickled: failed after {elapsed:.2f} s "
          f"(--timeout {TIMEOUT_S:g}); RSS +{grew / 2**20:.1f} MiB")
    assert isinstance(error, ClubUnreachable)
    assert f"did not answer in full within {TIMEOUT_S:g} s" in str(error)
    assert "--timeout" in str(error) and "Nothing was changed" in str(error)
    assert elapsed < TIMEOUT_S + 1.5


@pytest.mark.parametrize("step", ["ca", "lookup"])
def test_an_endless_answer_is_cut_at_its_size_cap(
        club_pki: ClubPki, hostile_club: Callable[..., HostileClub], tmp_path: Path,
        step: str) -> None:
    ca = club_pki.ca
    club = serve(hostile_club, ca, step,
                 endless(ca.cert_pem if step == "ca" else b'{"terminal_id": "'))
    error, elapsed, grew = run(club.url, ca, tmp_path)
    print(f"figure: enrolment, endless {step} answer: failed after {elapsed:.2f} s; "
          f"RSS +{grew / 2**20:.1f} MiB")
    assert isinstance(error, ClubUnreachable)
    assert "larger than this step ever needs" in str(error)
    assert "Nothing was changed" in str(error)
    assert elapsed < TIMEOUT_S + 1.5
    assert grew < 32 * 2**20


def test_a_server_that_accepts_and_never_speaks_fails_within_the_timeout(
        club_pki: ClubPki, silent_server: str, tmp_path: Path) -> None:
    error, elapsed, _ = run(silent_server, club_pki.ca, tmp_path)
    print(f"figure: enrolment, silent server: failed after {elapsed:.2f} s")
    assert isinstance(error, ClubUnreachable)
    assert elapsed < TIMEOUT_S + 1.5
