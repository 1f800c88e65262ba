"""The tunnel secret: what the units share to trust each other's forwarded requests (D13).

A management request for a cluster's tunnel may reach any unit; that unit forwards it over the
pod network to the unit holding the tunnel, which accepts it only with this secret. The leader
generates it once and keeps it in a Juju application secret (app_secret.py), its ID in the peer
application databag; every unit writes it into its env file (mode 0600) and nowhere else: no
log, no action result, no relation databag. Like the connector identity it never changes by
itself, neither on upgrade nor when the leader changes.
"""

from __future__ import annotations

import secrets

import ops

from app_secret import PublishedSecret
from constants import TUNNEL_SECRET_KEY, TUNNEL_SECRET_LABEL

CONTENT_KEY = "tunnel-secret"
SECRET_BYTES = 32


class TunnelSecretStore:
    """Read (every unit) and create (leader) the tunnel secret."""

    def __init__(self, model: ops.Model, peer_relation_name: str):
        """Find the secret through the app databag of the peer endpoint `peer_relation_name`."""
        self._secret = PublishedSecret(
            model, peer_relation_name, TUNNEL_SECRET_LABEL, TUNNEL_SECRET_KEY, (CONTENT_KEY,)
        )

    def get(self) -> str | None:
        """Return the shared secret (hex), None until the leader created it."""
        content = self._secret.get()
        return content[CONTENT_KEY] if content else None

    def ensure(self) -> str | None:
        """Create the secret unless it exists (leader only); None without a peer relation yet."""
        content = self._secret.ensure(lambda: {CONTENT_KEY: secrets.token_hex(SECRET_BYTES)})
        return content[CONTENT_KEY] if content else None
