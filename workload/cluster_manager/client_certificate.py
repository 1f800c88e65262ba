"""The client certificate the TLS front passes on in `X-Client-Cert` (base64 DER), read once.

The connector app and the tunnel process both authenticate clusters by it: the SHA-256
fingerprint finds the enrolled cluster, the dates are checked here because the front takes any
certificate (design D1).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from datetime import UTC, datetime

from cryptography import x509

PEM_BEGIN = "-----BEGIN CERTIFICATE-----"
PEM_END = "-----END CERTIFICATE-----"


def pem_to_der(pem: str) -> bytes | None:
    """DER bytes of the first certificate in `pem`, or None when it is not one."""
    start = pem.find(PEM_BEGIN)
    end = pem.find(PEM_END, start)
    if start < 0 or end < 0:
        return None
    body = "".join(pem[start + len(PEM_BEGIN) : end].split())
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        return None


def fingerprint_of_der(der: bytes) -> str:
    """Lowercase hex SHA-256 of a DER certificate, as MicroCloud and tokens write it."""
    return hashlib.sha256(der).hexdigest()


def client_fingerprint(header_value: str | None) -> str | None:
    """Fingerprint of the presented client certificate, or None when there is none."""
    if not header_value:
        return None
    try:
        der = base64.b64decode(header_value, validate=True)
    except (binascii.Error, ValueError):
        return None
    return fingerprint_of_der(der) if der else None


def certificate_problem(header_value: str | None) -> str | None:
    """Why the presented client certificate cannot be used now, or None (also when absent)."""
    if not header_value:
        return None
    try:
        cert = x509.load_der_x509_certificate(base64.b64decode(header_value, validate=True))
    except (binascii.Error, ValueError):
        return "TLS client certificate is not a valid X.509 certificate"
    now = datetime.now(UTC)
    if cert.not_valid_after_utc <= now:
        return f"TLS client certificate expired at {cert.not_valid_after_utc.isoformat()}"
    if cert.not_valid_before_utc > now:
        return (
            f"TLS client certificate is not valid before {cert.not_valid_before_utc.isoformat()}"
        )
    return None
