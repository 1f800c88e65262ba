"""The connector identity: one key and self-signed certificate served by every unit (D2).

Join tokens carry the SHA-256 fingerprint of the connector certificate and every enrolled
MicroCloud pins it, so the certificate must be the same on every unit and must never change
by itself. The leader generates it once and keeps it in a Juju application secret
(app_secret.py); the secret ID and the fingerprint are published in the peer application
databag so that every unit reads the same revision and hears about a rotation. Only the
rotate-connector-certificate action replaces it.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib

import ops
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from app_secret import Content, PublishedSecret
from constants import CONNECTOR_FINGERPRINT_KEY, CONNECTOR_SECRET_KEY, CONNECTOR_SECRET_LABEL

VALIDITY = datetime.timedelta(days=3650)
"""Ten years: MicroCloud checks the dates of the pinned certificate on every call."""


@dataclasses.dataclass(frozen=True)
class ConnectorIdentity:
    """The connector's certificate and private key, both PEM."""

    certificate: str
    private_key: str

    @property
    def fingerprint(self) -> str:
        """Return the lowercase hex SHA-256 of the certificate's DER, as MicroCloud pins it."""
        cert = x509.load_pem_x509_certificate(self.certificate.encode())
        return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()

    @property
    def dns_names(self) -> tuple[str, ...]:
        """Return the DNS subject alternative names of the certificate."""
        cert = x509.load_pem_x509_certificate(self.certificate.encode())
        try:
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        except x509.ExtensionNotFound:
            return ()
        return tuple(san.value.get_values_for_type(x509.DNSName))

    def matches(self, domain: str) -> bool:
        """Return whether the certificate is valid for `domain`."""
        return domain in self.dns_names


def generate_identity(domain: str, now: datetime.datetime | None = None) -> ConnectorIdentity:
    """Generate a P-384 key and a self-signed certificate for `domain`, valid ten years."""
    key = ec.generate_private_key(ec.SECP384R1())
    start = (now or datetime.datetime.now(datetime.UTC)) - datetime.timedelta(minutes=5)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "MicroCloud Cluster Manager"),
            x509.NameAttribute(NameOID.COMMON_NAME, domain),
        ]
    )
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + VALIDITY)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(domain)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(key, hashes.SHA384())
    )
    return ConnectorIdentity(
        certificate=certificate.public_bytes(serialization.Encoding.PEM).decode(),
        private_key=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode(),
    )


class ConnectorIdentityStore:
    """Read (every unit) and create or rotate (leader) the identity in its app secret."""

    def __init__(self, model: ops.Model, peer_relation_name: str):
        """Remember where the identity is published.

        Args:
            model: the charm's model.
            peer_relation_name: the peer endpoint whose app databag holds the secret ID.
        """
        self._secret = PublishedSecret(
            model,
            peer_relation_name,
            CONNECTOR_SECRET_LABEL,
            CONNECTOR_SECRET_KEY,
            ("certificate", "private-key"),
            # Every unit hears of a rotation, and can show what clusters must pin.
            beside=lambda content: {CONNECTOR_FINGERPRINT_KEY: _identity(content).fingerprint},
        )

    def get(self) -> ConnectorIdentity | None:
        """Return the published identity, None until the leader created it."""
        content = self._secret.get()
        return _identity(content) if content else None

    def ensure(self, domain: str) -> ConnectorIdentity | None:
        """Create the identity for `domain` unless it exists (leader only).

        Returns:
            The identity, or None when there is no peer relation to publish it in yet.
        """
        content = self._secret.ensure(lambda: _content(generate_identity(domain)))
        return _identity(content) if content else None

    def rotate(self, domain: str) -> ConnectorIdentity:
        """Replace the identity with a new one for `domain` (leader only).

        Raises:
            RuntimeError: when there is no peer relation to publish the identity in.
        """
        content = self._secret.publish(_content(generate_identity(domain)))
        if content is None:
            raise RuntimeError("the peer relation is not ready yet, try again shortly")
        return _identity(content)


def _content(identity: ConnectorIdentity) -> Content:
    return {"certificate": identity.certificate, "private-key": identity.private_key}


def _identity(content: Content) -> ConnectorIdentity:
    return ConnectorIdentity(content["certificate"], content["private-key"])
