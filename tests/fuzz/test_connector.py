"""hypothesis on the connector's join and heartbeat bodies, sent as MicroCloud sends them.

Every body goes over mutual TLS with a MicroCloud-shaped certificate (tools.pki), through the
real front. Properties: never a 5xx; a refused body (4xx) changes nothing in the database; after
any accepted heartbeat the fleet pages an admin opens still answer 200.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.conftest import FuzzTally, budget, database_state
from tests.support.clusters import KNOWN_HEARTBEAT
from tests.support.oidc import browser, log_in, oidc_stack
from tools import pki
from tools.microcloud import MicroCloudClient
from tools.postgres import PostgresServer
from tools.stack import Stack

HEARTBEATS = 120
JOINS = 50
STATUS_PATH = "/1.0/remote-cluster/status"
JOIN_PATH = "/1.0/remote-cluster"
CLUSTER = "fuzz-target"

# Values at and past the edges the database and the UI's arithmetic care about.
edge_integers = st.sampled_from(
    [0, 1, -1, 2**31 - 1, 2**31, 2**53, 2**62, 2**63 - 1, 2**63, 2**64, -(2**63)]
)
integers = st.one_of(edge_integers, st.integers(min_value=0, max_value=2**40), st.integers())
texts = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["", "NaN", "1e309", "-1", "0.50", "12.34", "\x00", "a\x00b", "\u2028"]),
)
urls = st.one_of(
    texts,
    st.sampled_from(["https://10.0.0.1:8443", "javascript:alert(1)", "http://[::1]:8443/"]),
)
scalars = st.one_of(st.none(), st.booleans(), integers, st.floats(), texts)
distributions = st.one_of(
    st.none(),
    st.lists(st.fixed_dictionaries({"status": texts, "count": integers}), max_size=4),
    scalars,
)
pools = st.one_of(
    st.none(),
    st.lists(
        st.fixed_dictionaries(
            {"name": texts, "member": texts, "total": integers, "usage": integers}
        ),
        max_size=4,
    ),
)
server_metrics = st.one_of(
    st.none(),
    st.lists(
        st.fixed_dictionaries(
            {
                "member": texts,
                "service": st.sampled_from(["LXD", "other", ""]),
                "metrics": st.sampled_from(
                    ["", "lxd_uptime_seconds 5\n", "}{ not metrics", "# HELP x\nx NaN\n"]
                ),
            }
        ),
        max_size=2,
    ),
)
heartbeat_fields = {
    "ceph_statuses": distributions,
    "member_statuses": distributions,
    "instance_statuses": distributions,
    "cpu_total_count": st.one_of(integers, scalars),
    "cpu_load_1": st.one_of(texts, scalars),
    "cpu_load_5": texts,
    "cpu_load_15": texts,
    "memory_total_amount": st.one_of(integers, scalars),
    "memory_usage": integers,
    "storage_pool_usages": pools,
    "server_metrics": server_metrics,
    "ui_url": urls,
    "lxd_url": urls,
}
# Half the bodies start from a valid heartbeat and change a few fields, so that accepted ones
# (and the pages that show them) are explored as well as refused ones.
heartbeats = st.one_of(
    st.fixed_dictionaries({}, optional=heartbeat_fields),
    st.fixed_dictionaries({}, optional=heartbeat_fields).map(
        lambda changes: {**KNOWN_HEARTBEAT, **changes}
    ),
)


@pytest.fixture(scope="module")
def deployment(
    postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    url = postgres.create_database("fuzz_connector")
    limits = {"MCM_RATE_LIMIT_CONNECTOR": "1000000/minute"}
    with oidc_stack(Path(tmp_path_factory.mktemp("fuzz-connector")), url, **limits) as running:
        yield running[0]


@pytest.fixture(scope="module")
def cluster(deployment: Stack) -> MicroCloudClient:
    client = MicroCloudClient(
        deployment.mint_token(CLUSTER),
        pki.cluster_certificate(CLUSTER),
        resolve=deployment.resolve,
    )
    assert client.join().ok
    client.probe_every_request = False
    return client


@pytest.fixture(scope="module")
def admin(deployment: Stack) -> requests.Session:
    session = browser(deployment)
    assert log_in(session, deployment, "admin").status_code == 200
    return session


FLEET_PAGES = ("/ui/", "/ui/clusters", f"/ui/clusters/{CLUSTER}")


def _encode(body: Any) -> bytes:
    # MicroCloud's Go encoder never writes NaN; ours may, and then the body is not JSON.
    return json.dumps(body).encode()


@given(body=heartbeats)
@budget(HEARTBEATS)
def test_a_heartbeat_body_never_breaks_the_connector_or_the_fleet_pages(
    body: dict[str, Any],
    deployment: Stack,
    cluster: MicroCloudClient,
    admin: requests.Session,
    tally: FuzzTally,
) -> None:
    tally.record("POST /1.0/remote-cluster/status")
    before = database_state(deployment)

    response = cluster.request("POST", STATUS_PATH, _encode(body))

    assert response.status < 500, response.text
    if response.status >= 400:
        assert database_state(deployment) == before, response.text
    else:
        for page in FLEET_PAGES:
            answer = admin.get(f"{deployment.management_url}{page}", timeout=10)
            assert answer.status_code == 200, f"{page} after {body!r}: {answer.status_code}"


join_fields = {
    "cluster_name": st.one_of(texts, scalars),
    "cluster_certificate": st.one_of(texts, scalars),
    "token": st.one_of(texts, scalars),
    "cluster_uuid": texts,
}
joins = st.fixed_dictionaries({}, optional=join_fields)


_joiners = itertools.count(1)


@given(body=joins, own_certificate=st.booleans())
@budget(JOINS)
def test_a_join_body_never_breaks_the_connector_and_a_refusal_changes_nothing(
    body: dict[str, Any], own_certificate: bool, deployment: Stack, tally: FuzzTally
) -> None:
    tally.record("POST /1.0/remote-cluster")
    name = f"fuzz-joiner-{next(_joiners)}"
    token = deployment.mint_token(name)
    joiner = MicroCloudClient(token, resolve=deployment.resolve)
    if own_certificate:
        # A well-formed join whose other fields are fuzzed.
        body = {"cluster_name": name, **body}
        body.update(cluster_certificate=joiner.cluster_cert.cert_pem, token=token)
    before = database_state(deployment)

    response = joiner.request("POST", JOIN_PATH, _encode(body))

    assert response.status < 500, response.text
    if response.status >= 400:
        assert database_state(deployment) == before, response.text
    else:
        deployment.remove_cluster(str(body["cluster_name"]))
