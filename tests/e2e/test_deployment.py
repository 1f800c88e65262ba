"""The charm as deployed: two units rendered by ops.testing, real processes, real Traefik.

See deployment.py for how the charm's output becomes running processes and what is rewritten.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import ssl
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import yaml

from tests.e2e.deployment import (
    CONNECTOR_DOMAIN,
    CONTAINER_PORTS,
    MANAGEMENT_DOMAIN,
    Deployment,
    fingerprint,
    peer_certificate,
    proxy_header_v1,
)
from tests.support import raw_tls
from tests.unit.builders import SigningCA
from tools.jointoken import JoinToken
from tools.lxd import EmulatedLXD
from tools.microcloud import MicroCloudClient
from tools.payloads import PayloadGenerator

CLUSTER = "mc-e2e"
HEARTBEATS = 6
STATUS_PATH = "/1.0/remote-cluster/status"


def enroll(deployment: Deployment, cluster: str) -> dict:
    """Run enroll-cluster on the leader, its CLI command for real; return the action results.

    `printed` in the results is what the real command printed, for comparison.
    """
    _, result, results = deployment.action(0, "enroll-cluster", {"cluster": cluster})
    assert result.returncode == 0, result.stderr
    return {**results, "printed": json.loads(result.stdout)}


def client(deployment: Deployment, token: str) -> MicroCloudClient:
    """A MicroCloud emulator that reaches every token address through Traefik."""
    assert deployment.traefik is not None
    traefik = ("127.0.0.1", deployment.traefik.port)
    resolve = dict.fromkeys(JoinToken.decode(token).addresses, traefik)
    return MicroCloudClient(token, resolve=resolve, probe_every_request=False)


def management_get(deployment: Deployment, ca: SigningCA, token: str, path: str) -> Any:
    """GET a management API path through Traefik with SNI cm.e2e.test, verified by the CA."""
    assert deployment.traefik is not None
    context = raw_tls.tls_context(str(ca.certificate))
    response = raw_tls.request(
        deployment.traefik.port,
        MANAGEMENT_DOMAIN,
        context,
        "GET",
        path,
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status == 200, response.text
    return response.json["metadata"]


@pytest.fixture(scope="module")
def enrollment(deployment: Deployment) -> dict:
    return enroll(deployment, CLUSTER)


def served_connector_fingerprints(deployment: Deployment) -> dict[int, str]:
    """Each unit's connector certificate fingerprint, asked of its listener directly."""
    return {
        number: fingerprint(
            peer_certificate(
                ("127.0.0.1", unit.port("connector")),
                CONNECTOR_DOMAIN,
                proxy_header_v1(50000, CONTAINER_PORTS["connector"]),
            )
        )
        for number, unit in deployment.units.items()
    }


@contextlib.contextmanager
def joined_cluster(
    deployment: Deployment, token: str, name: str, heartbeats: int
) -> Iterator[MicroCloudClient]:
    """A cluster joined through Traefik that sent `heartbeats`, each over a new connection."""
    cluster = client(deployment, token)
    try:
        assert cluster.join().ok
        payloads = PayloadGenerator(name)
        for _ in range(heartbeats):
            cluster.close()
            response = cluster.heartbeat(payloads.payload())
            assert response.ok, response.text
        yield cluster
    finally:
        cluster.close()


@pytest.fixture(scope="module")
def joined(deployment: Deployment, enrollment: dict) -> Iterator[MicroCloudClient]:
    """The cluster joined through Traefik and sent heartbeats, each over a new connection."""
    with joined_cluster(deployment, enrollment["token"], CLUSTER, HEARTBEATS) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def api_token(deployment: Deployment) -> str:
    """An API token minted by the create-api-token action's command, run for real."""
    _, result, results = deployment.action(1, "create-api-token", {"name": "e2e"})
    assert result.returncode == 0, result.stderr
    return results["token"]


def test_both_units_become_active(deployment: Deployment) -> None:
    statuses = [state.unit_status.name for state in deployment.charm.states.values()]

    assert statuses == ["active", "active"]


def test_leader_migrates_the_real_database_with_the_charms_command(
    deployment: Deployment,
) -> None:
    command, result = deployment.migrations[0]

    assert command.command == ["python3", "-m", "cluster_manager", "migrate", "--json"]
    assert command.environment["MCM_DATABASE_URL"] == deployment.database.uri
    assert result.returncode == 0, result.stderr
    version = json.loads(result.stdout)["version"]
    peers = deployment.charm.states[1].get_relation(deployment.charm.peers.id)
    assert peers.local_app_data["schema-version"] == str(version)


def test_route_is_raw_tcp_passthrough_by_sni_to_both_units(deployment: Deployment) -> None:
    route = deployment.charm.route
    config = yaml.safe_load(route["config"])

    assert route["raw"] == "True"
    routers = config["tcp"]["routers"]
    assert {router["rule"] for router in routers.values()} == {
        f"HostSNI(`{MANAGEMENT_DOMAIN}`)",
        f"HostSNI(`{CONNECTOR_DOMAIN}`)",
    }
    for router in routers.values():
        assert router["entryPoints"] == ["websecure"]
        assert router["tls"] == {"passthrough": True}
        service = config["tcp"]["services"][router["service"]]["loadBalancer"]
        port = CONTAINER_PORTS[
            "management" if MANAGEMENT_DOMAIN in router["rule"] else "connector"
        ]
        assert sorted(server["address"] for server in service["servers"]) == sorted(
            f"{unit.address}:{port}" for unit in deployment.units.values()
        )
        assert service["proxyProtocol"] == {"version": 2}


def test_enroll_cluster_returns_the_real_token_and_its_join_command(
    deployment: Deployment, enrollment: dict
) -> None:
    token = JoinToken.decode(enrollment["token"])

    assert enrollment["token"] == enrollment["printed"]["token"]
    assert enrollment["cluster"] == CLUSTER
    assert token.server_name == CLUSTER
    assert enrollment["join-command"] == f"microcloud cluster-manager join {enrollment['token']}"


def test_token_sends_clusters_to_the_connector_domain_on_port_443(enrollment: dict) -> None:
    token = JoinToken.decode(enrollment["token"])

    assert token.addresses == (f"{CONNECTOR_DOMAIN}:443",)


def test_both_units_serve_the_connector_certificate_pinned_in_the_token(
    deployment: Deployment, enrollment: dict
) -> None:
    served = served_connector_fingerprints(deployment)

    assert served[0] == served[1] == JoinToken.decode(enrollment["token"]).fingerprint


@pytest.mark.parametrize("role", ["management", "connector"])
def test_unit_tls_listeners_refuse_connections_without_a_proxy_header(
    deployment: Deployment, role: str
) -> None:
    for unit in deployment.units.values():
        with pytest.raises((ssl.SSLError, OSError)):
            peer_certificate(("127.0.0.1", unit.port(role)), CONNECTOR_DOMAIN)


def test_heartbeats_over_new_connections_reach_both_units(
    deployment: Deployment, joined: MicroCloudClient
) -> None:
    def logged() -> dict[int, list[dict]]:
        return {
            number: [
                entry
                for entry in unit.access_log()
                if entry["method"] == "POST"
                and entry["path"] == STATUS_PATH
                and entry["listener"] == str(unit.port("connector"))
            ]
            for number, unit in deployment.units.items()
        }

    # HAProxy writes a request's log line once the request has ended, a moment after the answer.
    deadline = time.monotonic() + 5
    while sum(map(len, (heartbeats := logged()).values())) < HEARTBEATS:
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)

    assert all(entry["status"] == 200 for entries in heartbeats.values() for entry in entries)
    assert len(heartbeats[0]) + len(heartbeats[1]) == HEARTBEATS
    assert heartbeats[0] and heartbeats[1]


def test_management_api_lists_the_joined_cluster(
    deployment: Deployment, ca: SigningCA, joined: MicroCloudClient, api_token: str
) -> None:
    clusters = management_get(deployment, ca, api_token, "/1.0/remote-cluster")

    assert [cluster["name"] for cluster in clusters] == [CLUSTER]


def test_cluster_that_left_is_no_longer_listed(
    deployment: Deployment, ca: SigningCA, joined: MicroCloudClient, api_token: str
) -> None:
    leaver = client(deployment, enroll(deployment, "mc-e2e-leaving")["token"])
    with leaver:
        assert leaver.join().ok
        listed = management_get(deployment, ca, api_token, "/1.0/remote-cluster")

        response = leaver.leave()

    assert response.ok, response.text
    assert "mc-e2e-leaving" in [cluster["name"] for cluster in listed]
    clusters = management_get(deployment, ca, api_token, "/1.0/remote-cluster")
    assert [cluster["name"] for cluster in clusters] == [CLUSTER]


def management_request_to(
    unit: Any, ca: SigningCA, token: str, path: str
) -> tuple[int, dict[str, Any]]:
    """GET `path` from one unit's management listener (as Traefik reaches it: PROXY, then TLS)."""
    sock = socket.create_connection(("127.0.0.1", unit.port("management")), timeout=30)
    sock.sendall(proxy_header_v1(50001, CONTAINER_PORTS["management"]))
    context = raw_tls.tls_context(str(ca.certificate))
    connection = http.client.HTTPConnection(MANAGEMENT_DOMAIN, timeout=30)
    connection.sock = context.wrap_socket(sock, server_hostname=MANAGEMENT_DOMAIN)
    try:
        connection.request("GET", path, headers={"Authorization": f"Bearer {token}"})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def tunnel_holder(deployment: Deployment, cluster: str) -> int | None:
    """The unit whose tunnel process holds the cluster's tunnel, as PostgreSQL records it."""
    with psycopg.connect(deployment.database.uri) as conn:
        row = conn.execute(
            "SELECT t.holder FROM tunnels AS t JOIN clusters AS c ON c.id = t.cluster_id"
            " WHERE c.name = %s",
            (cluster,),
        ).fetchone()
    if row is None:
        return None
    port = int(row[0].rsplit(":", 1)[1])
    return next(n for n, unit in deployment.units.items() if unit.port("tunnel") == port)


def test_a_tunnel_held_by_one_unit_answers_a_request_sent_to_the_other(
    deployment: Deployment, ca: SigningCA, api_token: str
) -> None:
    # The tunnel goes through Traefik's TCP passthrough to whichever unit it picks.
    cluster = client(deployment, enroll(deployment, "mc-e2e-tunnel")["token"])
    assert cluster.join().ok
    lxd = EmulatedLXD()
    with cluster, cluster.tunnel(lxd, interval=0.2) as tunnel:
        assert tunnel.wait_connected(15), tunnel.errors
        deadline = time.monotonic() + 10
        while (holder := tunnel_holder(deployment, "mc-e2e-tunnel")) is None:
            assert time.monotonic() < deadline, "the tunnel was never registered"
            time.sleep(0.1)
        other = deployment.units[1 - holder]

        status, body = management_request_to(
            other, ca, api_token, "/1.0/remote-cluster/mc-e2e-tunnel/tunnel/1.0"
        )

    assert status == 200, body
    assert body["metadata"]["auth"] == "untrusted"  # an API-token caller sends LXD no credentials
    assert [request.target for request in lxd.requests] == ["/1.0"]
