"""Rate limits are the unit's, counted by the front (design D8), not by each worker process.

Every stack here runs three workers per app, so a limit that held per process would admit
three times as much. Each test gets a front of its own: the budgets are per client address,
every test's requests come from 127.0.0.1, and the front keeps every count in its memory.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator

import pytest
import requests

from tests.support import raw_tls
from tests.support.clusters import KNOWN_HEARTBEAT
from tools.microcloud import MicroCloudClient
from tools.postgres import PostgresServer
from tools.stack import CONNECTOR_DOMAIN, Stack

LIMIT = 5
"""Requests per minute per key, for both listeners."""


@pytest.fixture(scope="module")
def apps(postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    url = postgres.create_database("rate_limits")
    env = {
        "MCM_RATE_LIMIT_CONNECTOR": f"{LIMIT}/minute",
        "MCM_RATE_LIMIT_MANAGEMENT": f"{LIMIT}/minute",
        "MCM_WORKERS": "3",
    }
    with Stack(tmp_path_factory.mktemp("limits"), url, env=env) as running:
        yield running


@pytest.fixture
def limited_stack(apps: Stack) -> Stack:
    """The module's apps behind a new front: no count of an earlier test survives it.

    The tests' clusters have names of their own.
    """
    apps.restart_front()
    return apps


_strangers = itertools.count(1)


def _enrolled(stack: Stack, name: str) -> MicroCloudClient:
    client = MicroCloudClient(stack.mint_token(name), resolve=stack.resolve)
    assert client.join().ok
    client.probe_every_request = False
    return client


def _stranger(stack: Stack) -> MicroCloudClient:
    """A caller with a fresh certificate of its own that no cluster enrolled."""
    client = MicroCloudClient(
        stack.mint_token(f"stranger-{next(_strangers)}"), resolve=stack.resolve
    )
    client.probe_every_request = False
    return client


def test_an_enrolled_cluster_gets_the_limit_once_for_the_whole_unit(limited_stack: Stack) -> None:
    client = _enrolled(limited_stack, "rl-enrolled")

    statuses = [client.heartbeat(KNOWN_HEARTBEAT).status for _ in range(LIMIT + 3)]

    assert statuses == [200] * LIMIT + [429] * 3


def test_a_refusal_over_the_limit_is_an_envelope_with_retry_after(limited_stack: Stack) -> None:
    client = _enrolled(limited_stack, "rl-envelope")
    for _ in range(LIMIT):
        client.heartbeat(KNOWN_HEARTBEAT)

    refused = client.heartbeat(KNOWN_HEARTBEAT)

    assert refused.status == 429
    assert refused.json["type"] == "error"
    assert refused.json["error_code"] == 429
    assert refused.json["error"] == "too many requests"
    assert int(refused.headers["retry-after"]) == 60 // LIMIT + 1
    assert refused.headers["x-content-type-options"] == "nosniff"
    assert "default-src 'none'" in refused.headers["content-security-policy"]


def test_fresh_certificates_from_one_address_buy_no_fresh_budget(limited_stack: Stack) -> None:
    strangers = [_stranger(limited_stack) for _ in range(LIMIT + 4)]

    statuses = [stranger.heartbeat(KNOWN_HEARTBEAT).status for stranger in strangers]

    assert statuses == [403] * LIMIT + [429] * 4


def test_an_enrolled_cluster_keeps_its_budget_while_strangers_spend_the_address(
    limited_stack: Stack,
) -> None:
    client = _enrolled(limited_stack, "rl-neighbour")
    assert client.heartbeat(KNOWN_HEARTBEAT).ok
    strangers = [_stranger(limited_stack) for _ in range(LIMIT + 2)]
    assert [s.heartbeat(KNOWN_HEARTBEAT).status for s in strangers][-1] == 429

    response = client.heartbeat(KNOWN_HEARTBEAT)

    assert response.status == 200


def test_requests_without_a_certificate_are_limited_by_address(limited_stack: Stack) -> None:
    context = raw_tls.tls_context(limited_stack.connector_identity.cert_pem)

    statuses = [
        raw_tls.request(
            limited_stack.connector_port, CONNECTOR_DOMAIN, context, "GET", "/1.0/status"
        ).status
        for _ in range(LIMIT + 2)
    ]

    assert statuses == [200] * LIMIT + [429] * 2


def test_the_certificate_probe_is_never_limited(limited_stack: Stack) -> None:
    context = raw_tls.tls_context(limited_stack.connector_identity.cert_pem)

    statuses = {
        raw_tls.request(limited_stack.connector_port, CONNECTOR_DOMAIN, context, "GET", "/").status
        for _ in range(3 * LIMIT)
    }

    assert statuses == {200}


def test_the_management_limit_holds_for_the_whole_unit(limited_stack: Stack) -> None:
    url = f"{limited_stack.management_url}/1.0/status"
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE would override `verify`
    session.verify = limited_stack.management_ca

    statuses = [session.get(url, timeout=5).status_code for _ in range(LIMIT + 3)]

    assert statuses == [200] * LIMIT + [429] * 3


def test_a_cluster_that_left_is_counted_by_address_again(limited_stack: Stack) -> None:
    client = _enrolled(limited_stack, "rl-leaver")
    assert client.leave().ok

    # The join spent one of the address's five (the certificate was not enrolled yet); the
    # leave was the certificate's own. Its heartbeats now spend the address's remaining four.
    statuses = [client.heartbeat(KNOWN_HEARTBEAT).status for _ in range(LIMIT)]

    assert statuses == [403] * (LIMIT - 1) + [429]


def _refusal_lines(stack: Stack) -> list[dict]:
    lines = [line for line in stack.log("haproxy").splitlines() if line.startswith("{")]
    return [entry for entry in map(json.loads, lines) if entry["status"] == 429]


def test_a_burst_of_refusals_is_logged_once_naming_the_key_and_the_limit(
    limited_stack: Stack,
) -> None:
    client = _enrolled(limited_stack, "rl-logged")
    statuses = [client.heartbeat(KNOWN_HEARTBEAT).status for _ in range(3 * LIMIT)]
    assert statuses.count(429) == 2 * LIMIT

    time.sleep(1)  # HAProxy writes a line once its request has ended

    (line,) = _refusal_lines(limited_stack)
    assert line["note"] == (
        f"rate limit exceeded by certificate {client.cluster_cert.fingerprint}: more than"
        f" {LIMIT} requests in 60s; further refusals in this period are not logged"
    )
