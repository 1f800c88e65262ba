"""OPTIONS is not served (the API is not meant for CORS): both apps answer 405 in the envelope.

Flask would otherwise answer every route's OPTIONS itself, with an empty `text/html` 200 that
skips the authentication and the envelope.
"""

from __future__ import annotations

import pytest

from tests.support import raw_tls
from tools.stack import CONNECTOR_DOMAIN, Stack

# Each path and the methods its 405 allows.
MANAGEMENT_PATHS = {
    "/": {"GET", "HEAD"},
    "/1.0": {"GET", "HEAD"},
    "/1.0/remote-cluster": {"GET", "HEAD"},
    "/ui/": {"GET", "HEAD"},
    "/oidc/logout": {"GET", "HEAD", "POST"},
    "/ui/static/js/ui.js": {"GET", "HEAD"},
}
CONNECTOR_PATHS = {
    "/": {"GET", "HEAD"},
    "/1.0/remote-cluster": {"POST", "DELETE"},
    "/1.0/remote-cluster/status": {"POST"},
}


def allowed(header: str) -> set[str]:
    return {method.strip() for method in header.split(",")}


@pytest.mark.parametrize("path", MANAGEMENT_PATHS)
def test_management_options_is_a_405_envelope_naming_the_allowed_methods(stack: Stack, path: str):
    response = stack.management_session().options(f"{stack.management_url}{path}", timeout=10)

    assert response.status_code == 405
    assert response.headers["Content-Type"] == "application/json"
    assert response.json()["error_code"] == 405
    assert allowed(response.headers["Allow"]) == MANAGEMENT_PATHS[path]


@pytest.mark.parametrize("path", MANAGEMENT_PATHS)
def test_management_options_carries_the_security_headers(stack: Stack, path: str):
    response = stack.management_session().options(f"{stack.management_url}{path}", timeout=10)

    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert "Access-Control-Allow-Origin" not in response.headers


@pytest.mark.parametrize("path", CONNECTOR_PATHS)
def test_connector_options_is_a_405_envelope_naming_the_allowed_methods(stack: Stack, path: str):
    context = raw_tls.tls_context(stack.connector_identity.cert_pem)

    response = raw_tls.request(stack.connector_port, CONNECTOR_DOMAIN, context, "OPTIONS", path)

    assert response.status == 405
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert (
        response.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    )
    assert response.json["error_code"] == 405
    assert allowed(response.headers["allow"]) == CONNECTOR_PATHS[path]
