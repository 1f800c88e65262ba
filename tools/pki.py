"""Certificates for the MicroCloud emulator and the test stacks.

:func:`cluster_certificate` makes a MicroCloud cluster certificate exactly as LXD's code does;
every emulated cluster must use it, because the manager has to accept that real shape (a
serverAuth-only certificate presented as a TLS *client* certificate). :func:`self_signed`,
:func:`make_ca` and :func:`issue` make server certificates (connector, management API) and a
CA-signed chain such as the ``certificates`` relation would provide.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import os
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

_PEM_END = "-----END CERTIFICATE-----"

SERVER_AUTH_ONLY: tuple[ObjectIdentifier, ...] = (ExtendedKeyUsageOID.SERVER_AUTH,)
"""The only extended key usage LXD gives a server (and so a cluster) certificate."""

CLUSTER_VALIDITY = datetime.timedelta(days=10 * 365)
"""LXD's validity for a generated certificate: ten 365-day years."""

KeyType = Literal["ec", "rsa"]


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


def _key_pem(
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey,
    key_format: serialization.PrivateFormat = serialization.PrivateFormat.PKCS8,
) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, key_format, serialization.NoEncryption()
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
        .add_extension(x509.ExtendedKeyUsage(SERVER_AUTH_ONLY), critical=False)
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
    """Make a self-signed EC P-384 server certificate (serverAuth only), e.g. the connector's.

    Not for emulated clusters: use :func:`cluster_certificate`, which has LXD's exact shape.

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


def cluster_certificate(
    hostname: str,
    *,
    username: str = "root",
    key_type: KeyType = "ec",
    organization: str = "LXD",
    dns_names: Sequence[str] | None = None,
    ip_addresses: Sequence[str] | None = None,
    not_before: datetime.datetime | None = None,
    not_after: datetime.datetime | None = None,
    extended_key_usage: Sequence[ObjectIdentifier] | None = SERVER_AUTH_ONLY,
) -> CertKey:
    """Make a MicroCloud cluster certificate exactly as LXD generates it.

    Follows ``GenerateMemCert(client=false, ...)`` in canonical/lxd ``shared/cert.go``, which
    canonical/microcluster calls through ``shared.KeyPairAndCA(..., "cluster", CertServer,
    CertOptions{AddHosts: true, CommonName: <member name>})`` in ``internal/daemon/daemon.go``
    (``ReloadCert``, run when the first member bootstraps). MicroCloud then presents this
    certificate as its TLS *client* certificate although it only allows serverAuth.

    The shape: EC P-384 key signed with ECDSA-SHA384 (LXD made RSA 4096 keys, signed
    SHA256-RSA, until late 2018, and a replaced cluster certificate may be RSA); self-signed;
    random 128-bit serial; valid from one minute ago for 10x365 days; subject O=LXD,
    CN=``<username>@<hostname>``; critical key usage digitalSignature+keyEncipherment; critical
    CA:FALSE; EKU serverAuth only; no key identifiers; SANs DNS ``hostname`` and IPs 127.0.0.1
    and ::1 (LXD's AddHosts set). The key PEM is traditional: "EC PRIVATE KEY" (SEC1) or "RSA
    PRIVATE KEY" (PKCS#1). One byte-level difference is left: Go encodes O=LXD as a
    PrintableString, cryptography as a UTF8String (same name to every verifier).

    Args:
        hostname: the member name LXD puts after ``@`` in the CN (and in the default DNS SAN).
        username: the daemon's user (``root`` under the snap).
        key_type: ``"ec"`` (P-384) or ``"rsa"`` (4096 bits, as older LXD made).
        organization: subject O; installs made before mid-2023 have ``linuxcontainers.org``.
        dns_names: DNS SANs; default ``[hostname]``. ``["unspecified"]`` with no IPs is LXD's
            shape without AddHosts.
        ip_addresses: IP SANs; default 127.0.0.1 and ::1. Link-local ones are dropped, as LXD
            drops them.
        not_before: start of validity (default one minute ago); in the future for a
            not-yet-valid certificate.
        not_after: end of validity (default ``not_before`` + 10x365 days); in the past for an
            expired certificate.
        extended_key_usage: EKU purposes; None leaves the extension out. Only tests of
            other shapes should change it (e.g. ``[ExtendedKeyUsageOID.CLIENT_AUTH]``).

    Returns:
        The certificate and its key.

    Raises:
        ValueError: for an empty ``extended_key_usage``, an unknown ``key_type`` or
            ``not_after`` not later than ``not_before``.
    """
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    if key_type == "ec":
        key, digest = ec.generate_private_key(ec.SECP384R1()), hashes.SHA384()
    elif key_type == "rsa":
        key, digest = rsa.generate_private_key(65537, 4096), hashes.SHA256()
    else:
        raise ValueError(f"key_type must be 'ec' or 'rsa', not {key_type!r}")
    if extended_key_usage is not None and not extended_key_usage:
        raise ValueError("extended_key_usage must name a purpose, or be None for no extension")
    start = not_before if not_before is not None else _now() - datetime.timedelta(minutes=1)
    end = not_after if not_after is not None else start + CLUSTER_VALIDITY
    if end <= start:
        raise ValueError("not_after must be later than not_before")
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{username}@{hostname}"),
        ]
    )
    ips = ("127.0.0.1", "::1") if ip_addresses is None else ip_addresses
    kept_ips = [ip for ip in ips if not _link_local(ipaddress.ip_address(ip))]
    san = _san([hostname] if dns_names is None else dns_names, kept_ips)
    # Go writes the extensions in this order: key usage, EKU, basic constraints, SANs.
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(secrets.randbelow(2**128 - 1) + 1)
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    if extended_key_usage is not None:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage(list(extended_key_usage)), critical=False
        )
    builder = builder.add_extension(
        x509.BasicConstraints(ca=False, path_length=None), critical=True
    )
    if len(san) > 0:
        builder = builder.add_extension(san, critical=False)
    cert = builder.sign(key, digest)
    return CertKey(_cert_pem(cert), _key_pem(key, serialization.PrivateFormat.TraditionalOpenSSL))


def _link_local(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Go's IsLinkLocalUnicast or IsLinkLocalMulticast, which LXD leaves out of SANs."""
    if isinstance(ip, ipaddress.IPv4Address):
        return ip.is_link_local or ip in ipaddress.ip_network("224.0.0.0/24")
    return ip.is_link_local or (ip.packed[0] == 0xFF and ip.packed[1] & 0x0F == 0x02)


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
    """Issue a server certificate (serverAuth only) signed by ``ca``.

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
