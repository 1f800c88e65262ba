"""Links from the UI to the fleet dashboard in Grafana (the `grafana-url` charm option)."""

from __future__ import annotations

from urllib.parse import quote, urlencode

FLEET_DASHBOARD_UID = "89160b28dca429e97cca47cd03887c8b685eda9b"
"""uid of the charm's fleet dashboard (src/grafana_dashboards/fleet.json): cosl's
`DashboardPath40UID.generate("microcloud-cluster-manager-k8s", "fleet.json")`, which the charm
also sends as the dashboard's alternative uid, so Grafana keeps it whatever the consumer does."""
FLEET_DASHBOARD_SLUG = "microcloud-fleet"


def cluster_dashboard_url(base: str, cluster: str) -> str | None:
    """The fleet dashboard filtered to `cluster`, under Grafana's `base` URL; None if unset.

    `base` is Grafana's root URL as an operator opens it (e.g. `https://grafana.example.com`
    or `https://example.com/cos-grafana`); the cluster name is the dashboard's `cluster`
    variable, matching the `cluster` label of the forwarded LXD series.
    """
    if not base:
        return None
    query = urlencode({"orgId": "1", "var-cluster": cluster}, quote_via=quote)
    return f"{base.rstrip('/')}/d/{FLEET_DASHBOARD_UID}/{FLEET_DASHBOARD_SLUG}?{query}"
