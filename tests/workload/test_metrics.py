"""The unit's own metrics, scraped from the front's plain-HTTP metrics listener of a stack."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml
from cluster_manager import metrics
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.parser import text_string_to_metric_families

from tests.support.clusters import KNOWN_HEARTBEAT, enroll
from tests.support.receiver import RecordingReceiver
from tests.tools.metrics_check import parse_strict
from tools.payloads import PayloadGenerator
from tools.postgres import PostgresServer
from tools.stack import Stack

CONNECTOR_LIMIT = 50
"""Heartbeats per minute per enrolled cluster, for the whole unit."""


@pytest.fixture(scope="module")
def receiver() -> Iterator[RecordingReceiver]:
    with RecordingReceiver() as running:
        yield running


@pytest.fixture(scope="module")
def stack(
    postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory, receiver: RecordingReceiver
) -> Iterator[Stack]:
    url = postgres.create_database("metrics_stack")
    env = {
        "MCM_REMOTE_WRITE_URLS": receiver.url,
        "MCM_RATE_LIMIT_CONNECTOR": f"{CONNECTOR_LIMIT}/minute",
    }
    with Stack(Path(tmp_path_factory.mktemp("metrics")), url, env=env) as running:
        yield running


def scrape(stack: Stack) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the stack's /metrics, keyed by name and sorted labels."""
    response = requests.get(stack.metrics_url, timeout=5)
    assert response.status_code == 200
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_are_valid_exposition_text(stack: Stack):
    response = requests.get(stack.metrics_url, timeout=5)

    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    families = parse_strict(response.text)
    assert "mcm_http_request_duration_seconds" in families


def test_heartbeats_are_counted_by_result(stack: Stack):
    before = scrape(stack)
    client = enroll(stack, "m-beats")
    assert client.heartbeat(KNOWN_HEARTBEAT).ok
    assert client.heartbeat(b"{not json").status == 400

    after = scrape(stack)

    assert value(after, "mcm_heartbeats_total", result="ok") == (
        value(before, "mcm_heartbeats_total", result="ok") + 1
    )
    assert value(after, "mcm_heartbeats_total", result="invalid") == (
        value(before, "mcm_heartbeats_total", result="invalid") + 1
    )


def test_joins_are_counted_by_result(stack: Stack):
    before = scrape(stack)

    enroll(stack, "m-join")

    after = scrape(stack)
    assert value(after, "mcm_joins_total", result="ok") == (
        value(before, "mcm_joins_total", result="ok") + 1
    )


def test_request_latency_is_a_histogram_per_app_and_endpoint(stack: Stack):
    enroll(stack, "m-latency", KNOWN_HEARTBEAT)

    samples = scrape(stack)

    labels = {"app": "connector", "endpoint": "connector.heartbeat"}
    assert value(samples, "mcm_http_request_duration_seconds_count", **labels) >= 1
    assert value(samples, "mcm_http_request_duration_seconds_bucket", le="+Inf", **labels) >= 1


def test_fleet_gauges_come_from_the_database(stack: Stack):
    before = scrape(stack)
    enroll(stack, "m-fleet", KNOWN_HEARTBEAT)
    stack.mint_token("m-pending")

    after = scrape(stack)

    assert value(after, "mcm_clusters_enrolled") == value(before, "mcm_clusters_enrolled") + 1
    assert value(after, "mcm_clusters", status="online") == (
        value(before, "mcm_clusters", status="online") + 1
    )
    assert value(after, "mcm_join_tokens", state="valid") == (
        value(before, "mcm_join_tokens", state="valid") + 1
    )
    last = value(after, "mcm_cluster_last_heartbeat_timestamp_seconds", cluster="m-fleet")
    assert abs(last - time.time()) < 60


def test_offline_after_and_the_suggested_interval_are_exported(stack: Stack):
    samples = scrape(stack)

    assert value(samples, "mcm_offline_after_seconds") == 180
    assert value(samples, "mcm_heartbeat_interval_seconds") == 60


def test_heartbeats_the_front_refused_over_the_limit_are_counted(stack: Stack):
    before = scrape(stack)
    client = enroll(stack, "m-limited")
    client.probe_every_request = False

    statuses = [client.heartbeat(KNOWN_HEARTBEAT).status for _ in range(CONNECTOR_LIMIT + 5)]

    after = scrape(stack)
    assert statuses.count(429) == 5
    labels = {"app": "connector", "request": "heartbeat"}
    assert value(after, "mcm_rate_limited_requests_total", **labels) == (
        value(before, "mcm_rate_limited_requests_total", **labels) + 5
    )


def test_bad_metrics_text_is_answered_200_and_counted(stack: Stack):
    before = scrape(stack)
    heartbeat = {
        **KNOWN_HEARTBEAT,
        "server_metrics": [{"member": "m1", "metrics": "}{ not metrics", "service": "LXD"}],
    }

    response = enroll(stack, "m-badtext").heartbeat(heartbeat)

    assert response.status == 200
    deadline = time.monotonic() + 10
    name = "mcm_remote_write_bad_metrics_total"
    while value(scrape(stack), name) == value(before, name) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert value(scrape(stack), name) == value(before, name) + 1


def test_forwarded_heartbeats_are_counted_as_sent(stack: Stack, receiver: RecordingReceiver):
    before = scrape(stack)
    heartbeat = {
        **KNOWN_HEARTBEAT,
        "server_metrics": [
            {"member": "m1", "metrics": "lxd_uptime_seconds 5\n", "service": "LXD"}
        ],
    }

    assert enroll(stack, "m-sent").heartbeat(heartbeat).ok

    deadline = time.monotonic() + 10
    name = "mcm_remote_write_sent_total"
    while value(scrape(stack), name) == value(before, name) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert value(scrape(stack), name) == value(before, name) + 1
    assert any(
        labels.get("cluster") == "m-sent" for r in receiver.requests for labels, _, _ in r.series()
    )


def test_the_metrics_listener_serves_nothing_else(stack: Stack):
    response = requests.get(f"http://127.0.0.1:{stack.metrics_port}/1.0/remote-cluster", timeout=5)

    assert response.status_code == 404


def test_the_management_listener_does_not_serve_metrics(stack: Stack):
    session = stack.management_session()

    response = session.get(f"{stack.management_url}/metrics", timeout=5)

    assert response.status_code == 404
    assert "mcm_" not in response.text


# The dashboard and the alert rules only query metrics that exist.

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "src" / "grafana_dashboards" / "fleet.json"
ALERT_RULES = ROOT / "src" / "prometheus_alert_rules" / "cluster_manager.rules"
METRIC_NAME = re.compile(r"\b(?:mcm|lxd)_[A-Za-z0-9_:]+")


def declared_sample_names() -> set[str]:
    """Sample names of every metric the workload declares, observed yet or not."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
    names = set()
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            for family in value.describe():
                names |= {family.name + suffix for suffix in suffixes[family.type]}
    return names


def forwarded_sample_names() -> set[str]:
    generator = PayloadGenerator("names", members=2)
    return {
        sample.name
        for index in range(2)
        for family in text_string_to_metric_families(generator.metrics_text(index))
        for sample in family.samples
    }


def dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    queries = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    return queries + [
        v["definition"] for v in dashboard["templating"]["list"] if "definition" in v
    ]


def test_the_dashboard_is_valid_json_on_the_prometheus_data_source():
    dashboard = json.loads(DASHBOARD.read_text())

    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert panels
    assert all(p["datasource"] == {"type": "prometheus", "uid": "${prometheusds}"} for p in panels)
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    assert "cluster" in {v["name"] for v in dashboard["templating"]["list"]}


def test_every_dashboard_and_alert_query_names_a_metric_we_export_or_forward(stack: Stack):
    exported = {name for name, _ in scrape(stack)} | declared_sample_names()
    known = exported | forwarded_sample_names()
    rules = yaml.safe_load(ALERT_RULES.read_text())
    alerts = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]

    for query in dashboard_queries() + alerts:
        names = set(METRIC_NAME.findall(query))
        assert names, query
        assert names <= known, f"{query}: unknown {names - known}"


def test_the_dashboard_shows_forwarded_lxd_metrics_per_cluster():
    lxd_queries = [q for q in dashboard_queries() if "lxd_" in q]

    assert lxd_queries
    assert all('cluster=~"$cluster"' in q for q in lxd_queries)
