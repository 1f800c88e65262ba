"""Without an identity provider the UI says so, and the API keeps working with API tokens."""

from __future__ import annotations

from tests.support.openapi import ValidatedSession
from tools.stack import Stack


def test_ui_explains_that_login_is_not_configured(stack: Stack):
    session = stack.management_session()
    del session.headers["Authorization"]

    response = session.get(f"{stack.management_url}/ui/", timeout=10)

    assert response.status_code == 503
    assert "Login not configured" in response.text


def test_api_tokens_work_without_oidc(management_api: ValidatedSession, stack: Stack):
    response = management_api.get(f"{stack.management_url}/1.0/remote-cluster")

    assert response.status_code == 200


def test_root_redirects_to_the_ui(stack: Stack):
    session = stack.management_session()

    response = session.get(f"{stack.management_url}/", allow_redirects=False, timeout=10)

    assert response.status_code == 308
    assert response.headers["Location"].endswith("/ui/")
