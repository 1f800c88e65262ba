"""The TLS front as a client meets it: TLS versions, the probe, health and readiness."""

from __future__ import annotations

import socket
import ssl

import pytest
import requests

from tests.support import raw_tls
from tools.stack import CONNECTOR_DOMAIN, MANAGEMENT_DOMAIN, Stack


def test_connector_root_answers_without_client_certificate(stack: Stack) -> None:
    context = raw_tls.tls_context(stack.connector_identity.cert_pem)

    response = raw_tls.request(stack.connector_port, CONNECTOR_DOMAIN, context, "GET", "/")

    assert response.status == 200
    assert response.json["metadata"] == ["/1.0"]


def test_connector_status_reports_database_reachable(stack: Stack) -> None:
    context = raw_tls.tls_context(stack.connector_identity.cert_pem)

    response = raw_tls.request(
        stack.connector_port, CONNECTOR_DOMAIN, context, "GET", "/1.0/status"
    )

    assert response.status == 200
    assert response.json["type"] == "sync"


def test_connector_refuses_tls_1_2(stack: Stack) -> None:
    context = raw_tls.tls_context(
        stack.connector_identity.cert_pem, maximum_version=ssl.TLSVersion.TLSv1_2
    )

    with pytest.raises(ssl.SSLError):
        raw_tls.request(stack.connector_port, CONNECTOR_DOMAIN, context, "GET", "/")


def test_connector_serves_the_connector_certificate(stack: Stack) -> None:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE

    with (
        socket.create_connection(("127.0.0.1", stack.connector_port)) as sock,
        context.wrap_socket(sock, server_hostname=CONNECTOR_DOMAIN) as tls,
    ):
        der = tls.getpeercert(binary_form=True)

    assert der == stack.connector_identity.der


def test_connector_wrong_method_is_405_with_an_envelope(stack: Stack) -> None:
    context = raw_tls.tls_context(stack.connector_identity.cert_pem)

    response = raw_tls.request(
        stack.connector_port, CONNECTOR_DOMAIN, context, "GET", "/1.0/remote-cluster"
    )

    assert response.status == 405
    assert response.json["error_code"] == 405


def test_connector_unknown_path_is_404_with_an_envelope(stack: Stack) -> None:
    context = raw_tls.tls_context(stack.connector_identity.cert_pem)

    response = raw_tls.request(stack.connector_port, CONNECTOR_DOMAIN, context, "GET", "/1.0/x")

    assert response.status == 404
    assert response.json["type"] == "error"


def test_management_routes_are_not_reachable_through_the_connector(stack: Stack) -> None:
    context = raw_tls.tls_context(stack.connector_identity.cert_pem)

    response = raw_tls.request(
        stack.connector_port, CONNECTOR_DOMAIN, context, "GET", "/1.0/remote-cluster-join-token"
    )

    assert response.status == 404


def test_management_listener_serves_the_management_certificate(stack: Stack) -> None:
    context = raw_tls.tls_context(stack.management_identity.cert_pem)

    response = raw_tls.request(
        stack.management_port, MANAGEMENT_DOMAIN, context, "GET", "/1.0/status"
    )

    assert response.status == 200


@pytest.mark.parametrize("path", ["/health/haproxy", "/health/management", "/health/connector"])
def test_health_listener_reports_alive(stack: Stack, path: str) -> None:
    response = requests.get(f"http://127.0.0.1:{stack.health_port}{path}", timeout=5)

    assert response.status_code == 200


@pytest.mark.parametrize("path", ["/ready/management", "/ready/connector"])
def test_health_listener_reports_ready_with_database(stack: Stack, path: str) -> None:
    response = requests.get(f"http://127.0.0.1:{stack.health_port}{path}", timeout=5)

    assert response.status_code == 200
