"""The pan_key envelope, fingerprints and CSRs (pure, no network)."""

from __future__ import annotations

import dataclasses

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from hypothesis import given
from hypothesis import strategies as st

from agent.errors import ProvisioningError
from provisioning.crypto import (
    SealedKey,
    cert_fingerprint,
    check_ca_cert,
    generate_device_key,
    make_csr,
    normalise_fingerprint,
    open_sealed,
    seal_for_device,
)
from tests.fixtures.club import ClubPki

DEVICE = generate_device_key()


@given(secret=st.binary(min_size=0, max_size=64), terminal=st.text(min_size=1, max_size=20))
def test_envelope_round_trip(secret: bytes, terminal: str) -> None:
    sealed = SealedKey.from_json(seal_for_device(DEVICE.public_key(), secret, terminal).to_json())
    assert open_sealed(DEVICE, sealed, terminal) == secret


def test_envelope_opens_only_for_its_device_and_terminal() -> None:
    sealed = seal_for_device(DEVICE.public_key(), b"k" * 32, "T-0001")
    with pytest.raises(ProvisioningError, match="cannot be decrypted"):
        open_sealed(generate_device_key(), sealed, "T-0001")
    with pytest.raises(ProvisioningError, match="cannot be decrypted"):
        open_sealed(DEVICE, sealed, "T-0002")
    flipped = bytes([sealed.ciphertext[0] ^ 1]) + sealed.ciphertext[1:]
    with pytest.raises(ProvisioningError, match="cannot be decrypted"):
        open_sealed(DEVICE, dataclasses.replace(sealed, ciphertext=flipped), "T-0001")
    # Every envelope is fresh: same secret, different ciphertext.
    again = seal_for_device(DEVICE.public_key(), b"k" * 32, "T-0001")
    assert again.ciphertext != sealed.ciphertext and again.epk != sealed.epk


@pytest.mark.parametrize("bad", [None, {}, {"alg": "RSA"},
                                 {"alg": "ECDH-ES-P256+HKDF-SHA256+A256GCM", "epk": "!!"}])
def test_malformed_envelope(bad: object) -> None:
    with pytest.raises(ProvisioningError):
        SealedKey.from_json(bad)


def test_fingerprint_forms(club_pki: ClubPki) -> None:
    fp = cert_fingerprint(club_pki.ca.cert)
    assert fp == club_pki.ca.fingerprint
    plain = fp.replace(":", "")
    for form in (fp, fp.upper(), plain, f"sha256:{plain}", f"SHA256/{plain.upper()}"):
        assert normalise_fingerprint(form) == fp
    for bad in ("", "xyz", plain[:-2], plain + "00"):
        with pytest.raises(ProvisioningError):
            normalise_fingerprint(bad)


def test_csr_carries_the_terminal_id_and_the_ca_is_a_ca(club_pki: ClubPki) -> None:
    csr = x509.load_pem_x509_csr(make_csr(DEVICE, "T-0042"))
    assert csr.is_signature_valid
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "T-0042"
    check_ca_cert(club_pki.ca.cert)
    leaf = x509.load_pem_x509_certificate(club_pki.server.cert.read_bytes())
    with pytest.raises(ProvisioningError, match="not marked as a CA"):
        check_ca_cert(leaf)
