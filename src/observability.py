"""COS integrations: our metrics and alert rules, dashboards, logs, and remote-write URLs.

- `metrics-endpoint` (prometheus_scrape): every unit serves `/metrics` on the front's plain-HTTP
  metrics port; the leader publishes the scrape job and the alert rules of
  `prometheus_alert_rules/`.
- `grafana-dashboard`: the leader publishes `grafana_dashboards/*.json`. Juju topology dropdowns
  are not injected: the forwarded LXD series carry `cluster`/`member` labels, not Juju ones.
- `logging` (loki_push_api): Pebble forwards every service's output to each Loki unit.
- `send-remote-write`: the URLs go to the connector (env file), which pushes the clusters'
  LXD metrics itself.
"""

from __future__ import annotations

import logging
from pathlib import Path

import ops
from charms.microcloud_cluster_manager_k8s.v0.grafana_dashboard import GrafanaDashboardProvider
from charms.microcloud_cluster_manager_k8s.v0.loki_push_api import LokiPushApiRequirer
from charms.microcloud_cluster_manager_k8s.v0.prometheus_remote_write import (
    PrometheusRemoteWriteRequirer,
)
from charms.microcloud_cluster_manager_k8s.v0.prometheus_scrape import (
    MetricsEndpointProvider,
    load_alert_rules,
)
from cosl import DashboardPath40UID, JujuTopology

from constants import (
    DASHBOARD_RELATION,
    LOGGING_RELATION,
    METRICS_PORT,
    METRICS_RELATION,
    REMOTE_WRITE_RELATION,
)
from ingress import unit_address

logger = logging.getLogger(__name__)

ALERT_RULES_DIR = Path(__file__).parent / "prometheus_alert_rules"
DASHBOARDS_DIR = Path(__file__).parent / "grafana_dashboards"
LOGGING_LAYER = "cluster-manager-logging"
RELATIONS = (METRICS_RELATION, DASHBOARD_RELATION, LOGGING_RELATION, REMOTE_WRITE_RELATION)
SCRAPE_JOB = {
    "job_name": "microcloud-cluster-manager",
    "metrics_path": "/metrics",
    "static_configs": [{"targets": [f"*:{METRICS_PORT}"]}],
}


class Observability(ops.Object):
    """The four COS endpoints, reconciled together."""

    def __init__(self, charm: ops.CharmBase):
        super().__init__(charm, "observability")
        self._charm = charm
        self.scrape = MetricsEndpointProvider(charm, METRICS_RELATION)
        self.dashboards = GrafanaDashboardProvider(charm, DASHBOARD_RELATION)
        self.logging = LokiPushApiRequirer(charm, LOGGING_RELATION)
        self.remote_write = PrometheusRemoteWriteRequirer(charm, REMOTE_WRITE_RELATION)

    def remote_write_urls(self) -> list[str]:
        """The remote-write URLs of every related Prometheus unit."""
        return self.remote_write.endpoints()

    def reconcile(self, container: ops.Container) -> None:
        """Publish our relation data and bring the Pebble log targets up to date."""
        rules = load_alert_rules(ALERT_RULES_DIR, JujuTopology.from_charm(self._charm))
        self.scrape.update([SCRAPE_JOB], rules, unit_address())
        dashboards = {path.name: path.read_text() for path in DASHBOARDS_DIR.glob("*.json")}
        alt_uids = {name: dashboard_uid(self._charm.meta.name, name) for name in dashboards}
        self.dashboards.update(dashboards, alt_uids, inject_dropdowns=False)
        self.logging.publish_metadata()
        if container.can_connect():
            self._reconcile_log_targets(container)

    def _reconcile_log_targets(self, container: ops.Container) -> None:
        try:
            planned = container.get_plan().log_targets
            active = [name for name, target in planned.items() if _enabled(target)]
            targets = self.logging.log_targets(previous=active)
            if all(
                name in planned and planned[name].to_dict() == _as_planned(target)
                for name, target in targets.items()
            ):
                return
            container.add_layer(LOGGING_LAYER, {"log-targets": targets}, combine=True)
        except (ops.pebble.ConnectionError, ops.pebble.APIError) as error:
            logger.warning("could not update the log targets: %s", error)


def dashboard_uid(charm_name: str, file_name: str) -> str:
    """The stable uid of one of our dashboards (the workload links to the fleet one by it)."""
    return DashboardPath40UID.generate(charm_name, file_name)


def _enabled(target: ops.pebble.LogTarget) -> bool:
    return bool(target.services) and target.services[-1] != "-all"


def _as_planned(target: ops.pebble.LogTargetDict) -> dict[str, object]:
    """What the plan shows for a target this layer sets (overrides are not kept in plans)."""
    return {key: value for key, value in target.items() if key != "override"}
