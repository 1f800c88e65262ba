"""The pages an admin sees survive what clusters and URLs send them (issue 9).

A heartbeat with absurd numbers must not break the fleet pages; a NUL character in a query
parameter, or in a form field, is a 400 that changes nothing.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from cluster_manager.protocol.rules import MAX_NAME_LENGTH, valid_name

from tests.support.clusters import enroll
from tests.support.oidc import browser, log_in, oidc_stack
from tools.oidc import OIDCProvider
from tools.postgres import PostgresServer
from tools.stack import Stack

HUGE = "ui-bounds-huge"
EDITED = "ui-bounds-edited"


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


def _tokens(stack: Stack) -> list[str]:
    listing = stack.management_session().get(
        f"{stack.management_url}/1.0/remote-cluster-join-token", timeout=10
    )
    return [token["cluster_name"] for token in listing.json()["metadata"]]


def _description(stack: Stack, name: str) -> str:
    cluster = stack.management_session().get(
        f"{stack.management_url}/1.0/remote-cluster/{name}", timeout=10
    )
    return cluster.json()["metadata"]["description"]


NUL_QUERIES = [
    "/ui/clusters?q=a%00b",
    "/ui/clusters?page=1%00",
    "/ui/clusters?sort=name%00",
    "/ui/?x%00=1",
    "/oidc/login?next=/ui/%00",
    "/ui/login?next=/ui/%00",
]


@pytest.mark.parametrize("target", NUL_QUERIES)
def test_a_nul_character_in_a_query_parameter_is_a_bad_request(
    stack: Stack, admin: requests.Session, target: str
) -> None:
    response = admin.get(f"{stack.management_url}{target}", allow_redirects=False, timeout=10)

    assert response.status_code == 400
    assert "NUL" in response.text
    assert "\x00" not in response.text


def test_a_nul_character_in_the_path_is_a_bad_request(
    stack: Stack, admin: requests.Session
) -> None:
    response = admin.get(f"{stack.management_url}/ui/clusters/a%00b", timeout=10)

    assert response.status_code == 400
    assert "NUL" in response.text


def test_a_page_number_past_any_fleet_shows_an_empty_page(
    stack: Stack, admin: requests.Session
) -> None:
    response = admin.get(f"{stack.management_url}/ui/clusters?page={10**20}", timeout=10)

    assert response.status_code == 200


def test_enrolling_with_a_nul_character_in_the_description_is_refused_and_mints_nothing(
    stack: Stack, admin: requests.Session
) -> None:
    form = {"cluster_name": "ui-bounds-nul", "description": "a\x00b", "expiry_hours": ""}

    response = admin.post(f"{stack.management_url}/ui/tokens", data=form, timeout=10)

    assert response.status_code == 400
    assert "description" in response.text
    assert "NUL" in response.text
    assert "ui-bounds-nul" not in _tokens(stack)


def test_saving_a_description_with_a_nul_character_is_refused_and_changes_nothing(
    stack: Stack, admin: requests.Session
) -> None:
    enroll(stack, EDITED)
    before = _description(stack, EDITED)

    response = admin.post(
        f"{stack.management_url}/ui/clusters/{EDITED}/settings",
        data={"description": "a\x00b", "disk_threshold": "80", "memory_threshold": "80"},
        timeout=10,
    )

    assert response.status_code == 400
    assert "NUL" in response.text
    assert _description(stack, EDITED) == before


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


def test_the_enroll_form_checks_names_by_the_rule_the_server_applies(
    admin: requests.Session, stack: Stack
) -> None:
    page = admin.get(f"{stack.management_url}/ui/tokens", timeout=10).text

    field = re.search(r'<input [^>]*id="cluster_name"[^>]*>', page)
    assert field is not None
    attributes = dict(re.findall(r'([a-z-]+)="([^"]*)"', field.group(0)))
    pattern = html.unescape(attributes["pattern"])
    assert attributes["maxlength"] == str(MAX_NAME_LENGTH)
    for name in ("mc-01", "a", "A.b_c-d", "x" * 63, "x" * 64, "-lead", ".lead", "sp ace", ""):
        assert (re.fullmatch(pattern, name) is not None) == valid_name(name), name
