"""`juju refresh` of the deployment in a box: every unit restarts in a new pod with the same data.

A cluster enrolls and heartbeats through Traefik; then `Deployment.refresh()` deletes and
re-creates each unit's pod (highest unit first), runs the upgrade's hooks on the charm and
restarts the unit's processes from its output state (see deployment.py). Afterwards the same
connector certificate is served, the cluster is still enrolled and its heartbeats, signed
with its same certificate, are accepted by both units.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from cluster_manager.db.migrate import available_migrations
from ops import testing

from pebble_layer import build_layer
from tests.e2e.deployment import (
    ENV_FILE,
    Deployment,
    container_path,
)
from tests.e2e.test_deployment import (
    STATUS_PATH,
    enroll,
    joined_cluster,
    management_get,
    served_connector_fingerprints,
)
from tests.unit.builders import CONTAINER, SigningCA, cli
from tools.jointoken import JoinToken
from tools.microcloud import MicroCloudClient
from tools.payloads import PayloadGenerator
from workload import parse_env_file

CLUSTER = "mc-refresh"
HEARTBEATS = 6


@dataclasses.dataclass(frozen=True)
class Before:
    """What the refresh must keep (and what it must change), read just before it."""

    identity_secret: testing.Secret
    peer_app_data: dict[str, str]
    route: str
    schema_version: int
    database_urls: dict[int, str]
    pids: dict[int, dict[str, int]]
    heartbeats_logged: dict[int, int]


def identity_secret(state: testing.State) -> testing.Secret:
    (secret,) = (s for s in state.secrets if s.label == "connector-identity")
    return secret


def peer_app_data(deployment: Deployment, unit: int) -> dict[str, str]:
    peers = deployment.charm.states[unit].get_relation(deployment.charm.peers.id)
    return dict(peers.local_app_data)


def schema_version(deployment: Deployment) -> int:
    """The highest migration applied to the real database."""
    with psycopg.connect(deployment.database.uri) as conn:
        row = conn.execute("SELECT max(version) FROM schema_migrations").fetchone()
    assert row is not None
    return int(row[0])


def database_urls(deployment: Deployment) -> dict[int, str]:
    """Each unit's MCM_DATABASE_URL, in the env file the charm pushed into its container."""
    urls = {}
    for number, state in deployment.charm.states.items():
        ctx = deployment.charm.contexts[number]
        path = container_path(ctx, state.get_container(CONTAINER), ENV_FILE)
        urls[number] = parse_env_file(path.read_text())["MCM_DATABASE_URL"]
    return urls


def heartbeats_logged(deployment: Deployment) -> dict[int, list[dict[str, Any]]]:
    """Each unit's front's access log entries of heartbeats, since the deployment started."""
    return {
        number: [
            entry
            for entry in unit.access_log()
            if entry["method"] == "POST" and entry["path"] == STATUS_PATH
        ]
        for number, unit in deployment.units.items()
    }


@pytest.fixture(scope="module")
def enrollment(deployment: Deployment) -> dict:
    return enroll(deployment, CLUSTER)


@pytest.fixture(scope="module")
def cluster(deployment: Deployment, enrollment: dict) -> Iterator[MicroCloudClient]:
    """The cluster, joined through Traefik, after its heartbeats over new connections."""
    with joined_cluster(deployment, enrollment["token"], CLUSTER, HEARTBEATS) as joined:
        yield joined


@pytest.fixture(scope="module")
def api_token(deployment: Deployment) -> str:
    """An API token minted before the refresh (it lives in the database)."""
    _, result, results = deployment.action(0, "create-api-token", {"name": "e2e-refresh"})
    assert result.returncode == 0, result.stderr
    return results["token"]


@pytest.fixture(scope="module")
def before(deployment: Deployment, cluster: MicroCloudClient, api_token: str) -> Before:
    time.sleep(0.5)  # HAProxy logs a request once it has ended, a moment after the answer
    return Before(
        identity_secret=identity_secret(deployment.charm.states[0]),
        peer_app_data=peer_app_data(deployment, 0),
        route=deployment.charm.route["config"],
        schema_version=schema_version(deployment),
        database_urls=database_urls(deployment),
        pids={number: unit.pids for number, unit in deployment.units.items()},
        heartbeats_logged={n: len(e) for n, e in heartbeats_logged(deployment).items()},
    )


@pytest.fixture(scope="module")
def refreshed(deployment: Deployment, before: Before) -> Deployment:
    deployment.refresh()
    return deployment


def test_every_unit_runs_anew_from_an_empty_container_on_the_new_layer(
    refreshed: Deployment, before: Before
) -> None:
    for number, unit in refreshed.units.items():
        assert refreshed.charm.pods[number] == 1
        assert set(unit.pids) == set(before.pids[number]) == set(build_layer(tunnel=True).services)
        assert all(unit.pids[name] != before.pids[number][name] for name in unit.pids)
        assert unit.plan["services"] == build_layer(tunnel=True).to_dict().get("services")


def test_both_units_are_active_after_the_refresh(refreshed: Deployment) -> None:
    statuses = [state.unit_status.name for state in refreshed.charm.states.values()]

    assert statuses == ["active", "active"]


def test_the_connector_secret_and_its_fingerprint_are_unchanged(
    refreshed: Deployment, before: Before
) -> None:
    for number, state in refreshed.charm.states.items():
        secret = identity_secret(state)
        assert (secret.id, secret.latest_content) == (
            before.identity_secret.id,
            before.identity_secret.latest_content,
        )
        data = peer_app_data(refreshed, number)
        for key in ("connector-secret-id", "connector-fingerprint"):
            assert data[key] == before.peer_app_data[key]


def test_both_units_serve_the_certificate_pinned_in_the_join_token(
    refreshed: Deployment, enrollment: dict
) -> None:
    served = served_connector_fingerprints(refreshed)

    assert served[0] == served[1] == JoinToken.decode(enrollment["token"]).fingerprint


def test_the_clusters_heartbeats_with_its_certificate_reach_both_units(
    refreshed: Deployment, enrollment: dict, cluster: MicroCloudClient, before: Before
) -> None:
    assert refreshed.traefik is not None
    traefik = ("127.0.0.1", refreshed.traefik.port)
    resolve = dict.fromkeys(JoinToken.decode(enrollment["token"]).addresses, traefik)
    payloads = PayloadGenerator(CLUSTER)
    # The first request probes the token's address and checks the pinned fingerprint; the
    # heartbeats then go over new connections, which Traefik sends to one unit and the other.
    with MicroCloudClient(
        enrollment["token"], cluster.cluster_cert, resolve=resolve, probe_every_request=False
    ) as same_cluster:
        for _ in range(HEARTBEATS):
            same_cluster.close()
            response = same_cluster.heartbeat(payloads.payload())
            assert response.ok, response.text

    deadline = time.monotonic() + 5
    while True:
        new = {
            n: e[before.heartbeats_logged[n] :] for n, e in heartbeats_logged(refreshed).items()
        }
        if sum(map(len, new.values())) >= HEARTBEATS or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert len(new[0]) + len(new[1]) == HEARTBEATS
    assert new[0] and new[1]
    assert all(entry["status"] == 200 for entries in new.values() for entry in entries)


def test_the_cluster_is_still_listed_with_the_token_minted_before(
    refreshed: Deployment, ca: SigningCA, api_token: str
) -> None:
    clusters = management_get(refreshed, ca, api_token, "/1.0/remote-cluster")

    assert [cluster["name"] for cluster in clusters] == [CLUSTER]


def test_the_leader_migrated_the_real_database_in_upgrade_charm_and_nothing_changed(
    refreshed: Deployment, before: Before
) -> None:
    command, result = refreshed.migrations[-1]

    assert command.command == [*cli("migrate"), "--json"]
    assert command.environment["MCM_DATABASE_URL"] == refreshed.database.uri
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"version": before.schema_version, "applied": []}
    assert schema_version(refreshed) == before.schema_version == available_migrations()[-1].version
    for number in refreshed.units:
        data = peer_app_data(refreshed, number)
        assert data["schema-version"] == str(before.schema_version)
        assert data["schema-database"] == before.peer_app_data["schema-database"]


def test_every_unit_keeps_the_database_url(refreshed: Deployment, before: Before) -> None:
    assert (
        database_urls(refreshed)
        == before.database_urls
        == dict.fromkeys(refreshed.units, refreshed.database.uri)
    )


def test_the_route_is_unchanged(refreshed: Deployment, before: Before) -> None:
    assert refreshed.charm.route["config"] == before.route
