"""Forwarding to a real Prometheus: emulated clusters heartbeat, their LXD series arrive.

A real Prometheus (Debian `prometheus`, remote-write receiver on) on a loopback port, the
workload stack (the front + both apps) configured to push to it, and two emulated MicroCloud
clusters with two members each sending realistic heartbeats over mTLS.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.support.clusters import enroll
from tests.support.prometheus import PROMETHEUS, PrometheusServer
from tools.microcloud import MicroCloudClient
from tools.payloads import PayloadGenerator
from tools.postgres import PostgresServer
from tools.stack import Stack

pytestmark = pytest.mark.skipif(not Path(PROMETHEUS).exists(), reason="prometheus not installed")

CLUSTERS = ("edge-east", "edge-west")


@pytest.fixture(scope="module")
def stack(
    postgres: PostgresServer,
    tmp_path_factory: pytest.TempPathFactory,
    prometheus: PrometheusServer,
) -> Iterator[Stack]:
    env = {
        "MCM_REMOTE_WRITE_URLS": prometheus.remote_write_url,
        "MCM_REMOTE_WRITE_QUEUE_SIZE": "4",
        "MCM_REMOTE_WRITE_OUTBOX_BYTES": "1",  # one request waits: drops come soon
        "MCM_RATE_LIMIT_CONNECTOR": "100000/minute",
    }
    url = postgres.create_database("e2e_prometheus")
    with Stack(Path(tmp_path_factory.mktemp("stack")), url, env=env) as running:
        yield running


@pytest.fixture(scope="module")
def fleet(stack: Stack) -> dict[str, tuple[MicroCloudClient, PayloadGenerator]]:
    clients = {}
    for name in CLUSTERS:
        client = enroll(stack, name)
        client.probe_every_request = False
        clients[name] = (client, PayloadGenerator(name, members=2))
    return clients


def heartbeat_all(fleet: dict[str, tuple[MicroCloudClient, PayloadGenerator]]) -> list[float]:
    """One heartbeat per cluster; the seconds each took (every one must be a 200)."""
    durations = []
    for client, generator in fleet.values():
        started = time.perf_counter()
        response = client.heartbeat(generator.payload())
        durations.append(time.perf_counter() - started)
        assert response.status == 200, response.text
    return durations


def own_metric(stack: Stack, name: str) -> float:
    text = requests.get(stack.metrics_url, timeout=5).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                return sample.value
    return 0.0


def test_lxd_series_of_every_member_are_queryable_with_cluster_and_member_labels(
    prometheus: PrometheusServer, fleet: dict
):
    heartbeat_all(fleet)

    result = prometheus.wait_for("lxd_uptime_seconds", lambda r: len(r) == 4)

    assert sorted(
        (item["metric"]["cluster"], item["metric"]["member"], item["metric"]["job"])
        for item in result
    ) == [
        ("edge-east", "micro1", "edge_east"),
        ("edge-east", "micro2", "edge_east"),
        ("edge-west", "micro1", "edge_west"),
        ("edge-west", "micro2", "edge_west"),
    ]


def test_instance_series_keep_their_labels_and_counter_names(
    prometheus: PrometheusServer, fleet: dict
):
    heartbeat_all(fleet)

    result = prometheus.wait_for('lxd_cpu_seconds_total{cluster="edge-west",mode="user"}')

    assert {"name", "project", "type", "cpu", "member"} <= set(result[0]["metric"])


def test_heartbeats_stay_fast_while_prometheus_is_down_and_pushes_resume_after(
    stack: Stack, prometheus: PrometheusServer, fleet: dict
):
    dropped_before = own_metric(stack, "mcm_remote_write_dropped_total")
    prometheus.stop()

    durations = [d for _ in range(15) for d in heartbeat_all(fleet)]

    assert max(durations) < 1.0, durations
    assert own_metric(stack, "mcm_remote_write_dropped_total") > dropped_before

    prometheus.start()
    restarted_ms = time.time() * 1000
    heartbeat_all(fleet)
    deadline = time.monotonic() + 30
    result: list = []
    while time.monotonic() < deadline:
        result = prometheus.query('timestamp(lxd_uptime_seconds{cluster="edge-east"}) * 1000')
        if len(result) == 2 and all(float(r["value"][1]) >= restarted_ms for r in result):
            break
        heartbeat_all(fleet)
        time.sleep(0.5)
    else:
        pytest.fail(f"no fresh samples after Prometheus returned: {result}")
