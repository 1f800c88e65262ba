"""Certificates for the MicroCloud emulator: cluster certificates and a small CA.

MicroCloud's cluster certificate is a self-signed EC P-384 certificate; :func:`self_signed`
makes one like it. :func:`make_ca` and :func:`issue` build a CA-signed chain such as the
management API certificate that the ``certificates`` relation would provide.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_PEM_END = "-----END CERTIFICATE-----"


@dataclass(frozen=True)
class CertKey:
    """A PEM certificate (leaf first, then any chain) and its PEM private key."""

    cert_pem: str
    key_pem: str

    @property
    def leaf_pem(self) -> str:
        """The first certificate of :attr:`cert_pem`."""
        head, sep, _ = self.cert_pem.partition(_PEM_END)
        if not sep:
            raise ValueError("cert_pem holds no PEM certificate")
        return head.lstrip() + _PEM_END + "\n"

    @property
    def certificate(self) -> x509.Certificate:
        """The parsed leaf certificate."""
        return x509.load_pem_x509_certificate(self.leaf_pem.encode())

    @property
    def der(self) -> bytes:
        """DER bytes of the leaf certificate."""
        return self.certificate.public_bytes(serialization.Encoding.DER)

    @property
    def fingerprint(self) -> str:
        """Lowercase hex SHA-256 of the leaf certificate's DER."""
        return hashlib.sha256(self.der).hexdigest()

    def write(self, directory: str | os.PathLike[str], stem: str) -> tuple[Path, Path]:
        """Write ``<stem>.crt`` and ``<stem>.key`` (mode 0600) into ``directory``.

        Args:
            directory: target directory, created if missing.
            stem: file name without extension.

        Returns:
            The certificate path and the key path.
        """
        base = Path(directory)
        base.mkdir(parents=True, exist_ok=True)
        cert_path = base / f"{stem}.crt"
        key_path = base / f"{stem}.key"
        cert_path.write_text(self.cert_pem)
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as key_file:
            key_file.write(self.key_pem)
        key_path.chmod(0o600)
        return cert_path, key_path

    @classmethod
    def read(cls, directory: str | os.PathLike[str], stem: str) -> CertKey:
        """Read a pair written by :meth:`write`.

        Args:
            directory: directory holding the files.
            stem: file name without extension.

        Returns:
            The certificate and key.
        """
        base = Path(directory)
        return cls((base / f"{stem}.crt").read_text(), (base / f"{stem}.key").read_text())


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _validity(
    days: int, not_before: datetime.datetime | None, not_after: datetime.datetime | None
) -> tuple[datetime.datetime, datetime.datetime]:
    start = not_before if not_before is not None else _now() - datetime.timedelta(minutes=5)
    end = not_after if not_after is not None else start + datetime.timedelta(days=days)
    if end <= start:
        raise ValueError("not_after must be later than not_before")
    return start, end


def _san(dns_names: Iterable[str], ip_addresses: Iterable[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = [x509.DNSName(name) for name in dns_names]
    names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
    return x509.SubjectAlternativeName(names)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _cert_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _leaf_builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    validity: tuple[datetime.datetime, datetime.datetime],
    san: x509.SubjectAlternativeName,
) -> x509.CertificateBuilder:
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(validity[0])
        .not_valid_after(validity[1])
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
    )
    if len(san) > 0:
        builder = builder.add_extension(san, critical=False)
    return builder


def self_signed(
    common_name: str,
    dns_names: Iterable[str] = (),
    ip_addresses: Iterable[str] = (),
    days: int = 3650,
    not_before: datetime.datetime | None = None,
    not_after: datetime.datetime | None = None,
) -> CertKey:
    """Make a self-signed EC P-384 certificate, like MicroCloud's cluster certificate.

    Args:
        common_name: subject CN.
        dns_names: DNS subject alternative names.
        ip_addresses: IP subject alternative names.
        days: validity when ``not_after`` is not given.
        not_before: start of validity (default five minutes ago).
        not_after: end of validity; in the past gives an expired certificate.

    Returns:
        The certificate and its key.
    """
    key = ec.generate_private_key(ec.SECP384R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "MicroCloud emulator"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    validity = _validity(days, not_before, not_after)
    builder = _leaf_builder(name, name, key.public_key(), validity, _san(dns_names, ip_addresses))
    cert = builder.sign(key, hashes.SHA384())
    return CertKey(_cert_pem(cert), _key_pem(key))


def make_ca(name: str, days: int = 3650) -> CertKey:
    """Make a self-signed EC P-384 CA certificate.

    Args:
        name: subject CN of the CA.
        days: validity in days.

    Returns:
        The CA certificate and key.
    """
    key = ec.generate_private_key(ec.SECP384R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    start, end = _validity(days, None, None)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA384())
    )
    return CertKey(_cert_pem(cert), _key_pem(key))


def issue(
    ca: CertKey,
    common_name: str,
    dns_names: Iterable[str] = (),
    ip_addresses: Iterable[str] = (),
    days: int = 365,
) -> CertKey:
    """Issue a server/client certificate signed by ``ca``.

    Args:
        ca: the issuing CA (from :func:`make_ca`).
        common_name: subject CN.
        dns_names: DNS subject alternative names.
        ip_addresses: IP subject alternative names.
        days: validity in days.

    Returns:
        A pair whose ``cert_pem`` is the chain: the leaf, then the CA certificate.
    """
    ca_key = serialization.load_pem_private_key(ca.key_pem.encode(), password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise TypeError("the CA key must be an EC key")
    ca_cert = ca.certificate
    key = ec.generate_private_key(ec.SECP384R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    validity = _validity(days, None, None)
    builder = _leaf_builder(
        subject, ca_cert.subject, key.public_key(), validity, _san(dns_names, ip_addresses)
    ).add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
    )
    cert = builder.sign(ca_key, hashes.SHA384())
    return CertKey(_cert_pem(cert) + ca.leaf_pem, _key_pem(key))
