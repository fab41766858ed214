"""End to end with the simulated club of hw_sim (broker with per-terminal ACL,
HTTPS snapshot, signed bundles): the enrolment endpoint is mounted on the club's
own HTTPS server, the box enrols, and the self-test passes against it."""

from __future__ import annotations

import os

import pytest

from agent.config import load_config
from hw_sim.club.enrolment import EnrolmentService
from hw_sim.club.sim import SimClub
from provisioning.enrol import enrol
from provisioning.selftest import run_selftest
from tests.fixtures.club import ClubPki

from .conftest import Box
from .test_selftest import MEMBERS, SIM_HW


@pytest.mark.needs_mosquitto
def test_enrol_then_selftest_against_the_simulated_club(sim_club: SimClub, club_pki: ClubPki,
                                                        box: Box) -> None:
    club, pki = sim_club, club_pki
    pan_key = os.urandom(32)
    service = EnrolmentService(
        pki.ca, club_id=club.club_id, pan_key=pan_key,
        rules_keys={club.signing_key.key_id: club.signing_key.key.public_key()},
        broker_url=club.broker_url, central_url=club.central_url)
    assert club.http is not None
    service.mount(club.http)

    enrol(central_url=club.central_url, code=service.create_code("T-0001", "M-7"),
          ca_fingerprint=pki.ca.fingerprint, config_out=box.config,
          state_dir=box.state_dir, profile="sim", hardware=SIM_HW, timeout=5)
    cfg = load_config(box.config)
    assert cfg.read_pan_key() == pan_key and cfg.club_id == club.club_id

    club.upsert_members(MEMBERS)
    club.publish_bundle("M-7", 3)
    lines: list[str] = []
    checks = run_selftest(box.config, hardware=SIM_HW, timeout=5, progress=lines.append)
    assert all(c.ok for c in checks), "\n".join(lines)
    club.wait_status("T-0001", lambda s: s.get("state") == "selftest"
                     and s.get("selftest", {}).get("ok") is True)
