"""The pages an admin sees survive what clusters and URLs send them (issue 9).

A heartbeat with absurd numbers must not break the fleet pages.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.clusters import enroll
from tests.support.oidc import browser, log_in, oidc_stack
from tools.oidc import OIDCProvider
from tools.postgres import PostgresServer
from tools.stack import Stack

HUGE = "ui-bounds-huge"


@pytest.fixture(scope="module")
def deployment(
    postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Stack, OIDCProvider]]:
    url = postgres.create_database("ui_input_bounds")
    with oidc_stack(Path(tmp_path_factory.mktemp("ui-bounds")), url) as running:
        yield running


@pytest.fixture(scope="module")
def stack(deployment: tuple[Stack, OIDCProvider]) -> Stack:
    return deployment[0]


@pytest.fixture(scope="module")
def admin(stack: Stack) -> requests.Session:
    """A browser logged in as a member of `admins`."""
    session = browser(stack)
    assert log_in(session, stack, "admin").status_code == 200
    return session


@pytest.fixture(scope="module")
def huge_cluster(stack: Stack) -> str:
    """A cluster reporting 200 PB of memory, half of it used.

    Its tests come last in the module: before the fix it broke every fleet page.
    """
    enroll(stack, HUGE, {"memory_total_amount": 2 * 10**17, "memory_usage": 10**17})
    return HUGE


def test_the_overview_answers_after_a_heartbeat_reporting_200_pb_of_memory(
    stack: Stack, admin: requests.Session, huge_cluster: str
) -> None:
    response = admin.get(f"{stack.management_url}/ui/", timeout=10)

    assert response.status_code == 200
    assert "177.6 PiB" in response.text  # the fleet's memory: 2e17 bytes


def test_the_cluster_list_shows_a_cluster_reporting_200_pb_of_memory(
    stack: Stack, admin: requests.Session, huge_cluster: str
) -> None:
    response = admin.get(f"{stack.management_url}/ui/clusters", timeout=10)

    assert response.status_code == 200
    assert huge_cluster in response.text
