"""The connector's body limit (`connector-max-body-size`): over it 413, and nothing stored.

A heartbeat carries the LXD metrics of every member, so its size grows with the cluster;
this stack allows 1 MiB so that both sides of the limit are cheap to send.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import raw_tls
from tools import gojson
from tools.microcloud import MicroCloudClient
from tools.postgres import PostgresServer
from tools.stack import CONNECTOR_DOMAIN, Stack

LIMIT_MIB = 1
LIMIT = LIMIT_MIB * 1024 * 1024
BASE_HEARTBEAT = {
    "member_statuses": [{"status": "Online", "count": 3}],
    "server_metrics": [{"member": "m1", "metrics": "", "service": "LXD"}],
}


@pytest.fixture(scope="module")
def stack(postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    url = postgres.create_database("connector_body_limit")
    env = {"MCM_CONNECTOR_MAX_BODY_MIB": str(LIMIT_MIB)}
    with Stack(Path(tmp_path_factory.mktemp("body")), url, env=env) as running:
        yield running


def _heartbeat_of(size: int) -> bytes:
    """A heartbeat of exactly `size` bytes, padded with a comment in the metrics text."""
    empty = len(gojson.dump_bytes(BASE_HEARTBEAT))
    metrics = [{**BASE_HEARTBEAT["server_metrics"][0], "metrics": "#" * (size - empty)}]
    body = gojson.dump_bytes({**BASE_HEARTBEAT, "server_metrics": metrics})
    assert len(body) == size
    return body


def _enrolled(stack: Stack, name: str) -> MicroCloudClient:
    client = MicroCloudClient(stack.mint_token(name), resolve=stack.resolve)
    assert client.join().ok
    return client


def _last_heartbeat_at(stack: Stack, name: str) -> str | None:
    response = stack.management_session().get(f"{stack.management_url}/1.0/remote-cluster/{name}")
    assert response.status_code == 200, response.text
    return response.json()["metadata"]["last_heartbeat_at"]


def test_a_heartbeat_over_the_limit_is_413_in_the_lxd_envelope_and_not_stored(
    stack: Stack,
) -> None:
    client = _enrolled(stack, "body-too-big")
    context = raw_tls.tls_context(stack.connector_identity.cert_pem, client=client.cluster_cert)

    # The front answers from the announced length; a client still writing the body would race
    # the connection's close (a Go client returns the early answer, Python's may not).
    response = raw_tls.announce_body(
        stack.connector_port, CONNECTOR_DOMAIN, context, "/1.0/remote-cluster/status", LIMIT + 1
    )

    assert response.status == 413
    assert response.json == {
        "type": "error",
        "status": "",
        "status_code": 0,
        "operation": "",
        "error_code": 413,
        "error": "request body too large",
        "metadata": None,
    }
    assert _last_heartbeat_at(stack, "body-too-big") is None


def test_a_heartbeat_at_the_limit_is_accepted(stack: Stack) -> None:
    client = _enrolled(stack, "body-at-limit")

    response = client.heartbeat(_heartbeat_of(LIMIT))

    assert response.status == 200
    assert _last_heartbeat_at(stack, "body-at-limit") is not None
