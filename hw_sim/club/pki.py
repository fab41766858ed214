"""The simulated club's certificate authority, for tests, the demo and enrolment.

One CA makes everything the club hands out, with ``cryptography``: the broker and
HTTPS server certificates (server-auth only, with the hosts as subject alternative
names), client certificates for the club back end's own account, and terminal
certificates (CN = terminal id) from CSRs at enrolment and renewal. Keys are EC
P-256: quick to make, so every test session can have its own CA.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from agent.config import TERMINAL_ID
from hw_sim.broker import is_terminal_id
from provisioning.crypto import cert_fingerprint

LOCAL_HOSTS = ("localhost", "127.0.0.1")


@dataclass(frozen=True)
class CertFiles:
    """PEM files of one certificate and its private key (mode 0600)."""

    cert: Path
    key: Path


@dataclass
class ClubCA:
    """The club's CA: signs server, club and terminal certificates."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    cert_file: Path

    @classmethod
    def create(cls, directory: Path, name: str = "clubterm test club CA", *,
               days: int = 3650) -> ClubCA:
        """Make a new CA in ``directory`` (``ca.pem``, ``ca.key``)."""
        directory.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = _now()
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject).issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256())
        )
        cert_file = directory / "ca.pem"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(directory / "ca.key", key)
        return cls(cert=cert, key=key, cert_file=cert_file)

    @classmethod
    def load(cls, directory: Path) -> ClubCA:
        """Load a CA made by :meth:`create`."""
        cert = x509.load_pem_x509_certificate((directory / "ca.pem").read_bytes())
        key = serialization.load_pem_private_key((directory / "ca.key").read_bytes(), None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return cls(cert=cert, key=key, cert_file=directory / "ca.pem")

    @classmethod
    def load_or_create(cls, directory: Path) -> ClubCA:
        """The CA in ``directory``, made on first use."""
        if (directory / "ca.pem").exists():
            return cls.load(directory)
        return cls.create(directory)

    @property
    def cert_pem(self) -> bytes:
        """The CA certificate in PEM."""
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def fingerprint(self) -> str:
        """SHA-256 fingerprint a technician pins (``--ca-fingerprint``)."""
        return cert_fingerprint(self.cert)

    def certificate(self, common_name: str, public_key: CertificatePublicKeyTypes, *,
                    days: float = 825, hosts: Sequence[str] = ()) -> x509.Certificate:
        """A leaf certificate for ``public_key``.

        With ``hosts`` it is a server certificate (server-auth only: a broker's own
        certificate must never log in to the broker as a client named after its
        host); without, a client certificate (client-auth only).
        """
        now = _now()
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self.cert.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                self.key.public_key()), critical=False)
        )
        if hosts:
            names: list[x509.GeneralName] = []
            for host in hosts:
                try:
                    names.append(x509.IPAddress(ipaddress.ip_address(host)))
                except ValueError:
                    names.append(x509.DNSName(host))
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
            usage = [ExtendedKeyUsageOID.SERVER_AUTH]
        else:
            usage = [ExtendedKeyUsageOID.CLIENT_AUTH]
        builder = builder.add_extension(x509.ExtendedKeyUsage(usage), critical=False)
        return builder.sign(self.key, hashes.SHA256())

    def issue(self, directory: Path, common_name: str, *, server: bool = False,
              hosts: Sequence[str] = LOCAL_HOSTS, days: float = 825,
              stem: str | None = None) -> CertFiles:
        """Make a key and a certificate for ``common_name`` and write both.

        A server certificate carries ``hosts``; otherwise it is a client certificate
        (a terminal, the club back end's account).
        """
        directory.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        cert = self.certificate(common_name, key.public_key(), days=days,
                                hosts=hosts if server else ())
        stem = stem or _safe(common_name)
        cert_file = directory / f"{stem}.pem"
        key_file = directory / f"{stem}.key"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(key_file, key)
        return CertFiles(cert=cert_file, key=key_file)

    def sign_terminal(self, terminal_id: str, public_key: CertificatePublicKeyTypes, *,
                      days: float = 825) -> x509.Certificate:
        """A terminal's client certificate (CN = ``terminal_id``).

        Refuses an id that is not a terminal id: the broker takes the CN as user
        name and client id, so a certificate named after the club's account would
        carry the club's rights.
        """
        if not is_terminal_id(terminal_id):
            raise ValueError(f"{terminal_id!r} is not a terminal id ({TERMINAL_ID.pattern})")
        return self.certificate(terminal_id, public_key, days=days)

    def sign_csr(self, csr_pem: bytes, *, days: float = 825) -> bytes:
        """Sign a terminal's CSR (PEM) as a client certificate, CN taken from the CSR."""
        csr = x509.load_pem_x509_csr(csr_pem)
        if not csr.is_signature_valid:
            raise ValueError("CSR signature does not verify")
        cns = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        if len(cns) != 1:
            raise ValueError("the CSR's CN is not a terminal id")
        cert = self.sign_terminal(str(cns[0].value), csr.public_key(), days=days)
        return cert.public_bytes(serialization.Encoding.PEM)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(path, 0o600)
