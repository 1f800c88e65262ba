"""Werkzeug's own redirects name the connector address clusters are given, not the Host header."""

from __future__ import annotations

from tests.support import raw_tls
from tools.stack import CONNECTOR_DOMAIN, Stack


def test_connector_slash_redirect_with_a_forged_host_goes_to_the_connector_address(stack: Stack):
    context = raw_tls.tls_context(stack.connector_identity.cert_pem)

    response = raw_tls.request(
        stack.connector_port,
        CONNECTOR_DOMAIN,
        context,
        "GET",
        "/1.0//status",
        headers={"Host": "evil.example"},
    )

    assert response.status == 308
    assert response.headers["location"] == f"https://{stack.connector_address}/1.0/status"
