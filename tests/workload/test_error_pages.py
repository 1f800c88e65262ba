"""A browser's errors are pages in the UI's layout; the API's stay LXD envelopes (issue 11).

Under `/ui` and `/oidc` the management app answers its errors with an HTML page that keeps
the status and the security headers and never shows a stack trace; `/1.0` and the connector
keep the envelope. The database outage's page is in test_database_outage.py.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import requests
from cluster_manager.auth.identity import ADMIN_GROUP, Identity, install_authenticators
from cluster_manager.factories import create_management_app
from cluster_manager.front.config import SECURITY_HEADERS
from cluster_manager.settings import Settings
from cluster_manager.ui import routes as ui_routes

from tests.support import raw_tls
from tools.stack import CONNECTOR_DOMAIN, Stack

LAYOUT_MARKERS = (
    "<!DOCTYPE html>",
    'class="p-navigation is-dark"',
    "MicroCloud Cluster Manager",
    "/ui/static/css/ui.css",
    'id="main-content"',
)


def assert_error_page(response: requests.Response, status: int) -> None:
    """An HTML page of the UI's layout with `status` and the security headers."""
    assert response.status_code == status
    assert response.headers["Content-Type"].startswith("text/html")
    for marker in LAYOUT_MARKERS:
        assert marker in response.text
    assert f"Error {status}" in response.text
    for name, _ in SECURITY_HEADERS:
        assert name in response.headers, name
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["Cache-Control"] == "no-store"
    assert "Traceback" not in response.text


def anonymous(stack: Stack) -> requests.Session:
    session = stack.management_session(token="unused")
    del session.headers["Authorization"]
    return session


@pytest.mark.parametrize("path", ["/ui/no-such-page", "/ui/static/no-such.css", "/oidc/nowhere"])
def test_a_missing_page_is_an_html_404(stack: Stack, path: str) -> None:
    response = anonymous(stack).get(f"{stack.management_url}{path}", timeout=10)

    assert_error_page(response, 404)
    assert "Not found" in response.text
    assert "There is no page at this address." in response.text


def test_a_missing_api_resource_is_still_a_json_404_envelope(stack: Stack) -> None:
    response = stack.management_session().get(
        f"{stack.management_url}/1.0/no-such-thing", timeout=10
    )

    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {
        "type": "error",
        "status": "",
        "status_code": 0,
        "operation": "",
        "error_code": 404,
        "error": "not found",
        "metadata": None,
    }


def test_a_missing_connector_resource_is_still_a_json_404_envelope(stack: Stack) -> None:
    context = raw_tls.tls_context(stack.connector_identity.cert_pem)

    response = raw_tls.request(stack.connector_port, CONNECTOR_DOMAIN, context, "GET", "/ui/x")

    assert response.status == 404
    assert response.headers["content-type"] == "application/json"
    assert response.json["error_code"] == 404


def test_a_method_a_page_does_not_take_is_an_html_405_naming_the_allowed_ones(
    stack: Stack,
) -> None:
    response = anonymous(stack).put(f"{stack.management_url}/ui/", timeout=10)

    assert_error_page(response, 405)
    assert "does not accept PUT requests" in response.text
    assert {method.strip() for method in response.headers["Allow"].split(",")} == {"GET", "HEAD"}


def test_a_cross_site_logout_is_refused_with_an_html_403(stack: Stack) -> None:
    session = anonymous(stack)
    session.headers["Sec-Fetch-Site"] = "cross-site"

    response = session.post(f"{stack.management_url}/oidc/logout", timeout=10)

    assert_error_page(response, 403)
    assert "cross-site request refused" in response.text


def test_a_bad_login_query_is_an_html_400_naming_the_parameter(stack: Stack) -> None:
    response = anonymous(stack).get(
        f"{stack.management_url}/oidc/login?next=/ui/%00", allow_redirects=False, timeout=10
    )

    assert_error_page(response, 400)
    assert "next: must not contain NUL characters" in response.text


def test_an_unexpected_error_on_a_page_is_an_html_500_without_the_traceback(
    stack: Stack,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(_: Settings) -> list[object]:
        raise RuntimeError("secret internals of the failure")

    app = create_management_app(
        Settings(
            database_url=stack.database_url,
            connector_domain=CONNECTOR_DOMAIN,
            connector_cert_file=stack.tls_dir / "connector.crt",
            run_dir=tmp_path,
            oidc_issuer="https://idp.invalid",
            oidc_client_id="cluster-manager",
        )
    )
    admin = Identity(name="admin", email="admin@example.test", groups=(ADMIN_GROUP,), method="t")
    install_authenticators(app, [lambda _: admin])
    monkeypatch.setattr(ui_routes, "configuration", broken)

    with caplog.at_level(logging.ERROR, logger="cluster_manager.plumbing"):
        response = app.test_client().get("/ui/settings")

    page = response.get_data(as_text=True)
    assert response.status_code == 500
    assert response.content_type.startswith("text/html")
    assert "Something went wrong" in page
    assert "unexpected error" in page
    assert "secret internals" not in page
    assert "Traceback" not in page
    assert "RuntimeError" not in page
    assert "secret internals of the failure" in caplog.text  # logged, not shown
