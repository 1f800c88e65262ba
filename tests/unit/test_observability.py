"""COS relation data: scrape jobs and alert rules, dashboards, log targets, remote write."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from cluster_manager.grafana import FLEET_DASHBOARD_UID
from cosl import LZMABase64
from ops import testing

from tests.unit.builders import (
    APP,
    CONTAINER,
    MODEL,
    ROOT,
    SigningCA,
    deploy,
    peer_address,
    replace_relation,
    workload_file,
)

ENV_FILE = "/etc/cluster-manager/cluster-manager.env"
FRONT_CONFIG = "/etc/cluster-manager/haproxy.cfg"
LOKI_URL = "http://loki-k8s-0.loki-k8s-endpoints.cos.svc.cluster.local:3100/loki/api/v1/push"


def run_with(ctx, ca: SigningCA, relation: testing.Relation, leader: bool = True):
    """A complete deployment, then `relation` joins it; the state after its changed event."""
    deployment = deploy(ctx, ca, leader=leader)
    state = replace_relation(deployment.state, relation)
    remote_unit = next(iter(relation.remote_units_data), None)
    return ctx.run(ctx.on.relation_changed(relation, remote_unit=remote_unit), state)


def env_of(out: testing.State) -> dict[str, str]:
    text = workload_file(out.get_container(CONTAINER), ENV_FILE).read_text()
    return dict(line.split("=", 1) for line in text.splitlines())


# metrics-endpoint (prometheus_scrape)


def test_leader_publishes_a_scrape_job_for_every_unit_on_the_metrics_port(ctx, ca: SigningCA):
    relation = testing.Relation("metrics-endpoint", remote_app_name="prometheus-k8s")

    out = run_with(ctx, ca, relation)

    data = out.get_relation(relation.id).local_app_data
    assert json.loads(data["scrape_jobs"]) == [
        {
            "job_name": "microcloud-cluster-manager",
            "metrics_path": "/metrics",
            "static_configs": [{"targets": ["*:9102"]}],
        }
    ]


def test_scrape_metadata_is_the_juju_topology(ctx, ca: SigningCA):
    relation = testing.Relation("metrics-endpoint", remote_app_name="prometheus-k8s")

    out = run_with(ctx, ca, relation)

    metadata = json.loads(out.get_relation(relation.id).local_app_data["scrape_metadata"])
    assert metadata["model"] == MODEL
    assert metadata["application"] == APP
    assert metadata["charm_name"] == APP
    assert metadata["unit"] == f"{APP}/0"


def test_alert_rules_are_published_with_juju_topology_labels(ctx, ca: SigningCA):
    relation = testing.Relation("metrics-endpoint", remote_app_name="prometheus-k8s")

    out = run_with(ctx, ca, relation)

    rules = json.loads(out.get_relation(relation.id).local_app_data["alert_rules"])
    alerts = {rule["alert"]: rule for group in rules["groups"] for rule in group["rules"]}
    assert set(alerts) == {
        "MicroCloudClusterSilent",
        "MicroCloudRemoteWriteFailing",
        "MicroCloudRemoteWriteDropping",
        "MicroCloudClusterManagerHighErrorRate",
    }
    labels = alerts["MicroCloudClusterSilent"]["labels"]
    assert labels["juju_model"] == MODEL
    assert labels["juju_application"] == APP


def test_every_unit_publishes_its_address_for_scraping(ctx, ca: SigningCA):
    relation = testing.Relation("metrics-endpoint", remote_app_name="prometheus-k8s")

    out = run_with(ctx, ca, relation, leader=False)

    data = out.get_relation(relation.id).local_unit_data
    assert data["prometheus_scrape_unit_address"] == peer_address(0)
    assert data["prometheus_scrape_unit_name"] == f"{APP}/0"


def test_non_leader_publishes_no_scrape_jobs(ctx, ca: SigningCA):
    relation = testing.Relation("metrics-endpoint", remote_app_name="prometheus-k8s")

    out = run_with(ctx, ca, relation, leader=False)

    assert "scrape_jobs" not in out.get_relation(relation.id).local_app_data


def test_metrics_port_is_opened_and_served_by_the_front(ctx, ca: SigningCA):
    deployment = deploy(ctx, ca)

    assert testing.TCPPort(9102) in deployment.state.opened_ports
    front = workload_file(deployment.container, FRONT_CONFIG).read_text()
    assert "bind :::9102 v6only" in front


# grafana-dashboard


def test_leader_publishes_the_fleet_dashboard_lzma_base64_encoded(ctx, ca: SigningCA):
    relation = testing.Relation("grafana-dashboard", remote_app_name="grafana-k8s")

    out = run_with(ctx, ca, relation)

    data = json.loads(out.get_relation(relation.id).local_app_data["dashboards"])
    template = data["templates"]["file:fleet.json"]
    dashboard = json.loads(LZMABase64.decompress(template["content"]))
    shipped = json.loads((ROOT / "src/grafana_dashboards/fleet.json").read_text())
    assert dashboard == shipped
    assert template["charm"] == APP
    assert data["uuid"]


def test_dashboard_queries_are_not_filtered_by_juju_topology(ctx, ca: SigningCA):
    # The forwarded LXD series carry cluster and member labels, no Juju topology labels.
    relation = testing.Relation("grafana-dashboard", remote_app_name="grafana-k8s")

    out = run_with(ctx, ca, relation)

    data = json.loads(out.get_relation(relation.id).local_app_data["dashboards"])
    assert data["templates"]["file:fleet.json"]["inject_dropdowns"] is False


def test_dashboard_sends_no_topology_so_grafana_leaves_its_queries_alone(ctx, ca: SigningCA):
    # grafana-k8s's consumer rewrites every query with juju_* matchers whenever the template's
    # juju_topology is non-empty, even with inject_dropdowns false.
    relation = testing.Relation("grafana-dashboard", remote_app_name="grafana-k8s")

    out = run_with(ctx, ca, relation)

    data = json.loads(out.get_relation(relation.id).local_app_data["dashboards"])
    assert data["templates"]["file:fleet.json"]["juju_topology"] == {}


def test_the_fleet_dashboard_uid_is_the_one_the_ui_links_to(ctx, ca: SigningCA):
    relation = testing.Relation("grafana-dashboard", remote_app_name="grafana-k8s")

    out = run_with(ctx, ca, relation)

    data = json.loads(out.get_relation(relation.id).local_app_data["dashboards"])
    template = data["templates"]["file:fleet.json"]
    assert template["dashboard_alt_uid"] == FLEET_DASHBOARD_UID
    assert json.loads(LZMABase64.decompress(template["content"]))["uid"] == FLEET_DASHBOARD_UID


def test_dashboards_are_not_rewritten_when_unchanged(ctx, ca: SigningCA):
    relation = testing.Relation("grafana-dashboard", remote_app_name="grafana-k8s")
    out = run_with(ctx, ca, relation)
    first = out.get_relation(relation.id).local_app_data["dashboards"]

    again = ctx.run(ctx.on.update_status(), out)

    assert again.get_relation(relation.id).local_app_data["dashboards"] == first


# logging (loki_push_api through Pebble)


def loki_relation(*urls: str) -> testing.Relation:
    return testing.Relation(
        "logging",
        remote_app_name="loki-k8s",
        remote_units_data={
            i: {"endpoint": json.dumps({"url": url})} for i, url in enumerate(urls)
        },
    )


def test_every_loki_unit_gets_a_pebble_log_target_for_every_service(ctx, ca: SigningCA):
    second = LOKI_URL.replace("loki-k8s-0", "loki-k8s-1")

    out = run_with(ctx, ca, loki_relation(LOKI_URL, second))

    targets = out.get_container(CONTAINER).plan.to_dict()["log-targets"]
    assert {name: target["location"] for name, target in targets.items()} == {
        "loki-k8s/0": LOKI_URL,
        "loki-k8s/1": second,
    }
    target = targets["loki-k8s/0"]
    assert target["type"] == "loki"
    assert target["services"] == ["all"]
    assert target["labels"]["juju_application"] == APP
    assert target["labels"]["juju_unit"] == f"{APP}/0"


def test_a_departed_loki_unit_stops_receiving_logs(ctx, ca: SigningCA):
    relation = loki_relation(LOKI_URL)
    out = run_with(ctx, ca, relation)
    departed = dataclasses.replace(out.get_relation(relation.id), remote_units_data={})

    out = ctx.run(
        ctx.on.relation_departed(departed, remote_unit=0, departing_unit=0),
        replace_relation(out, departed),
    )

    target = out.get_container(CONTAINER).plan.to_dict()["log-targets"]["loki-k8s/0"]
    assert target["services"][-1] == "-all"


def test_leader_publishes_its_topology_to_loki(ctx, ca: SigningCA):
    relation = loki_relation(LOKI_URL)

    out = run_with(ctx, ca, relation)

    metadata = json.loads(out.get_relation(relation.id).local_app_data["metadata"])
    assert metadata["application"] == APP


# send-remote-write and grafana-url (settings of the workload)


def test_remote_write_urls_of_every_prometheus_unit_reach_the_connector(ctx, ca: SigningCA):
    urls = [f"http://prometheus-k8s-{i}.cos:9090/api/v1/write" for i in (0, 1)]
    relation = testing.Relation(
        "send-remote-write",
        remote_app_name="prometheus-k8s",
        remote_units_data={
            i: {"remote_write": json.dumps({"url": u})} for i, u in enumerate(urls)
        },
    )

    out = run_with(ctx, ca, relation)

    assert env_of(out)["MCM_REMOTE_WRITE_URLS"] == ",".join(urls)


def test_invalid_remote_write_data_is_ignored(ctx, ca: SigningCA):
    relation = testing.Relation(
        "send-remote-write",
        remote_app_name="prometheus-k8s",
        remote_units_data={0: {"remote_write": "not json"}, 1: {"remote_write": '{"url": 5}'}},
    )

    out = run_with(ctx, ca, relation)

    assert env_of(out)["MCM_REMOTE_WRITE_URLS"] == ""


def test_without_remote_write_forwarding_is_off_and_the_ca_bundle_is_named(ctx, ca: SigningCA):
    env = env_of(deploy(ctx, ca).state)

    assert env["MCM_REMOTE_WRITE_URLS"] == ""
    assert env["MCM_CA_BUNDLE_FILE"] == "/etc/cluster-manager/tls/ca-bundle.crt"
    assert env["MCM_METRICS_PORT"] == "9102"


def test_grafana_url_reaches_the_workload(ctx, ca: SigningCA):
    deployment = deploy(ctx, ca)
    config = {**deployment.state.config, "grafana-url": "https://grafana.example.com"}

    out = ctx.run(ctx.on.config_changed(), dataclasses.replace(deployment.state, config=config))

    assert env_of(out)["MCM_GRAFANA_URL"] == "https://grafana.example.com"


def test_a_grafana_url_that_is_not_http_blocks(ctx, ca: SigningCA):
    deployment = deploy(ctx, ca)
    config = {**deployment.state.config, "grafana-url": "grafana.example.com"}

    out = ctx.run(ctx.on.config_changed(), dataclasses.replace(deployment.state, config=config))

    assert out.unit_status == testing.BlockedStatus(
        "invalid config: grafana-url 'grafana.example.com' is not an http(s) URL"
        f" (juju config {APP} grafana-url=https://grafana.example.com)"
    )


def test_the_shipped_dashboard_uid_is_generated_from_the_charm_and_file_name():
    from observability import dashboard_uid

    shipped = json.loads(Path(ROOT / "src/grafana_dashboards/fleet.json").read_text())

    assert shipped["uid"] == dashboard_uid(APP, "fleet.json") == FLEET_DASHBOARD_UID
