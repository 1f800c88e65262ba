"""A browser session's requests through a tunnel: its OIDC token goes to LXD, LXD's cookies stay.

As upstream's manager does, the caller's OIDC access token reaches LXD as `Authorization:
Bearer`; an LXD that trusts the same issuer then starts a session and sets its `session`
cookie (canonical/lxd `lxd/auth/oidc/oidc.go`, emulated by `tools/lxd.py`). The manager keeps
that cookie for the browser session and cluster, and sends it on the session's next requests.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.clusters import enroll
from tests.support.oidc import browser, log_in, oidc_stack, session_cookie
from tools.lxd import EmulatedLXD
from tools.oidc import OIDCProvider
from tools.postgres import PostgresServer
from tools.stack import Stack
from tools.tunnel import TunnelClient

CLUSTER = "tun-oidc"


@pytest.fixture(scope="module")
def deployment(
    postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Stack, OIDCProvider]]:
    url = postgres.create_database("tunnel_sessions")
    with oidc_stack(Path(tmp_path_factory.mktemp("tunnel-oidc")), url) as running:
        yield running


@pytest.fixture(scope="module")
def stack(deployment: tuple[Stack, OIDCProvider]) -> Stack:
    return deployment[0]


@pytest.fixture(scope="module")
def lxd(stack: Stack) -> Iterator[EmulatedLXD]:
    emulated = EmulatedLXD()
    tunnel: TunnelClient = enroll(stack, CLUSTER).tunnel(emulated, interval=0.2)
    with tunnel:
        assert tunnel.wait_connected(10), tunnel.errors
        yield emulated


def logged_in(stack: Stack) -> requests.Session:
    session = browser(stack)
    assert log_in(session, stack, "admin").status_code == 200
    return session


def instances(session: requests.Session, stack: Stack) -> requests.Response:
    url = f"{stack.management_url}/1.0/remote-cluster/{CLUSTER}/tunnel/1.0/instances"
    return session.get(url, params={"recursion": "1"}, timeout=30)


def test_a_browser_sessions_access_token_lets_lxd_list_the_instances(
    stack: Stack, lxd: EmulatedLXD
) -> None:
    session = logged_in(stack)

    response = instances(session, stack)

    assert response.status_code == 200, response.text
    assert [i["name"] for i in response.json()["metadata"]] == [
        i["name"] for i in lxd.instances or []
    ]
    bearer = lxd.requests[-1].header("Authorization") or ""
    assert bearer.startswith("Bearer ") and len(bearer) > len("Bearer ")
    assert session_cookie(session) not in bearer


def test_lxds_session_cookie_never_reaches_the_browser(stack: Stack, lxd: EmulatedLXD) -> None:
    session = logged_in(stack)

    response = instances(session, stack)

    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers
    assert "session" not in session.cookies


def test_the_next_request_of_the_session_sends_lxds_cookie(stack: Stack, lxd: EmulatedLXD) -> None:
    session = logged_in(stack)
    instances(session, stack)
    assert lxd.requests[-1].header("Cookie") == ""

    instances(session, stack)

    assert (lxd.requests[-1].header("Cookie") or "").startswith("session=")


def test_another_browser_session_does_not_get_the_first_ones_lxd_cookie(
    stack: Stack, lxd: EmulatedLXD
) -> None:
    first = logged_in(stack)
    instances(first, stack)
    second = logged_in(stack)

    instances(second, stack)

    assert lxd.requests[-1].header("Cookie") == ""


def cluster_page(session: requests.Session, stack: Stack, name: str) -> str:
    response = session.get(f"{stack.management_url}/ui/clusters/{name}", timeout=30)
    assert response.status_code == 200, response.text
    return response.text


def test_the_cluster_page_lists_the_instances_read_through_the_tunnel(
    stack: Stack, lxd: EmulatedLXD
) -> None:
    page = cluster_page(logged_in(stack), stack, CLUSTER)

    assert "Tunnel registered" in page
    assert 'data-testid="instances"' in page
    for instance in lxd.instances or []:
        assert f"<td>{instance['name']}</td>" in page
        assert f"<td>{instance['location']}</td>" in page


def test_the_cluster_page_of_a_cluster_without_tunnel_says_how_to_open_one(stack: Stack) -> None:
    enroll(stack, "tun-oidc-none")

    page = cluster_page(logged_in(stack), stack, "tun-oidc-none")

    assert "No reverse tunnel" in page
    assert "microcloud cluster-manager set reverse_tunnel true" in page


def test_the_cluster_page_says_when_lxd_refuses_the_user(stack: Stack) -> None:
    # This LXD trusts another issuer: every bearer token of ours is invalid there (401).
    strict = EmulatedLXD(tokens={"a-token-of-another-issuer"})
    with enroll(stack, "tun-oidc-strict").tunnel(strict, interval=0.2) as tunnel:
        assert tunnel.wait_connected(10), tunnel.errors

        page = cluster_page(logged_in(stack), stack, "tun-oidc-strict")

    assert "Instances not available" in page
    assert "LXD refused to list the instances (401" in page
