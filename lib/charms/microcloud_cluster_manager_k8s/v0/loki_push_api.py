"""Requirer side of the `loki_push_api` interface (`logging`), forwarding through Pebble.

Each unit of the provider (Loki, an OpenTelemetry collector) puts its push endpoint in its
unit databag:

- `endpoint`: JSON `{"url": "http://<address>:3100/loki/api/v1/push"}`.

We publish our Juju topology in the application databag (`metadata`, leader only). The logs
themselves are pushed by Pebble (Juju ≥ 3.4): `log_targets()` returns the `log-targets`
section of a layer with one Loki target per endpoint, every service's output forwarded, and
Juju topology labels on every line. Targets that disappeared must be switched off explicitly
(`services: ["-all"]`), because a later layer cannot delete what an earlier one added; pass the
names currently in the plan as `previous`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable

import ops
from cosl import JujuTopology

# The unique Charmhub library identifier, never change it.
LIBID = "45dfe99b75ef4c799e54c1e05669525b"

# Increment this major API version when introducing breaking changes.
LIBAPI = 0

# Increment this PATCH version before using `charmcraft publish-lib` or reset
# to 0 if you are raising the major API version.
LIBPATCH = 1

logger = logging.getLogger(__name__)


class LokiPushApiRequirer(ops.Object):
    """Read the Loki push endpoints of every related unit and build Pebble log targets."""

    def __init__(self, charm: ops.CharmBase, relation_name: str = "logging"):
        """Set up the requirer.

        Args:
            charm: the charm.
            relation_name: the endpoint, of interface `loki_push_api`.
        """
        super().__init__(charm, relation_name)
        self._charm = charm
        self.relation_name = relation_name

    def endpoints(self) -> dict[str, str]:
        """The push URL of every related unit, by unit name."""
        result: dict[str, str] = {}
        for relation in self.model.relations[self.relation_name]:
            for unit in relation.units:
                raw = relation.data[unit].get("endpoint")
                if not raw:
                    continue
                try:
                    url = json.loads(raw)["url"]
                except (ValueError, KeyError, TypeError):
                    logger.warning("ignoring invalid endpoint data of %s: %r", unit.name, raw)
                    continue
                if isinstance(url, str) and url.startswith(("http://", "https://")):
                    result[unit.name] = url
        return result

    def publish_metadata(self) -> None:
        """Put our topology in the application databag of every relation (leader only)."""
        if not self.model.unit.is_leader():
            return
        metadata = json.dumps(JujuTopology.from_charm(self._charm).as_dict(), sort_keys=True)
        for relation in self.model.relations[self.relation_name]:
            databag = relation.data[self.model.app]
            if databag.get("metadata") != metadata:
                databag["metadata"] = metadata

    def log_targets(self, previous: Iterable[str] = ()) -> dict[str, ops.pebble.LogTargetDict]:
        """The `log-targets` of a layer: one per endpoint, and the vanished ones switched off."""
        topology = JujuTopology.from_charm(self._charm)
        labels = {
            "product": "Juju",
            "charm": topology.charm_name or "",
            "juju_model": topology.model,
            "juju_model_uuid": topology.model_uuid,
            "juju_application": topology.application,
            "juju_unit": topology.unit or "",
            "job": f"juju_{topology.identifier}",
        }
        targets: dict[str, ops.pebble.LogTargetDict] = {}
        for unit_name, url in sorted(self.endpoints().items()):
            targets[unit_name] = {
                "override": "replace",
                "type": "loki",
                "location": url,
                "services": ["all"],
                "labels": labels,
            }
        for name in previous:
            if name not in targets:
                targets[name] = {"override": "merge", "services": ["-all"]}
        return targets
