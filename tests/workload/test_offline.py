"""Offline detection follows offline-after, never our suggested heartbeat interval (D4).

MicroCloud beats at its own `update_interval_seconds` (default 60) and ignores the
`next_update_in_seconds` we reply with, so a suggested interval of 10 s must not turn a
cluster that beats every minute offline. Heartbeat ages are set in the database: waiting
minutes for a real one to age would test the clock, not the rule.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from cluster_manager.db.pool import connect
from prometheus_client.parser import text_string_to_metric_families

from tests.support.clusters import KNOWN_HEARTBEAT, enroll
from tests.support.openapi import ValidatedSession
from tools.postgres import PostgresServer
from tools.stack import Stack

SUGGESTED_INTERVAL = 10
OFFLINE_AFTER = 180


@pytest.fixture(scope="module")
def stack(postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack that suggests 10 s heartbeats and calls a cluster offline after 180 s."""
    env = {
        "MCM_HEARTBEAT_INTERVAL": str(SUGGESTED_INTERVAL),
        "MCM_OFFLINE_AFTER": str(OFFLINE_AFTER),
    }
    url = postgres.create_database("offline_after")
    with Stack(Path(tmp_path_factory.mktemp("offline")), url, env=env) as running:
        yield running


def _last_heartbeat_seconds_ago(stack: Stack, name: str, seconds: int) -> None:
    with connect(stack.database_url) as conn:
        updated = conn.execute(
            "UPDATE cluster_details SET last_heartbeat_at = now() - make_interval(secs => %s)"
            " WHERE cluster_id = (SELECT id FROM clusters WHERE name = %s)",
            (seconds, name),
        ).rowcount
    assert updated == 1


def _connection_status(api: ValidatedSession, stack: Stack, name: str) -> str:
    response = api.get(f"{stack.management_url}/1.0/remote-cluster/{name}")
    assert response.status_code == 200, response.text
    return response.json()["metadata"]["connection_status"]


def _clusters_by_status(stack: Stack) -> dict[str, float]:
    response = requests.get(stack.metrics_url, timeout=5)
    assert response.status_code == 200
    return {
        sample.labels["status"]: sample.value
        for family in text_string_to_metric_families(response.text)
        if family.name == "mcm_clusters"
        for sample in family.samples
    }


def test_a_cluster_heard_from_50_seconds_ago_is_online_with_a_10_second_suggestion(
    management_api: ValidatedSession, stack: Stack
) -> None:
    enroll(stack, "beats-every-minute", KNOWN_HEARTBEAT)
    _last_heartbeat_seconds_ago(stack, "beats-every-minute", 50)

    status = _connection_status(management_api, stack, "beats-every-minute")

    assert status == "online"


def test_a_cluster_silent_for_longer_than_offline_after_is_offline(
    management_api: ValidatedSession, stack: Stack
) -> None:
    enroll(stack, "went-quiet", KNOWN_HEARTBEAT)
    _last_heartbeat_seconds_ago(stack, "went-quiet", OFFLINE_AFTER + 5)

    status = _connection_status(management_api, stack, "went-quiet")

    assert status == "offline"


def test_the_cli_lists_a_cluster_silent_for_longer_than_offline_after_as_offline(
    stack: Stack,
) -> None:
    enroll(stack, "quiet-in-cli", KNOWN_HEARTBEAT)
    _last_heartbeat_seconds_ago(stack, "quiet-in-cli", OFFLINE_AFTER + 5)

    listing = json.loads(stack.cli("list-clusters", "--json").stdout)

    assert {row["name"]: row["status"] for row in listing}["quiet-in-cli"] == "offline"


def test_the_fleet_gauges_count_clusters_by_offline_after(stack: Stack) -> None:
    before = _clusters_by_status(stack)
    enroll(stack, "gauge-recent", KNOWN_HEARTBEAT)
    enroll(stack, "gauge-stale", KNOWN_HEARTBEAT)
    _last_heartbeat_seconds_ago(stack, "gauge-recent", 50)
    _last_heartbeat_seconds_ago(stack, "gauge-stale", OFFLINE_AFTER + 5)

    after = _clusters_by_status(stack)

    assert after["online"] == before["online"] + 1
    assert after["offline"] == before["offline"] + 1


def test_a_cluster_that_never_reported_is_offline_in_the_api_the_cli_and_the_metrics(
    management_api: ValidatedSession, stack: Stack
) -> None:
    before = _clusters_by_status(stack)
    enroll(stack, "never-reported")

    status = _connection_status(management_api, stack, "never-reported")
    listing = json.loads(stack.cli("list-clusters", "--json").stdout)
    after = _clusters_by_status(stack)

    assert status == "offline"
    assert {row["name"]: row["status"] for row in listing}["never-reported"] == "offline"
    assert after["offline"] == before["offline"] + 1
    assert after["online"] == before["online"]
