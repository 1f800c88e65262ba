"""The calling cluster's identity, from the client certificate the TLS front passes on (D1).

The front sends the base64 DER of the certificate whose key the caller proved in the
handshake in `X-Client-Cert`, and removes any such header a caller sent, so it cannot be
forged. The connector answers with `X-Enrolled-Cluster` when that certificate is an enrolled
cluster's, so the front counts its requests by certificate rather than by address (D8).
"""

from __future__ import annotations

import base64
import binascii

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from flask import Response, g, request

from ..client_certificate import PEM_BEGIN, PEM_END, certificate_problem, client_fingerprint
from ..front.config import CLIENT_CERT_HEADER, ENROLLED_HEADER


class CertificateError(ValueError):
    """`cluster_certificate` is not one usable certificate; the message says why."""


def single_certificate(pem: str) -> x509.Certificate:
    """The one certificate that `pem` holds, and nothing else but surrounding whitespace.

    A join enrolls exactly one certificate: a second PEM block, a private key or any text
    around the block would be stored and echoed back, and a CA certificate would let its
    holder mint others. microcloudd sends microcluster's cluster.crt, one self-signed
    CA:FALSE certificate (reference §2.2a; microcloud client/cluster_manager_client.go).

    Raises:
        CertificateError: what is wrong, never the text itself.
    """
    text = pem.strip()
    if (
        not text.startswith(PEM_BEGIN)
        or not text.endswith(PEM_END)
        or text.count("-----BEGIN ") != 1
        or text.count("-----END ") != 1
    ):
        raise CertificateError("cluster_certificate must hold exactly one PEM certificate")
    body = "".join(text[len(PEM_BEGIN) : -len(PEM_END)].split())
    try:
        cert = x509.load_der_x509_certificate(base64.b64decode(body, validate=True))
        extensions = cert.extensions
    except (binascii.Error, ValueError) as error:
        raise CertificateError(
            f"cluster_certificate is not an X.509 certificate: {error}"
        ) from None
    try:
        is_ca = extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if is_ca:
        raise CertificateError("cluster_certificate must not be a CA certificate")
    return cert


def normalized_pem(cert: x509.Certificate) -> str:
    """The certificate re-encoded from its DER: one way to write it, whatever was sent."""
    return cert.public_bytes(serialization.Encoding.PEM).decode()


_ENVIRON_KEY = "cluster_manager.client_fingerprint"
_ENVIRON_HEADER = "HTTP_" + CLIENT_CERT_HEADER.upper().replace("-", "_")


def request_fingerprint() -> str | None:
    """Fingerprint of the current request's client certificate, computed once per request.

    Kept in the WSGI environ: the handler and the request metrics both ask, on the hot path.
    """
    environ = request.environ
    if _ENVIRON_KEY not in environ:
        environ[_ENVIRON_KEY] = client_fingerprint(environ.get(_ENVIRON_HEADER))
    return environ[_ENVIRON_KEY]


def presented_certificate_problem() -> str | None:
    """Why the presented client certificate cannot be used now, or None.

    The front takes any certificate (design D1); its dates are the app's to check. Parsed
    only on the way to a refusal or a join, never on a heartbeat that succeeds.
    """
    return certificate_problem(request.environ.get(_ENVIRON_HEADER))


def mark_caller_enrolled(enrolled: bool = True) -> None:
    """Tell the front whether this request's certificate is (still) an enrolled cluster's."""
    g.mcm_caller_enrolled = enrolled


def add_enrolled_header(response: Response) -> Response:
    """`after_request` hook of the connector app: pass the mark on to the front."""
    enrolled = g.pop("mcm_caller_enrolled", None)
    if enrolled is not None:
        response.headers[ENROLLED_HEADER] = "1" if enrolled else "0"
    return response
