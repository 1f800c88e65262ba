"""Provider side of the `grafana_dashboard` interface (`grafana-dashboard`).

Grafana (or a collector that forwards dashboards) renders the dashboards we send. Only the
leader writes, in the application databag:

- `dashboards`: JSON `{"templates": {"file:<name>": {...}}, "uuid": <uuid4>}`. Each template
  has `charm` (our charm's name), `content` (the dashboard JSON, LZMA-compressed then base64,
  cosl `LZMABase64`), `juju_topology` (`model`, `model_uuid`, `application`, `unit`; empty
  when `inject_dropdowns` is false), `inject_dropdowns` (true: Grafana adds Juju topology
  variables) and optionally
  `dashboard_alt_uid` (the uid Grafana should use when it does not keep the dashboard's own).
  `uuid` is new on every change so the relation always fires.

The consumer (grafana-k8s `lib/charms/grafana_k8s/v0/grafana_dashboard.py`) adds
`juju_model=~"$juju_model",…` matchers to every query whenever `juju_topology` is non-empty,
whatever `inject_dropdowns` says; so a dashboard without dropdowns must send `{}`, as
grafana-k8s's own provider does, or its queries filter by variables that do not exist and
every panel shows "No data".

Dashboards query `${prometheusds}` (and `${lokids}`), the data sources Grafana substitutes.

Call `update()` from the reconcile handler with the complete set of dashboards; it writes only
when the templates changed and does nothing on non-leader units.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping

import ops
from cosl import JujuTopology, LZMABase64

# The unique Charmhub library identifier, never change it.
LIBID = "0f857177b14643b8aca9a2c7d7fe3cfc"

# Increment this major API version when introducing breaking changes.
LIBAPI = 0

# Increment this PATCH version before using `charmcraft publish-lib` or reset
# to 0 if you are raising the major API version.
LIBPATCH = 2


class GrafanaDashboardProvider(ops.Object):
    """Send dashboards over `grafana_dashboard`."""

    def __init__(self, charm: ops.CharmBase, relation_name: str = "grafana-dashboard"):
        """Set up the provider.

        Args:
            charm: the charm.
            relation_name: the endpoint, of interface `grafana_dashboard`.
        """
        super().__init__(charm, relation_name)
        self._charm = charm
        self.relation_name = relation_name

    def update(
        self,
        dashboards: Mapping[str, str],
        alt_uids: Mapping[str, str],
        inject_dropdowns: bool = True,
    ) -> None:
        """Publish `dashboards` (name → dashboard JSON text), with optional stable uids.

        Args:
            dashboards: file name of each dashboard and its JSON text.
            alt_uids: for some names, the uid Grafana should give the dashboard.
            inject_dropdowns: whether Grafana should add and apply Juju topology filters.
        """
        if not self.model.unit.is_leader():
            return
        topology: dict[str, str] = {}
        if inject_dropdowns:
            topology = JujuTopology.from_charm(self._charm).as_dict()
            topology.pop("charm_name", None)
        templates = {}
        for name, text in sorted(dashboards.items()):
            template = {
                "charm": self._charm.meta.name,
                "content": LZMABase64.compress(json.dumps(json.loads(text))),
                "juju_topology": topology,
                "inject_dropdowns": inject_dropdowns,
            }
            if name in alt_uids:
                template["dashboard_alt_uid"] = alt_uids[name]
            templates[f"file:{name}"] = template
        for relation in self.model.relations[self.relation_name]:
            databag = relation.data[self.model.app]
            current = json.loads(databag.get("dashboards", "{}"))
            if current.get("templates") != templates:
                databag["dashboards"] = json.dumps(
                    {"templates": templates, "uuid": str(uuid.uuid4())}
                )
