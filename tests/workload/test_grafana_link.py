"""The UI's deep link from a cluster to the fleet dashboard (the `grafana-url` option)."""

from __future__ import annotations

from cluster_manager.grafana import FLEET_DASHBOARD_UID, cluster_dashboard_url


def test_no_link_without_a_grafana_url():
    assert cluster_dashboard_url("", "edge") is None


def test_link_selects_the_cluster_on_the_fleet_dashboard():
    url = cluster_dashboard_url("https://grafana.example.com/", "edge-1")

    assert url == (
        f"https://grafana.example.com/d/{FLEET_DASHBOARD_UID}/microcloud-fleet"
        "?orgId=1&var-cluster=edge-1"
    )


def test_cluster_names_are_escaped_in_the_link():
    url = cluster_dashboard_url("https://example.com/cos-grafana", "a b&c")

    assert url is not None
    assert url.startswith("https://example.com/cos-grafana/d/")
    assert url.endswith("var-cluster=a%20b%26c")
