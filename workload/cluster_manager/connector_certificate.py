"""The connector certificate's fingerprint: what join tokens carry and clusters pin (D2)."""

from __future__ import annotations

from pathlib import Path

from .client_certificate import fingerprint_of_der, pem_to_der


class ConnectorCertificateError(Exception):
    """The connector certificate file is missing or holds no certificate."""


def connector_fingerprint(cert_file: Path) -> str:
    """Lowercase hex SHA-256 of the DER of the leaf (first) certificate in `cert_file`.

    Read on every call, so an explicit rotation is picked up without a restart.

    Raises:
        ConnectorCertificateError: when the file cannot be read or is not a PEM certificate.
    """
    try:
        pem = cert_file.read_text()
    except OSError as error:
        raise ConnectorCertificateError(
            f"cannot read the connector certificate {cert_file}: {error.strerror}"
        ) from None
    der = pem_to_der(pem)
    if der is None:
        raise ConnectorCertificateError(f"{cert_file} holds no PEM certificate")
    return fingerprint_of_der(der)
