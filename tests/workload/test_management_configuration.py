"""GET /1.0/configuration: the deployment's settings, never a secret (design D5)."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from cluster_manager.service.configuration import configuration
from cluster_manager.settings import Settings

from tests.support.openapi import ValidatedSession
from tools.postgres import PostgresServer
from tools.stack import Stack

DB_PASSWORD = "pw-" + secrets.token_hex(8)
GRAFANA_URL = "https://example.com/cos-grafana"


@pytest.fixture(scope="module")
def stack(postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack whose database URL carries a password (the test server trusts any password).

    It also has a Grafana URL, as the charm renders it from the grafana-url option.
    """
    url = postgres.create_database("configuration_secrets")
    with_password = url.replace("postgres@", f"postgres:{DB_PASSWORD}@", 1)
    assert with_password != url
    root = Path(tmp_path_factory.mktemp("configuration"))
    env = {"MCM_GRAFANA_URL": GRAFANA_URL}
    with Stack(root, with_password, env=env) as running:
        yield running


def _configuration(api: ValidatedSession, stack: Stack) -> dict[str, dict[str, str]]:
    response = api.get(f"{stack.management_url}/1.0/configuration")
    assert response.status_code == 200
    return response.json()["metadata"]


def test_configuration_never_contains_the_database_password(
    management_api: ValidatedSession, stack: Stack
) -> None:
    response = management_api.get(f"{stack.management_url}/1.0/configuration")

    assert DB_PASSWORD not in response.text
    assert stack.database_url not in response.text
    assert "postgresql://" not in response.text


def test_secret_keys_are_present_but_empty(management_api: ValidatedSession, stack: Stack) -> None:
    configuration = _configuration(management_api, stack)

    assert configuration["db_connection_string"]["value"] == ""
    assert configuration["oidc_client_secret"]["value"] == ""


def test_configuration_reports_the_connector_and_api_version(
    management_api: ValidatedSession, stack: Stack
) -> None:
    configuration = _configuration(management_api, stack)

    assert configuration["api_version"] == {
        "value": "1.0",
        "description": "The version of the API being used",
        "title": "API Version",
    }
    assert configuration["cluster_connector_domain"]["value"] == "cc.mcm.test"
    assert configuration["cluster_connector_port"]["value"] == str(stack.connector_port)


def test_configuration_reports_our_settings(
    management_api: ValidatedSession, stack: Stack
) -> None:
    configuration = _configuration(management_api, stack)

    values = {key: entry["value"] for key, entry in configuration.items()}
    assert values["heartbeat_interval"] == "60"
    assert values["offline_after"] == "180"
    assert values["join_token_expiry"] == "86400"
    assert values["history_retention_days"] == "30"
    assert values["rate_limit_connector"] == "60/minute"
    assert values["rate_limit_management"] == "600/minute"


def test_configuration_reports_the_grafana_url(
    management_api: ValidatedSession, stack: Stack
) -> None:
    configuration = _configuration(management_api, stack)

    assert configuration["grafana_base_url"] == {
        "value": GRAFANA_URL,
        "description": "The base URL of Grafana",
        "title": "Grafana base URL",
    }


def test_configuration_without_a_grafana_url_reports_it_empty() -> None:
    settings = Settings(database_url="postgresql://db/cm", connector_domain="cc.example.com")

    assert configuration(settings)["grafana_base_url"]["value"] == ""


def test_configuration_fingerprint_matches_the_served_certificate(
    management_api: ValidatedSession, stack: Stack
) -> None:
    configuration = _configuration(management_api, stack)

    from_cli = json.loads(stack.cli("show-connector-fingerprint", "--json").stdout)
    served = stack.connector_identity.fingerprint
    assert configuration["cluster_connector_fingerprint"]["value"] == served
    assert from_cli == {"fingerprint": served}


def test_every_entry_has_a_title_and_description(
    management_api: ValidatedSession, stack: Stack
) -> None:
    configuration = _configuration(management_api, stack)

    for key, entry in configuration.items():
        assert entry["title"], key
        assert entry["description"], key
