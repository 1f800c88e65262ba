"""Requirer side of the `prometheus_remote_write` interface (`send-remote-write`).

Each unit of the provider (Prometheus, Mimir, an OpenTelemetry collector) puts its
remote-write endpoint in its unit databag:

- `remote_write`: JSON `{"url": "http://<address>:9090/api/v1/write"}`.

We only read: `endpoints()` returns every distinct URL, in a stable order. (The interface also
lets the requirer send alert rules in its application databag; this charm sends its rules over
`metrics-endpoint` instead.) The library keeps no state and emits no events: read the URLs in
the reconcile handler.
"""

from __future__ import annotations

import json
import logging

import ops

# The unique Charmhub library identifier, never change it.
LIBID = "40490026078047f8a9b41f538045ac29"

# Increment this major API version when introducing breaking changes.
LIBAPI = 0

# Increment this PATCH version before using `charmcraft publish-lib` or reset
# to 0 if you are raising the major API version.
LIBPATCH = 1

logger = logging.getLogger(__name__)


class PrometheusRemoteWriteRequirer(ops.Object):
    """Read the remote-write URLs of every related provider unit."""

    def __init__(self, charm: ops.CharmBase, relation_name: str = "send-remote-write"):
        """Set up the requirer.

        Args:
            charm: the charm.
            relation_name: the endpoint, of interface `prometheus_remote_write`.
        """
        super().__init__(charm, relation_name)
        self.relation_name = relation_name

    def endpoints(self) -> list[str]:
        """Every distinct remote-write URL the providers' units published, sorted."""
        urls: set[str] = set()
        for relation in self.model.relations[self.relation_name]:
            for unit in relation.units:
                raw = relation.data[unit].get("remote_write")
                if not raw:
                    continue
                try:
                    url = json.loads(raw)["url"]
                except (ValueError, KeyError, TypeError):
                    logger.warning("ignoring invalid remote_write data of %s: %r", unit.name, raw)
                    continue
                if isinstance(url, str) and url.startswith(("http://", "https://")):
                    urls.add(url)
        return sorted(urls)
