"""Provider side of the `prometheus_scrape` interface (`metrics-endpoint`).

A Prometheus (or an OpenTelemetry collector) related on this endpoint scrapes the targets we
describe and loads the alert rules we send. Everything is JSON in plain databag strings.

Provider application databag (leader only):

- `scrape_jobs`: a list of Prometheus `scrape_config` objects. In a `static_configs` target, the
  host `*` stands for "the address of every unit of this application" (`"*:9102"`); the
  consumer expands it from the unit databags and adds Juju topology labels.
- `scrape_metadata`: the Juju topology of the application: `model`, `model_uuid`,
  `application`, `unit`, `charm_name`.
- `alert_rules`: `{"groups": [...]}` in Prometheus rule-file form, with the Juju topology
  labels already injected (cosl `Rules(query_type="promql", topology=...)`).

Provider unit databag (every unit):

- `prometheus_scrape_unit_address`: the address the consumer should scrape.
- `prometheus_scrape_unit_name`: the unit's name.
- `prometheus_scrape_unit_path`: a path prefix, `""` here.
- `prometheus_scrape_unit_fqdn`: the unit's FQDN.

The library keeps no state and emits no events: call `update()` from the reconcile handler;
it writes only values that changed and leaves application data alone on non-leader units.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import ops
from cosl import JujuTopology
from cosl.rules import Rules

# The unique Charmhub library identifier, never change it.
LIBID = "8c8605f51c674e9c94a8f8a785ecb64a"

# Increment this major API version when introducing breaking changes.
LIBAPI = 0

# Increment this PATCH version before using `charmcraft publish-lib` or reset
# to 0 if you are raising the major API version.
LIBPATCH = 1

ALLOWED_JOB_KEYS = frozenset(
    {
        "job_name",
        "metrics_path",
        "static_configs",
        "scrape_interval",
        "scrape_timeout",
        "proxy_url",
        "relabel_configs",
        "metric_relabel_configs",
        "sample_limit",
        "label_limit",
        "label_name_length_limit",
        "label_value_length_limit",
        "scheme",
        "basic_auth",
        "tls_config",
        "authorization",
        "params",
    }
)


def load_alert_rules(path: Path, topology: JujuTopology) -> dict[str, Any]:
    """The alert rules of every rule file under `path`, with Juju topology injected."""
    rules = Rules(query_type="promql", topology=topology)
    rules.add_path(path, recursive=True)
    return rules.as_dict()


class MetricsEndpointProvider(ops.Object):
    """Publish scrape jobs, alert rules and this unit's address on `prometheus_scrape`."""

    def __init__(self, charm: ops.CharmBase, relation_name: str = "metrics-endpoint"):
        """Set up the provider.

        Args:
            charm: the charm.
            relation_name: the endpoint, of interface `prometheus_scrape`.
        """
        super().__init__(charm, relation_name)
        self._charm = charm
        self.relation_name = relation_name

    @property
    def relations(self) -> list[ops.Relation]:
        """The relations of the endpoint."""
        return self.model.relations[self.relation_name]

    def update(
        self,
        jobs: Sequence[Mapping[str, Any]],
        alert_rules: Mapping[str, Any],
        address: str,
    ) -> None:
        """Publish `jobs` and `alert_rules` (leader) and `address` (every unit).

        Raises:
            ValueError: a job has a key Prometheus charms do not accept.
        """
        for job in jobs:
            unknown = set(job) - ALLOWED_JOB_KEYS
            if unknown:
                raise ValueError(f"scrape job keys not allowed: {', '.join(sorted(unknown))}")
        topology = JujuTopology.from_charm(self._charm)
        app_data = {
            "scrape_jobs": json.dumps(list(jobs), sort_keys=True),
            "scrape_metadata": json.dumps(topology.as_dict(), sort_keys=True),
            "alert_rules": json.dumps(dict(alert_rules), sort_keys=True),
        }
        unit_data = {
            "prometheus_scrape_unit_address": address,
            "prometheus_scrape_unit_name": self.model.unit.name,
            "prometheus_scrape_unit_path": "",
            "prometheus_scrape_unit_fqdn": socket.getfqdn(),
        }
        for relation in self.relations:
            _write(relation.data[self.model.unit], unit_data)
            if self.model.unit.is_leader():
                _write(relation.data[self.model.app], app_data)


def _write(databag: ops.RelationDataContent, values: Mapping[str, str]) -> None:
    for key, value in values.items():
        if databag.get(key) != value:
            databag[key] = value
