"""Management API certificate (`certificates`) and outgoing trust bundle (`receive-ca-cert`).

Each unit requests its own certificate for the management API domain (Mode.UNIT): the key
never leaves the unit, and the provider renews it; HAProxy is reloaded, not restarted, when a
renewed certificate is written. The connector certificate is not here: it is an identity
pinned by the clusters, see connector_identity.py.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import ops
from charmlibs.interfaces.certificate_transfer import CertificateTransferRequires
from charmlibs.interfaces.tls_certificates import (
    CertificateRequestAttributes,
    Mode,
    ProviderCapabilities,
    TLSCertificatesRequiresV4,
)

from constants import CA_RELATION, CERTIFICATES_RELATION


@dataclasses.dataclass(frozen=True)
class TLSMaterial:
    """A certificate chain and its private key, both PEM."""

    chain: str
    """Leaf certificate first, then the intermediate certificates."""
    private_key: str


class ManagementTLS(ops.Object):
    """The unit's management API certificate and the CA certificates it should trust."""

    def __init__(self, charm: ops.CharmBase, domain: Callable[[], str | None]):
        """Set up both certificate libraries.

        Args:
            charm: the charm.
            domain: returns the management API domain, None while the config is invalid.
        """
        super().__init__(charm, "management-tls")
        self._domain = domain
        self.certificates = TLSCertificatesRequiresV4(
            charm,
            CERTIFICATES_RELATION,
            certificate_requests=self._requests,
            mode=Mode.UNIT,
            refresh_events=[charm.on.config_changed],
        )
        self.trust = CertificateTransferRequires(charm, CA_RELATION)

    @property
    def provider_name(self) -> str | None:
        """Return the certificates provider's application name, None if not related."""
        relation = self.model.get_relation(CERTIFICATES_RELATION)
        return relation.app.name if relation is not None and relation.app else None

    def material(self) -> TLSMaterial | None:
        """Return the issued certificate for the configured domain, None until issued."""
        requests = self._requests(None)
        if not requests or self.provider_name is None:
            return None
        certificate, private_key = self.certificates.get_assigned_certificate(requests[0])
        if certificate is None or private_key is None:
            return None
        leaf = str(certificate.certificate).strip()
        chain = [leaf] + [
            pem for pem in (str(c).strip() for c in certificate.chain) if pem != leaf
        ]
        key = str(private_key).strip() + "\n"
        return TLSMaterial(chain="\n".join(chain) + "\n", private_key=key)

    def ca_bundle(self) -> str:
        """Return every CA certificate received over `receive-ca-cert`, sorted, PEM."""
        certificates = sorted(pem.strip() for pem in self.trust.get_all_certificates())
        return "".join(f"{pem}\n" for pem in certificates)

    def _requests(self, _: ProviderCapabilities | None) -> list[CertificateRequestAttributes]:
        domain = self._domain()
        if not domain:
            return []
        return [CertificateRequestAttributes(common_name=domain, sans_dns=[domain])]
