"""Who may call the management API: API tokens, 401 without, 403 for non-admins."""

from __future__ import annotations

from pathlib import Path

import psycopg
import yaml
from cluster_manager.auth.api_tokens import api_token_authenticator
from cluster_manager.auth.identity import Identity, install_authenticators
from cluster_manager.factories import create_management_app
from cluster_manager.settings import Settings
from flask import Request

from tests.support.openapi import OUR_DOCUMENT, ValidatedSession, validated_session
from tools.stack import CONNECTOR_DOMAIN, Stack


def _with_token(stack: Stack, token: str) -> ValidatedSession:
    return validated_session(stack.management_session(token=token))


def test_request_without_credentials_is_401(anonymous_api: ValidatedSession, stack: Stack) -> None:
    response = anonymous_api.get(f"{stack.management_url}/1.0/remote-cluster")

    assert response.status_code == 401
    assert response.json()["error"] == "Unauthorized"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_unknown_api_token_is_401(stack: Stack) -> None:
    response = _with_token(stack, "mcm_not-a-real-token").get(
        f"{stack.management_url}/1.0/remote-cluster"
    )

    assert response.status_code == 401


def test_token_of_another_format_is_401(stack: Stack) -> None:
    response = _with_token(stack, "garbage").get(f"{stack.management_url}/1.0/configuration")

    assert response.status_code == 401


def test_valid_api_token_is_admitted(management_api: ValidatedSession, stack: Stack) -> None:
    response = management_api.get(f"{stack.management_url}/1.0/remote-cluster")

    assert response.status_code == 200


def test_whoami_names_the_api_token(stack: Stack) -> None:
    token = stack.create_api_token("whoami-bot")

    response = _with_token(stack, token).get(f"{stack.management_url}/1.0")

    assert response.status_code == 200
    assert response.json()["metadata"] == {
        "email": "api-token@cluster-manager.invalid",
        "name": "whoami-bot",
        "groups": ["admins"],
        "trusted": True,
        "auth_method": "api-token",
    }


def test_whoami_without_credentials_is_401(anonymous_api: ValidatedSession, stack: Stack) -> None:
    response = anonymous_api.get(f"{stack.management_url}/1.0")

    assert response.status_code == 401


def test_status_needs_no_credentials(anonymous_api: ValidatedSession, stack: Stack) -> None:
    response = anonymous_api.get(f"{stack.management_url}/1.0/status")

    assert response.status_code == 200
    assert response.json()["metadata"] is None


def test_openapi_document_is_served_without_credentials(
    anonymous_api: ValidatedSession, stack: Stack
) -> None:
    response = anonymous_api.get(f"{stack.management_url}/1.0/openapi.yaml")

    assert response.status_code == 200
    assert yaml.safe_load(response.text) == yaml.safe_load(OUR_DOCUMENT.read_text())


def test_api_token_use_is_recorded(stack: Stack) -> None:
    token = stack.create_api_token("used-bot")

    _with_token(stack, token).get(f"{stack.management_url}/1.0")

    with psycopg.connect(stack.database_url) as conn:
        row = conn.execute("SELECT last_used_at FROM api_tokens WHERE name = 'used-bot'")
        last_used = row.fetchone()
    assert last_used is not None
    assert last_used[0] is not None


def _settings(stack: Stack, tmp_path: Path) -> Settings:
    return Settings(
        database_url=stack.database_url,
        connector_domain=CONNECTOR_DOMAIN,
        connector_cert_file=stack.tls_dir / "connector.crt",
        run_dir=tmp_path,
    )


def test_authenticated_non_admin_is_403(stack: Stack, tmp_path: Path) -> None:
    # Any plugged-in authenticator is treated like the API token and session ones.
    def viewer(_: Request) -> Identity:
        return Identity(name="viewer", email="viewer@example.com", groups=(), method="test")

    app = create_management_app(_settings(stack, tmp_path))
    install_authenticators(app, [api_token_authenticator, viewer])

    denied = app.test_client().get("/1.0/remote-cluster")
    whoami = app.test_client().get("/1.0")

    assert denied.status_code == 403
    assert denied.get_json()["error"] == "permission denied"
    assert whoami.status_code == 200
    assert whoami.get_json()["metadata"]["groups"] == []
