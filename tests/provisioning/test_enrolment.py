"""Enrolment end to end against the club's real HTTPS enrolment server."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from agent.config import load_config
from agent.errors import ProvisioningError
from hw_sim.club.https import ClubHttpServer
from hw_sim.club.pki import ClubCA
from provisioning import atomic
from provisioning.client import CaPinMismatch, ClubUnreachable, EnrolmentCodeError
from provisioning.detect import Hardware
from provisioning.enrol import enrol
from provisioning.state import PENDING_KEY, Owner
from tests.fixtures.services import free_port

from .conftest import CLUB, Box, Club, add_events

NO_READERS = Hardware()


def run_enrol(club: Club, box: Box, code: str, **kw: object):
    args = dict(central_url=club.url, code=code, ca_fingerprint=club.ca.fingerprint,
                config_out=box.config, state_dir=box.state_dir, profile="sim",
                hardware=NO_READERS, timeout=5)
    args.update(kw)
    return enrol(**args)  # type: ignore[arg-type]


def test_enrol_writes_a_working_configuration(club: Club, box: Box, pan_key: bytes) -> None:
    code = club.service.create_code("T-0001", "M-7")
    result = run_enrol(club, box, code)

    cfg = load_config(box.config)  # checks secrets are 0600 as well
    assert (cfg.terminal_id, cfg.merchant_id, cfg.club_id) == ("T-0001", "M-7", CLUB)
    assert cfg.profile.name == "sim"
    assert cfg.broker_url == "mqtts://127.0.0.1:8883"
    assert cfg.central_url == club.url
    assert cfg.read_pan_key() == pan_key
    assert cfg.state_dir == box.state_dir
    cert = x509.load_pem_x509_certificate(cfg.cert_file.read_bytes())
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "T-0001"
    cert.verify_directly_issued_by(club.ca.cert)
    assert cfg.ca_file.read_bytes() == club.ca.cert_pem
    assert sorted(p.name for p in cfg.rules_keys_dir.iterdir()) == ["club-2026-1.pub"]
    assert result.generation == cfg.cert_file.parent
    assert not (box.state_dir / PENDING_KEY).exists()
    assert result.cert_not_after > datetime.now(UTC) + timedelta(days=300)


def test_file_modes_and_owners(club: Club, box: Box) -> None:
    owner = Owner()
    want_uid = os.geteuid()
    if os.geteuid() == 0:
        owner = Owner(65534, 65534)  # the agent's own user, not root
        want_uid = 65534
    run_enrol(club, box, club.service.create_code("T-0001", "M-7"), owner=owner)
    cfg = load_config(box.config, check_secrets=False)
    secrets = [cfg.key_file, cfg.pan_key_file]
    public = [cfg.cert_file, cfg.ca_file, *cfg.rules_keys_dir.iterdir()]
    for path in secrets:
        st = path.stat()
        assert stat.S_IMODE(st.st_mode) == 0o600, path
        assert st.st_uid == want_uid, path
    for path in public:
        st = path.stat()
        assert stat.S_IMODE(st.st_mode) == 0o644, path
        assert st.st_uid == want_uid, path
    for folder in (box.state_dir, cfg.cert_file.parent):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o750
        assert folder.stat().st_uid == want_uid
    # The configuration names files but holds no secret; root keeps it, others read it.
    assert stat.S_IMODE(box.config.stat().st_mode) == 0o644
    # No temp file left behind anywhere.
    assert not [p for p in box.root.rglob(".*tmp*")]


def test_a_code_works_once(club: Club, box: Box, tmp_path: Path) -> None:
    code = club.service.create_code("T-0001", "M-7")
    run_enrol(club, box, code)
    other = Box(tmp_path / "other-box")
    other.root.mkdir()
    with pytest.raises(EnrolmentCodeError) as err:
        run_enrol(club, other, code)
    assert err.value.reason == "code_used"
    assert "already used" in str(err.value) and "Nothing was changed" in str(err.value)
    assert other.snapshot() == {}

    # Re-using it on the enrolled box does not disturb the working state either.
    before = box.snapshot()
    with pytest.raises(EnrolmentCodeError):
        run_enrol(club, box, code)
    assert box.snapshot() == before


def test_unknown_and_expired_codes(club: Club, box: Box) -> None:
    with pytest.raises(EnrolmentCodeError) as err:
        run_enrol(club, box, "AAAA-BBBB-CCCC")
    assert err.value.reason == "code_unknown"
    expired = club.service.create_code("T-0002", "M-7", ttl_s=-1)
    with pytest.raises(EnrolmentCodeError) as err:
        run_enrol(club, box, expired)
    assert err.value.reason == "code_expired"
    assert "expired" in str(err.value)
    assert box.snapshot() == {}
    # Codes are read aloud: case and dashes do not matter.
    code = club.service.create_code("T-0003", "M-7")
    run_enrol(club, box, code.lower().replace("-", " "))
    assert load_config(box.config).terminal_id == "T-0003"


def test_wrong_ca_fingerprint(club: Club, box: Box, tmp_path: Path) -> None:
    code = club.service.create_code("T-0001", "M-7")
    wrong = ClubCA.create(tmp_path / "impostor", "impostor").fingerprint
    with pytest.raises(CaPinMismatch) as err:
        run_enrol(club, box, code, ca_fingerprint=wrong)
    assert wrong in str(err.value) and club.ca.fingerprint in str(err.value)
    assert box.snapshot() == {}
    # Nothing secret went to that server: the code is still unused.
    assert club.service.requests == []
    with pytest.raises(ProvisioningError, match="64 hex digits"):
        run_enrol(club, box, code, ca_fingerprint="12:34")


def test_server_certificate_not_from_the_pinned_ca(
        club: Club, box: Box, tmp_path: Path,
        club_https: Callable[..., ClubHttpServer]) -> None:
    """A man in the middle can copy the CA certificate, not its key."""
    mitm_ca = ClubCA.create(tmp_path / "mitm", "mitm")
    own = mitm_ca.issue(tmp_path / "mitm", "localhost", server=True)
    mitm = club_https(tls=(club.ca.cert_file, own.cert, own.key))
    club.service.mount(mitm)  # it serves the real CA certificate at /v1/ca
    code = club.service.create_code("T-0001", "M-7")
    with pytest.raises(ProvisioningError, match="not trusted"):
        run_enrol(club, box, code, central_url=mitm.url)
    assert club.service.requests == []  # the code never reached it
    assert box.snapshot() == {}


def test_club_unreachable(club: Club, box: Box) -> None:
    code = club.service.create_code("T-0001", "M-7")
    with pytest.raises(ClubUnreachable) as err:
        run_enrol(club, box, code, central_url=f"https://127.0.0.1:{free_port()}")
    assert "cannot reach the club" in str(err.value)
    assert "Nothing was changed" in str(err.value)
    assert not box.state_dir.exists() and not box.config.exists()


def _crash_at_config_rename(club: Club, box: Box, code: str) -> int:
    """Run an enrolment in a child that dies exactly between write and rename."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child never returns
        real = atomic._replace

        def crash(src: Path, dst: Path) -> None:
            if dst == box.config:
                os._exit(42)  # power cut: no cleanup, no finally
            real(src, dst)

        atomic._replace = crash
        try:
            run_enrol(club, box, code)
        finally:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_interrupted_enrolment_leaves_the_old_state(club: Club, box: Box, pan_key: bytes) -> None:
    run_enrol(club, box, club.service.create_code("T-0001", "M-7"))
    old_config = box.config.read_bytes()
    old_cfg = load_config(box.config)
    old_files = {p: p.read_bytes() for p in old_cfg.cert_file.parent.rglob("*") if p.is_file()}

    code = club.service.create_code("T-0009", "M-8")
    assert _crash_at_config_rename(club, box, code) == 42

    assert box.config.read_bytes() == old_config
    cfg = load_config(box.config)
    assert cfg.terminal_id == "T-0001"
    assert cfg.read_pan_key() == pan_key
    assert {p: p.read_bytes() for p in old_files} == old_files

    # The club used the code up before the crash; the retry presents the same pending
    # key, so the club answers it again and the enrolment completes.
    assert (box.state_dir / PENDING_KEY).exists()
    run_enrol(club, box, code)
    cfg = load_config(box.config)
    assert (cfg.terminal_id, cfg.merchant_id) == ("T-0009", "M-8")
    # The crashed attempt's orphan generation is gone; the previous one is kept.
    generations = sorted(p.name for p in (box.state_dir / "identity").iterdir())
    assert len(generations) == 2
    assert old_cfg.cert_file.parent.name in generations


def test_crash_while_writing_a_generation_file(club: Club, box: Box,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    run_enrol(club, box, club.service.create_code("T-0001", "M-7"))
    before = box.config.read_bytes()

    def failing(src: Path, dst: Path) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic, "_replace", failing)
    with pytest.raises(ProvisioningError, match="No space left"):
        run_enrol(club, box, club.service.create_code("T-0002", "M-7"))
    monkeypatch.undo()
    assert box.config.read_bytes() == before
    assert load_config(box.config).terminal_id == "T-0001"


def test_enrolling_as_another_terminal_keeps_unsent_events(club: Club, box: Box) -> None:
    run_enrol(club, box, club.service.create_code("T-0001", "M-7"))
    add_events(load_config(box.config), ["pending"])
    before = box.snapshot()
    with pytest.raises(ProvisioningError, match="still terminal T-0001 with 1 event"):
        run_enrol(club, box, club.service.create_code("T-0002", "M-7"))
    assert box.snapshot() == before
    # The same terminal again (say its key was lost) is fine: the events stay its own.
    run_enrol(club, box, club.service.create_code("T-0001", "M-7"))
    assert load_config(box.config).terminal_id == "T-0001"


def test_a_pending_key_that_is_already_in_use_is_not_reused(club: Club, box: Box) -> None:
    """A crash after the commit but before the pending key was removed."""
    import shutil

    run_enrol(club, box, club.service.create_code("T-0001", "M-7"))
    first = load_config(box.config)
    shutil.copy(first.key_file, box.state_dir / PENDING_KEY)
    run_enrol(club, box, club.service.create_code("T-0002", "M-7"))
    second = load_config(box.config)
    assert second.key_file.read_bytes() != first.key_file.read_bytes()


def test_the_member_scope_comes_from_the_club_and_a_v1_club_leaves_it_club_wide(
        club: Club, box: Box) -> None:
    """Issue #20 item 4: the club names the terminal's member scope at enrolment; a
    re-enrolment by a club that names none (v1) puts the terminal back on the
    club-wide stream; a scope that could widen an MQTT subscription is refused."""
    run_enrol(club, box, club.service.create_code("T-0001", "M-7", member_scope="merchant"))
    assert load_config(box.config).member_scope == "merchant:M-7"
    run_enrol(club, box, club.service.create_code("T-0001", "M-7", member_scope="group:north"))
    assert load_config(box.config).member_scope == "group:north"
    run_enrol(club, box, club.service.create_code("T-0001", "M-7"))
    assert load_config(box.config).member_scope == "club"
    before = box.config.read_bytes()
    with pytest.raises(ProvisioningError) as err:
        run_enrol(club, box, club.service.create_code("T-0001", "M-7", member_scope="group:#"))
    assert "member scope" in str(err.value)
    assert box.config.read_bytes() == before  # nothing changed
