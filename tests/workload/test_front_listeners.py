"""The front's listeners behind Traefik (PROXY protocol v2) and across a certificate reload."""

from __future__ import annotations

import ipaddress
import json
import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import raw_tls
from tools import pki
from tools.postgres import PostgresServer
from tools.stack import MANAGEMENT_DOMAIN, Stack

PROXY_V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def proxy_header_v2(source: str, destination_port: int) -> bytes:
    """A PROXY protocol v2 header (PROXY command, TCP over IPv4), as Traefik sends."""
    addresses = ipaddress.IPv4Address(source).packed + ipaddress.IPv4Address("10.1.2.3").packed
    payload = addresses + struct.pack("!HH", 40000, destination_port)
    return PROXY_V2_SIGNATURE + bytes([0x21, 0x11]) + struct.pack("!H", len(payload)) + payload


@pytest.fixture(scope="module")
def proxied(postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack behind "Traefik": PROXY headers expected, believed from 127.0.0.1 only."""
    url = postgres.create_database("front_proxied")
    root = Path(tmp_path_factory.mktemp("proxied"))
    with Stack(root, url, proxy_protocol=True) as running:
        yield running


def _status_through_proxy(stack: Stack, header: bytes, source: str = "127.0.0.1") -> str:
    """GET /1.0/status on the management listener after `header`; return the HTTP status line."""
    context = raw_tls.tls_context(stack.management_identity.cert_pem)
    with socket.create_connection(
        ("127.0.0.1", stack.management_port), timeout=5, source_address=(source, 0)
    ) as sock:
        sock.sendall(header)
        with context.wrap_socket(sock, server_hostname=MANAGEMENT_DOMAIN) as tls:
            tls.sendall(b"GET /1.0/status HTTP/1.1\r\nHost: cm\r\nConnection: close\r\n\r\n")
            return tls.makefile("rb").readline().decode()


def _logged_remotes(stack: Stack, expected: str) -> list[str]:
    """The client addresses of the access log, once `expected` is among them (or 5 s passed)."""
    deadline = time.monotonic() + 5
    while True:
        remotes = [
            json.loads(line)["remote"]
            for line in stack.log("haproxy").splitlines()
            if line.startswith("{")
        ]
        if expected in remotes or time.monotonic() > deadline:
            return remotes
        time.sleep(0.1)


def test_a_trusted_proxy_header_gives_the_client_address(proxied: Stack) -> None:
    status = _status_through_proxy(proxied, proxy_header_v2("203.0.113.7", 443))

    assert status.startswith("HTTP/1.1 200")
    assert "203.0.113.7" in _logged_remotes(proxied, "203.0.113.7")


def test_a_proxy_header_from_an_untrusted_peer_is_not_believed(proxied: Stack) -> None:
    status = _status_through_proxy(proxied, proxy_header_v2("203.0.113.8", 443), "127.0.0.2")

    assert status.startswith("HTTP/1.1 200")
    remotes = _logged_remotes(proxied, "127.0.0.2")
    assert "127.0.0.2" in remotes
    assert "203.0.113.8" not in remotes


def test_a_connection_without_a_proxy_header_is_refused(proxied: Stack) -> None:
    with pytest.raises((OSError, ConnectionError)):
        _status_through_proxy(proxied, b"")


# -- certificate renewal --------------------------------------------------------------------


@pytest.fixture
def renewing(postgres: PostgresServer, tmp_path: Path) -> Iterator[Stack]:
    url = postgres.create_database(f"front_renewal_{time.monotonic_ns()}")
    with Stack(tmp_path, url) as running:
        yield running


def _served_certificate(stack: Stack) -> bytes:
    context = raw_tls.tls_context(stack.management_identity.cert_pem)
    context.check_hostname = False
    context.verify_mode = raw_tls.ssl.CERT_NONE
    with (
        socket.create_connection(("127.0.0.1", stack.management_port), timeout=5) as sock,
        context.wrap_socket(sock, server_hostname=MANAGEMENT_DOMAIN) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return der


def test_a_renewed_certificate_is_served_after_a_reload(renewing: Stack) -> None:
    renewed = pki.self_signed(MANAGEMENT_DOMAIN, dns_names=[MANAGEMENT_DOMAIN])
    renewed.write(renewing.tls_dir, "management")

    renewing.reload_front()

    deadline = time.monotonic() + 10
    while _served_certificate(renewing) != renewed.der and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _served_certificate(renewing) == renewed.der


def test_a_request_in_flight_during_a_reload_is_answered(renewing: Stack) -> None:
    context = raw_tls.tls_context(renewing.management_identity.cert_pem)
    body = b'{"cluster_name": "in-flight", "description": ""}'
    token = renewing.create_api_token("reload")
    with (
        socket.create_connection(("127.0.0.1", renewing.management_port), timeout=10) as sock,
        context.wrap_socket(sock, server_hostname=MANAGEMENT_DOMAIN) as tls,
    ):
        tls.sendall(
            b"POST /1.0/remote-cluster-join-token HTTP/1.1\r\nHost: cm\r\n"
            + f"Authorization: Bearer {token}\r\n".encode()
            + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body[:10]
        )
        time.sleep(0.3)
        renewing.reload_front()
        time.sleep(1)
        tls.sendall(body[10:])
        status = tls.makefile("rb").readline().decode()

    assert status.startswith("HTTP/1.1 200")
