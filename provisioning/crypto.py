"""Device keys, CSRs, certificate checks and the ``pan_key`` envelope.

The ``pan_key`` travels encrypted to the device key (ECIES): the club makes an
ephemeral P-256 key, derives a 256-bit key with HKDF-SHA256 from the ECDH shared
secret, and seals the ``pan_key`` with AES-256-GCM. Only the holder of the device
key can open it; the terminal id is bound in as associated data so an envelope made
for one terminal does not open as another's. The club side of this lives in
``hw_sim.club.enrolment`` and uses :func:`seal_for_device` from here, so both ends
share one definition of the format (``docs/provisioning.md``).
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.x509.oid import NameOID

from agent.errors import ProvisioningError

ENVELOPE_ALG = "ECDH-ES-P256+HKDF-SHA256+A256GCM"
_HKDF_INFO = b"clubterm/v1 pan_key"


def generate_device_key() -> ec.EllipticCurvePrivateKey:
    """A new ECDSA P-256 private key."""
    return ec.generate_private_key(ec.SECP256R1())


def private_key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    """PKCS#8 PEM, unencrypted (the file's 0600 mode is its protection)."""
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def load_private_key(data: bytes) -> ec.EllipticCurvePrivateKey:
    """Load a device key PEM; anything but a P-256 key is an error."""
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise ProvisioningError("the device key file is not a readable PEM private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ProvisioningError("the device key is not an ECDSA P-256 key")
    return key


def make_csr(key: ec.EllipticCurvePrivateKey, terminal_id: str) -> bytes:
    """A PEM certificate signing request with CN = ``terminal_id``."""
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, terminal_id)]))
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM)


def cert_fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the DER certificate as lowercase hex pairs joined by ':'."""
    digest = cert.fingerprint(hashes.SHA256()).hex()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def normalise_fingerprint(text: str) -> str:
    """Accept ``AB:CD:…``, ``abcd…`` or ``sha256:…``; answer as :func:`cert_fingerprint`."""
    raw = text.strip().lower()
    if raw.startswith("sha256:") or raw.startswith("sha256/"):
        raw = raw[7:]
    hexdigits = raw.replace(":", "").replace(" ", "").replace("-", "")
    if len(hexdigits) != 64 or any(c not in "0123456789abcdef" for c in hexdigits):
        raise ProvisioningError(
            "the CA fingerprint must be a SHA-256 fingerprint: 64 hex digits "
            "(colons allowed), as printed on the enrolment sheet"
        )
    return ":".join(hexdigits[i : i + 2] for i in range(0, 64, 2))


def load_cert(pem: bytes | str, what: str) -> x509.Certificate:
    """Parse one PEM certificate, naming ``what`` in the error."""
    data = pem.encode("ascii") if isinstance(pem, str) else pem
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError:
        raise ProvisioningError(f"the club sent a {what} that is not a PEM certificate") from None


def check_ca_cert(ca: x509.Certificate) -> None:
    """The pinned certificate must be a self-signed CA certificate."""
    try:
        bc = ca.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        bc = None
    if bc is None or not bc.ca:
        raise ProvisioningError("the club's CA certificate is not marked as a CA")
    try:
        ca.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        raise ProvisioningError("the club's CA certificate is not self-signed") from None


def check_issued_cert(cert: x509.Certificate, ca: x509.Certificate,
                      key: ec.EllipticCurvePrivateKey, terminal_id: str, now: datetime) -> None:
    """The club's answer must be our key, our terminal id, signed by the pinned CA, valid now."""
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        raise ProvisioningError("the certificate the club sent is not signed by its CA") from None
    ours = key.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    theirs = cert.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    if ours != theirs:
        raise ProvisioningError("the certificate the club sent is for another key")
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(cns) != 1 or cns[0].value != terminal_id:
        raise ProvisioningError(
            f"the certificate the club sent is not for terminal {terminal_id}")
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise ProvisioningError("the certificate the club sent is not valid now; check the clock")


@dataclass(frozen=True)
class SealedKey:
    """The ``pan_key`` envelope as it travels in the enrolment answer."""

    epk: bytes  # the club's ephemeral public key, X9.62 uncompressed point
    nonce: bytes
    ciphertext: bytes  # AES-GCM output including the 16-byte tag

    def to_json(self) -> dict[str, str]:
        """The ``pan_key`` object of the enrolment answer."""
        b64 = base64.b64encode
        return {"alg": ENVELOPE_ALG, "epk": b64(self.epk).decode(),
                "nonce": b64(self.nonce).decode(), "ciphertext": b64(self.ciphertext).decode()}

    @classmethod
    def from_json(cls, obj: object) -> SealedKey:
        """Parse the ``pan_key`` object; a wrong shape is a ProvisioningError."""
        if not isinstance(obj, dict) or obj.get("alg") != ENVELOPE_ALG:
            raise ProvisioningError(
                f"the club sent the pan_key in an unknown form (want {ENVELOPE_ALG})")
        try:
            return cls(epk=base64.b64decode(obj["epk"], validate=True),
                       nonce=base64.b64decode(obj["nonce"], validate=True),
                       ciphertext=base64.b64decode(obj["ciphertext"], validate=True))
        except (KeyError, ValueError, TypeError):
            raise ProvisioningError("the club sent a malformed pan_key envelope") from None


def _point(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.X962,
                            serialization.PublicFormat.UncompressedPoint)


def _derive(shared: bytes, epk: bytes, device_point: bytes) -> bytes:
    # Both public keys go into the KDF so the derived key is bound to this exchange.
    salt = hashlib.sha256(epk + device_point).digest()
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=_HKDF_INFO).derive(shared)


def seal_for_device(device_public: ec.EllipticCurvePublicKey, secret: bytes,
                    terminal_id: str) -> SealedKey:
    """Encrypt ``secret`` so only the holder of the device key can read it (club side)."""
    eph = ec.generate_private_key(ec.SECP256R1())
    epk = _point(eph.public_key())
    key = _derive(eph.exchange(ec.ECDH(), device_public), epk, _point(device_public))
    nonce = os.urandom(12)
    return SealedKey(epk=epk, nonce=nonce,
                     ciphertext=AESGCM(key).encrypt(nonce, secret, terminal_id.encode()))


def open_sealed(device_key: ec.EllipticCurvePrivateKey, sealed: SealedKey,
                terminal_id: str) -> bytes:
    """Decrypt an envelope made by :func:`seal_for_device` (terminal side)."""
    try:
        peer = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), sealed.epk)
        key = _derive(device_key.exchange(ec.ECDH(), peer), sealed.epk,
                      _point(device_key.public_key()))
        return AESGCM(key).decrypt(sealed.nonce, sealed.ciphertext, terminal_id.encode())
    except (ValueError, InvalidTag):
        raise ProvisioningError(
            "the pan_key from the club cannot be decrypted with this device key") from None
