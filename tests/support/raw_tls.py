"""Hand-made requests to a TLS listener.

For what the MicroCloud emulator never does on purpose: no client certificate, forged
headers, an old TLS version.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import socket
import ssl
import tempfile
from pathlib import Path
from typing import Any

from tools.pki import CertKey


@dataclasses.dataclass(frozen=True)
class RawResponse:
    """Status, headers and body of one response."""

    status: int
    headers: dict[str, str]
    text: str

    @property
    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.text)


class _LoopbackTLSConnection(http.client.HTTPConnection):
    """HTTP/1.1 over TLS to 127.0.0.1, with SNI and name checks for `server_name`."""

    def __init__(self, server_name: str, port: int, context: ssl.SSLContext):
        super().__init__(server_name, port, timeout=15)
        self._context = context

    def connect(self) -> None:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def tls_context(
    trusted_cert_pem: str,
    client: CertKey | None = None,
    maximum_version: ssl.TLSVersion = ssl.TLSVersion.MAXIMUM_SUPPORTED,
) -> ssl.SSLContext:
    """A client context trusting exactly `trusted_cert_pem`, optionally presenting `client`."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cadata=trusted_cert_pem)
    context.maximum_version = maximum_version
    if client is not None:
        with tempfile.TemporaryDirectory() as directory:
            cert, key = client.write(Path(directory), "client")
            context.load_cert_chain(cert, key)
    return context


def request(
    port: int,
    server_name: str,
    context: ssl.SSLContext,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> RawResponse:
    """One request over a fresh TLS connection to 127.0.0.1:`port`."""
    connection = _LoopbackTLSConnection(server_name, port, context)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        text = response.read().decode()
        return RawResponse(response.status, dict(response.getheaders()), text)
    finally:
        connection.close()


def announce_body(
    port: int,
    server_name: str,
    context: ssl.SSLContext,
    path: str,
    length: int,
    method: str = "POST",
    headers: dict[str, str] | None = None,
) -> RawResponse:
    """Send headers announcing a `length`-byte body, then read the answer without sending it.

    A server that judges the size from the headers answers at once; sending megabytes it
    will refuse anyway would only race its closing of the connection.
    """
    connection = _LoopbackTLSConnection(server_name, port, context)
    try:
        connection.putrequest(method, path)
        for name, value in (headers or {}).items():
            connection.putheader(name, value)
        connection.putheader("Content-Length", str(length))
        connection.endheaders()
        response = connection.getresponse()
        text = response.read().decode()
        return RawResponse(response.status, dict(response.getheaders()), text)
    finally:
        connection.close()
