"""The login without `MCM_PUBLIC_URL` (local runs): built from the request, loopback only.

The redirect URI then comes from the request's Host, port included; a Host that is not a
loopback address is no local run and gets no login, since it could be anyone's name.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.support.oidc import browser, log_in, oidc_stack
from tools.postgres import PostgresServer
from tools.stack import Stack


@pytest.fixture(scope="module")
def stack(postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    url = postgres.create_database("oidc_without_public_url")
    with oidc_stack(Path(tmp_path_factory.mktemp("oidc")), url, MCM_PUBLIC_URL="") as running:
        yield running[0]


def test_forged_host_gets_no_login(stack: Stack):
    response = browser(stack).get(
        f"{stack.management_url}/oidc/login",
        headers={"Host": "evil.example"},
        allow_redirects=False,
        timeout=10,
    )

    assert response.status_code == 400
    assert "Location" not in response.headers
    assert "MCM_PUBLIC_URL" in response.text


def test_redirect_uri_keeps_the_port_of_the_request(stack: Stack):
    response = browser(stack).get(
        f"{stack.management_url}/oidc/login", allow_redirects=False, timeout=10
    )

    sent = parse_qs(urlsplit(response.headers["Location"]).query)["redirect_uri"]
    assert sent == [f"https://127.0.0.1:{stack.management_port}/oidc/callback"]


def test_login_on_a_loopback_address_works(stack: Stack):
    response = log_in(browser(stack), stack, "admin")

    assert response.status_code == 200
    assert response.headers["Refresh"] == "0; url=/ui/"


def test_slash_redirect_keeps_the_port_of_the_request(stack: Stack):
    response = browser(stack).get(
        f"{stack.management_url}/ui//clusters", allow_redirects=False, timeout=10
    )

    assert response.headers["Location"] == f"{stack.management_url}/ui/clusters"
