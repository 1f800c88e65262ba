"""What the TLS front answers by itself: an LXD error envelope with the security headers.

The apps never see these requests, so each refusal must read like the apps' own: a JSON
envelope whose `error_code` is the HTTP status, and the headers a browser needs to never
render or frame it. One exception, HAProxy's and not ours to change: requests its HTTP/1
parser cannot read at all (a malformed request line, headers past its 16 KiB buffer) and
clients that never finish their headers get HAProxy's own short 400/408 page on 2.6 and 2.8,
which ignore custom errors at that stage (haproxy/haproxy#3032, fixed in 3.2).
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Iterator

import pytest

from tests.support import raw_tls
from tests.support.raw_tls import RawResponse
from tools.postgres import PostgresServer
from tools.stack import CONNECTOR_DOMAIN, MANAGEMENT_DOMAIN, Stack

QUICK_TIMEOUTS = {"request_timeout_seconds": 1, "app_timeout_seconds": 1}


def assert_front_envelope(response: RawResponse, status: int) -> None:
    headers = {name.lower(): value for name, value in response.headers.items()}
    assert response.status == status
    assert response.json["type"] == "error"
    assert response.json["error_code"] == status
    assert response.json["error"]
    assert headers["content-type"] == "application/json"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    assert headers["cache-control"] == "no-store"


def _connector(stack: Stack, method: str, path: str, **kwargs) -> RawResponse:
    context = raw_tls.tls_context(stack.connector_identity.cert_pem)
    return raw_tls.request(stack.connector_port, CONNECTOR_DOMAIN, context, method, path, **kwargs)


def _management(stack: Stack, method: str, path: str, **kwargs) -> RawResponse:
    context = raw_tls.tls_context(stack.management_identity.cert_pem)
    return raw_tls.request(
        stack.management_port, MANAGEMENT_DOMAIN, context, method, path, **kwargs
    )


def test_connect_is_405_with_allow(stack: Stack) -> None:
    # A CONNECT's Host must be its target, or HAProxy's parser refuses it before any rule.
    response = _connector(stack, "CONNECT", "example.com:443", headers={"Host": "example.com:443"})

    assert_front_envelope(response, 405)
    headers = {name.lower(): value for name, value in response.headers.items()}
    assert headers["allow"] == "GET, HEAD, POST, PUT, PATCH, DELETE"


def test_trace_is_405_with_the_methods_of_the_path(stack: Stack) -> None:
    response = _management(stack, "TRACE", "/1.0/remote-cluster")

    headers = {name.lower(): value for name, value in response.headers.items()}
    assert response.status == 405
    assert response.json["error_code"] == 405
    assert set(headers["allow"].replace(" ", "").split(",")) >= {"GET", "HEAD"}
    assert "TRACE" not in headers["allow"]


def test_an_overlong_url_is_414(stack: Stack) -> None:
    response = _management(stack, "GET", "/1.0/status?" + "a" * 9000)

    assert_front_envelope(response, 414)


def test_overlong_headers_are_431(stack: Stack) -> None:
    headers = {f"X-Filler-{number}": "b" * 1000 for number in range(13)}

    response = _connector(stack, "GET", "/", headers=headers)

    assert_front_envelope(response, 431)


def test_a_management_body_over_one_mebibyte_is_413(stack: Stack) -> None:
    context = raw_tls.tls_context(stack.management_identity.cert_pem)

    response = raw_tls.announce_body(
        stack.management_port,
        MANAGEMENT_DOMAIN,
        context,
        "/1.0/remote-cluster-join-token",
        2**20 + 1,
    )

    assert_front_envelope(response, 413)


def test_a_connector_body_over_the_limit_is_413(stack: Stack) -> None:
    context = raw_tls.tls_context(stack.connector_identity.cert_pem)

    response = raw_tls.announce_body(
        stack.connector_port, CONNECTOR_DOMAIN, context, "/1.0/remote-cluster/status", 2**26 + 1
    )

    assert_front_envelope(response, 413)


def test_metrics_are_not_served_on_the_management_listener(stack: Stack) -> None:
    response = _management(stack, "GET", "/metrics")

    assert_front_envelope(response, 404)


def test_the_metrics_listener_serves_only_metrics(stack: Stack) -> None:
    with socket.create_connection(("127.0.0.1", stack.metrics_port)) as sock:
        sock.sendall(b"GET /1.0/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = sock.makefile("rb").read().decode()

    assert answer.startswith("HTTP/1.1 404")
    assert '"error_code":404' in answer


def test_management_offers_http2(stack: Stack) -> None:
    context = raw_tls.tls_context(stack.management_identity.cert_pem)
    context.set_alpn_protocols(["h2", "http/1.1"])

    with (
        socket.create_connection(("127.0.0.1", stack.management_port)) as sock,
        context.wrap_socket(sock, server_hostname=MANAGEMENT_DOMAIN) as tls,
    ):
        protocol = tls.selected_alpn_protocol()

    assert protocol == "h2"


def test_management_accepts_tls_1_2(stack: Stack) -> None:
    context = raw_tls.tls_context(
        stack.management_identity.cert_pem, maximum_version=ssl.TLSVersion.TLSv1_2
    )

    response = raw_tls.request(
        stack.management_port, MANAGEMENT_DOMAIN, context, "GET", "/1.0/status"
    )

    assert response.status == 200


def test_access_log_lines_are_json_without_query_strings(stack: Stack) -> None:
    _management(stack, "GET", "/1.0/status?code=secret-authorization-code")

    # JSON escapes the slashes: waiting for "/1.0/status" itself always took the whole 5 s.
    logged = '"path":"\\/1.0\\/status"'
    deadline = time.monotonic() + 5
    while logged not in stack.log("haproxy") and time.monotonic() < deadline:
        time.sleep(0.1)

    log = stack.log("haproxy")
    assert logged in log
    assert "secret-authorization-code" not in log


# -- stacks of their own --------------------------------------------------------------------


@pytest.fixture(scope="module")
def management_app(
    postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    url = postgres.create_database("front_management_only")
    root = tmp_path_factory.mktemp("management-only")
    with Stack(root, url, apps=("management",), front_options=QUICK_TIMEOUTS) as running:
        yield running


@pytest.fixture
def management_only(management_app: Stack) -> Iterator[Stack]:
    """A stack whose connector app never started; its socket is ours to fake.

    Each test gets a new front, which knows nothing of the fakes of the tests before.
    """
    management_app.restart_front()
    yield management_app
    (management_app.run_dir / "connector.sock").unlink(missing_ok=True)


def test_a_stopped_app_is_503(management_only: Stack) -> None:
    response = _connector(management_only, "GET", "/1.0/status")

    assert_front_envelope(response, 503)


def _serve_on_connector_socket(stack: Stack, answer: bytes | None) -> socket.socket:
    """Listen where the connector app would; answer every request with `answer` (or nothing)."""
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(stack.run_dir / "connector.sock"))
    server.listen()

    def serve() -> None:
        while True:
            try:
                connection, _ = server.accept()
            except OSError:
                return
            connection.recv(65536)
            if answer is not None:
                connection.sendall(answer)
                connection.close()

    threading.Thread(target=serve, daemon=True).start()
    return server


def test_an_app_that_answers_garbage_is_502(management_only: Stack) -> None:
    server = _serve_on_connector_socket(management_only, b"this is not HTTP\r\n\r\n")
    try:
        response = _connector(management_only, "GET", "/1.0/status")
    finally:
        server.close()

    assert_front_envelope(response, 502)


def test_an_app_that_does_not_answer_in_time_is_504(management_only: Stack) -> None:
    server = _serve_on_connector_socket(management_only, None)
    try:
        response = _connector(management_only, "GET", "/1.0/status")
    finally:
        server.close()

    assert_front_envelope(response, 504)
