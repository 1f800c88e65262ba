"""The cluster certificate helper makes the certificate LXD makes, checked as a user would."""

from __future__ import annotations

import datetime
import subprocess
from pathlib import Path
from typing import TypeVar

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, NameOID

from tools import pki

UTC = datetime.UTC
Ext = TypeVar("Ext", bound=x509.ExtensionType)


@pytest.fixture(scope="module")
def lxd_cert() -> pki.CertKey:
    return pki.cluster_certificate("mc-01")


@pytest.fixture(scope="module")
def lxd_rsa_cert() -> pki.CertKey:
    return pki.cluster_certificate("mc-01", key_type="rsa")


def _ext(cert: pki.CertKey, kind: type[Ext]) -> x509.Extension[Ext]:
    return cert.certificate.extensions.get_extension_for_class(kind)


def _openssl_purposes(cert: pki.CertKey, tmp_path: Path) -> list[str]:
    cert_path, _ = cert.write(tmp_path, "cluster")
    result = subprocess.run(
        ["openssl", "x509", "-in", str(cert_path), "-noout", "-purpose"],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.splitlines()


def test_default_key_is_ec_p384(lxd_cert):
    key = lxd_cert.certificate.public_key()

    assert isinstance(key, ec.EllipticCurvePublicKey)
    assert key.curve.name == "secp384r1"


def test_rsa_key_on_request_has_4096_bits(lxd_rsa_cert):
    key = lxd_rsa_cert.certificate.public_key()

    assert isinstance(key, rsa.RSAPublicKey)
    assert key.key_size == 4096


def test_ec_signature_is_ecdsa_with_sha384(lxd_cert):
    cert = lxd_cert.certificate

    assert cert.signature_algorithm_oid == x509.SignatureAlgorithmOID.ECDSA_WITH_SHA384


def test_rsa_signature_is_sha256_with_rsa(lxd_rsa_cert):
    cert = lxd_rsa_cert.certificate

    assert cert.signature_algorithm_oid == x509.SignatureAlgorithmOID.RSA_WITH_SHA256


def test_ec_key_pem_is_a_sec1_ec_private_key(lxd_cert):
    key = serialization.load_pem_private_key(lxd_cert.key_pem.encode(), password=None)

    assert lxd_cert.key_pem.startswith("-----BEGIN EC PRIVATE KEY-----\n")
    assert key.public_key() == lxd_cert.certificate.public_key()


def test_rsa_key_pem_is_a_pkcs1_rsa_private_key(lxd_rsa_cert):
    key = serialization.load_pem_private_key(lxd_rsa_cert.key_pem.encode(), password=None)

    assert lxd_rsa_cert.key_pem.startswith("-----BEGIN RSA PRIVATE KEY-----\n")
    assert key.public_key() == lxd_rsa_cert.certificate.public_key()


def test_subject_is_organization_lxd_and_root_at_host(lxd_cert):
    subject = lxd_cert.certificate.subject

    assert subject.rfc4514_string() == "CN=root@mc-01,O=LXD"
    assert [attribute.oid for attribute in subject] == [
        NameOID.ORGANIZATION_NAME,
        NameOID.COMMON_NAME,
    ]


def test_user_and_older_organization_can_be_chosen():
    cert = pki.cluster_certificate("mc-02", username="ubuntu", organization="linuxcontainers.org")

    assert cert.certificate.subject.rfc4514_string() == "CN=ubuntu@mc-02,O=linuxcontainers.org"


def test_certificate_is_self_signed(lxd_cert):
    cert = lxd_cert.certificate

    assert cert.issuer == cert.subject
    cert.verify_directly_issued_by(cert)


def test_serial_is_a_random_128_bit_number(lxd_cert):
    other = pki.cluster_certificate("mc-01")

    assert 0 < lxd_cert.certificate.serial_number < 2**128
    assert other.certificate.serial_number != lxd_cert.certificate.serial_number


def test_key_usage_is_digital_signature_and_key_encipherment_marked_critical(lxd_cert):
    extension = _ext(lxd_cert, x509.KeyUsage)
    usage = extension.value

    assert extension.critical
    assert (usage.digital_signature, usage.key_encipherment) == (True, True)
    assert not any(
        (
            usage.content_commitment,
            usage.data_encipherment,
            usage.key_agreement,
            usage.key_cert_sign,
            usage.crl_sign,
        )
    )


def test_basic_constraints_say_not_a_ca_marked_critical(lxd_cert):
    extension = _ext(lxd_cert, x509.BasicConstraints)

    assert extension.critical
    assert extension.value == x509.BasicConstraints(ca=False, path_length=None)


def test_extended_key_usage_is_exactly_server_auth(lxd_cert):
    extension = _ext(lxd_cert, x509.ExtendedKeyUsage)

    assert not extension.critical
    assert list(extension.value) == [ExtendedKeyUsageOID.SERVER_AUTH]


def test_certificate_has_no_key_identifiers(lxd_cert):
    oids = [extension.oid for extension in lxd_cert.certificate.extensions]

    assert ExtensionOID.SUBJECT_KEY_IDENTIFIER not in oids
    assert ExtensionOID.AUTHORITY_KEY_IDENTIFIER not in oids


def test_extensions_come_in_go_order(lxd_cert):
    oids = [extension.oid for extension in lxd_cert.certificate.extensions]

    assert oids == [
        ExtensionOID.KEY_USAGE,
        ExtensionOID.EXTENDED_KEY_USAGE,
        ExtensionOID.BASIC_CONSTRAINTS,
        ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
    ]


def test_default_sans_are_the_host_name_and_loopback_addresses(lxd_cert):
    san = _ext(lxd_cert, x509.SubjectAlternativeName).value

    assert san.get_values_for_type(x509.DNSName) == ["mc-01"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1", "::1"]


def test_link_local_addresses_are_left_out_of_the_sans():
    cert = pki.cluster_certificate(
        "mc-03", ip_addresses=["10.0.0.3", "169.254.1.1", "fe80::1", "224.0.0.251", "ff02::fb"]
    )

    san = _ext(cert, x509.SubjectAlternativeName).value
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["10.0.0.3"]


def test_shape_without_add_hosts_names_only_unspecified():
    cert = pki.cluster_certificate("mc-04", dns_names=["unspecified"], ip_addresses=())

    san = _ext(cert, x509.SubjectAlternativeName).value
    assert list(san) == [x509.DNSName("unspecified")]


def test_validity_starts_a_minute_ago_and_lasts_ten_365_day_years():
    before = datetime.datetime.now(UTC)

    cert = pki.cluster_certificate("mc-05").certificate

    after = datetime.datetime.now(UTC)
    minute = datetime.timedelta(minutes=1)
    second = datetime.timedelta(seconds=1)
    assert before - minute - second <= cert.not_valid_before_utc <= after - minute
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == datetime.timedelta(days=3650)


def test_expired_variant_ends_in_the_past():
    now = datetime.datetime.now(UTC)

    cert = pki.cluster_certificate(
        "old",
        not_before=now - datetime.timedelta(days=10),
        not_after=now - datetime.timedelta(days=1),
    ).certificate

    assert cert.not_valid_after_utc < now


def test_not_yet_valid_variant_starts_in_the_future():
    now = datetime.datetime.now(UTC)

    cert = pki.cluster_certificate("new", not_before=now + datetime.timedelta(days=1)).certificate

    assert cert.not_valid_before_utc > now
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == datetime.timedelta(days=3650)


def test_variant_without_extended_key_usage_has_no_such_extension():
    cert = pki.cluster_certificate("mc-06", extended_key_usage=None)

    oids = [extension.oid for extension in cert.certificate.extensions]
    assert ExtensionOID.EXTENDED_KEY_USAGE not in oids


def test_client_auth_only_variant_names_only_client_auth():
    cert = pki.cluster_certificate("mc-07", extended_key_usage=[ExtendedKeyUsageOID.CLIENT_AUTH])

    eku = _ext(cert, x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]


def test_empty_extended_key_usage_is_refused():
    with pytest.raises(ValueError, match="extended_key_usage"):
        pki.cluster_certificate("mc-08", extended_key_usage=[])


def test_openssl_says_the_default_shape_is_no_ssl_client_but_an_ssl_server(lxd_cert, tmp_path):
    purposes = _openssl_purposes(lxd_cert, tmp_path)

    assert "SSL client : No" in purposes
    assert "SSL server : Yes" in purposes


def test_openssl_says_the_client_auth_only_variant_is_an_ssl_client(tmp_path):
    cert = pki.cluster_certificate("mc-07", extended_key_usage=[ExtendedKeyUsageOID.CLIENT_AUTH])

    purposes = _openssl_purposes(cert, tmp_path)

    assert "SSL client : Yes" in purposes
    assert "SSL server : No" in purposes


def test_server_certificates_from_self_signed_allow_server_auth_only():
    cert = pki.self_signed("cc.example.com", dns_names=["cc.example.com"])

    eku = _ext(cert, x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]


def test_issued_server_certificates_allow_server_auth_only():
    ca = pki.make_ca("test CA")

    leaf = pki.issue(ca, "mgmt.example.com", dns_names=["mgmt.example.com"])

    eku = _ext(leaf, x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    leaf.certificate.verify_directly_issued_by(ca.certificate)


def test_fingerprint_is_the_sha256_of_the_der(lxd_cert):
    digest = lxd_cert.certificate.fingerprint(hashes.SHA256()).hex()

    assert lxd_cert.fingerprint == digest
