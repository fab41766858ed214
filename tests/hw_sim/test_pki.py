"""The club CA (hw_sim.club.pki): what each kind of certificate may do, and which
names the CA refuses to certify."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hw_sim.broker import club_account
from hw_sim.club.pki import ClubCA
from provisioning.crypto import cert_fingerprint, check_ca_cert, generate_device_key, make_csr


def usage(cert: x509.Certificate) -> list[x509.ObjectIdentifier]:
    return list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_server_and_client_certificates_have_one_purpose_each(tmp_path: Path) -> None:
    ca = ClubCA.create(tmp_path, "acme club CA")
    check_ca_cert(ca.cert)
    server = ca.issue(tmp_path / "certs", "localhost", server=True,
                      hosts=("localhost", "127.0.0.1"))
    cert = load(server.cert)
    cert.verify_directly_issued_by(ca.cert)
    assert usage(cert) == [ExtendedKeyUsageOID.SERVER_AUTH]
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(n.value) for n in names] == ["localhost", "127.0.0.1"]
    client = load(ca.issue(tmp_path / "certs", club_account("acme"), stem="club").cert)
    assert usage(client) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert not client.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert stat.S_IMODE(server.key.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "ca.key").stat().st_mode) == 0o600


def test_load_or_create_keeps_the_ca(tmp_path: Path) -> None:
    first = ClubCA.load_or_create(tmp_path)
    again = ClubCA.load_or_create(tmp_path)
    assert again.cert == first.cert and again.fingerprint == first.fingerprint
    assert first.fingerprint == cert_fingerprint(first.cert)
    assert first.cert_pem == first.cert_file.read_bytes()


def test_a_terminal_csr_becomes_a_client_certificate(tmp_path: Path) -> None:
    ca = ClubCA.create(tmp_path)
    cert = x509.load_pem_x509_certificate(ca.sign_csr(make_csr(generate_device_key(), "T-0001")))
    cert.verify_directly_issued_by(ca.cert)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "T-0001"
    assert usage(cert) == [ExtendedKeyUsageOID.CLIENT_AUTH]


def _csr(*names: str) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, n) for n in names])
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM)


@pytest.mark.parametrize("names", [(club_account("acme"),), ("club:x",), ("a/b",), ("+",),
                                   ("#",), ("T 1",), ("x" * 129,), ("T-1", "T-2"), ()])
def test_names_that_are_not_one_terminal_id_are_refused(tmp_path: Path,
                                                        names: tuple[str, ...]) -> None:
    ca = ClubCA.create(tmp_path)
    if all(len(n) <= 64 for n in names):  # a longer CN cannot even be put in a CSR
        with pytest.raises(ValueError, match="not a terminal id"):
            ca.sign_csr(_csr(*names))
    if len(names) == 1:
        with pytest.raises(ValueError, match="not a terminal id"):
            ca.sign_terminal(names[0], generate_device_key().public_key())


def test_a_csr_with_a_forged_signature_is_refused(tmp_path: Path) -> None:
    ca = ClubCA.create(tmp_path)
    good = x509.load_pem_x509_csr(make_csr(generate_device_key(), "T-0001"))
    der = bytearray(good.public_bytes(serialization.Encoding.DER))
    der[-3] ^= 0x01  # inside the signature
    forged = x509.load_der_x509_csr(bytes(der)).public_bytes(serialization.Encoding.PEM)
    with pytest.raises(ValueError, match="signature"):
        ca.sign_csr(forged)
