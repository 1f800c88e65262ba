"""The calling cluster's identity, from the client certificate nginx passes on (design D1).

nginx sends the PEM it received (URL-escaped) in `X-Client-Cert`, and always sets that
header, empty when the client sent no certificate, so a caller cannot forge it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from urllib.parse import unquote

from flask import request

CLIENT_CERT_HEADER = "X-Client-Cert"
_BEGIN = "-----BEGIN CERTIFICATE-----"
_END = "-----END CERTIFICATE-----"


def pem_to_der(pem: str) -> bytes | None:
    """DER bytes of the first certificate in `pem`, or None when it is not one."""
    start = pem.find(_BEGIN)
    end = pem.find(_END, start)
    if start < 0 or end < 0:
        return None
    body = "".join(pem[start + len(_BEGIN) : end].split())
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        return None


def fingerprint_of_der(der: bytes) -> str:
    """Lowercase hex SHA-256 of a DER certificate, as MicroCloud and tokens write it."""
    return hashlib.sha256(der).hexdigest()


def client_certificate_pem(header_value: str | None) -> str | None:
    """The client certificate PEM from nginx's header, or None when none was presented."""
    if not header_value:
        return None
    return unquote(header_value)


def client_fingerprint(header_value: str | None) -> str | None:
    """Fingerprint of the presented client certificate, or None when there is none."""
    pem = client_certificate_pem(header_value)
    if pem is None:
        return None
    der = pem_to_der(pem)
    return fingerprint_of_der(der) if der else None


_ENVIRON_KEY = "cluster_manager.client_fingerprint"
_ENVIRON_HEADER = "HTTP_" + CLIENT_CERT_HEADER.upper().replace("-", "_")


def request_fingerprint() -> str | None:
    """Fingerprint of the current request's client certificate, computed once per request.

    Kept in the WSGI environ: the rate limiter and the handler both ask, on the hot path.
    """
    environ = request.environ
    if _ENVIRON_KEY not in environ:
        environ[_ENVIRON_KEY] = client_fingerprint(environ.get(_ENVIRON_HEADER))
    return environ[_ENVIRON_KEY]
