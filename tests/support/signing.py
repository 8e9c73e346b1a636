"""Throwaway signing identities for the message-signing tests: an RSA key and its self-signed certificate."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class Identity:
    """The files of one signer: ``key``, ``certificate``, and a ``store`` directory trusting only it."""

    key: Path
    certificate: Path
    store: Path

    def settings(self) -> dict[str, str]:
        """The ``[custom.celery]`` settings that sign with this identity and trust only it."""
        return {"security_key": str(self.key), "security_certificate": str(self.certificate),
                "security_cert_store": str(self.store)}


def make_identity(directory: Path, name: str) -> Identity:
    """Write a fresh 2048-bit RSA key and a self-signed certificate valid for a day under ``directory/name``."""
    home = directory / name
    (home / "store").mkdir(parents=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name}.test")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1)).sign(key, hashes.SHA256())
    )
    pem = certificate.public_bytes(serialization.Encoding.PEM)
    (home / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    ))
    (home / "cert.pem").write_bytes(pem)
    (home / "store" / f"{name}.pem").write_bytes(pem)
    return Identity(home / "key.pem", home / "cert.pem", home / "store")
