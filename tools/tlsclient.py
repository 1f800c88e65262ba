"""The TLS and HTTP/1.1 mechanics MicroCloud uses to talk to the cluster manager.

Before each request MicroCloud fetches the manager's leaf certificate with an unverified
``GET /`` (no client certificate), checks its SHA-256 against the token fingerprint, and then
makes that certificate the only trust anchor of a TLS 1.3 connection that checks the host name
and presents the cluster certificate. Everything here uses :mod:`ssl` and :mod:`http.client` so
each of those details is visible.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import json
import socket
import ssl
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.jointoken import split_host_port
from tools.pki import CertKey

GO_USER_AGENT = "Go-http-client/1.1"


class ClusterManagerError(RuntimeError):
    """A request to the cluster manager could not be made."""


class UnreachableError(ClusterManagerError):
    """No address of the token answered the probe."""


class FingerprintMismatchError(ClusterManagerError):
    """The manager's certificate is not the one pinned in the token."""


class TLSError(ClusterManagerError):
    """The pinned TLS connection failed (version, host name, validity, handshake)."""


@dataclass(frozen=True)
class Destination:
    """Where one token address really is.

    Attributes:
        address: ``host:port`` exactly as in the token (also the ``Host`` header).
        host: the host part, used for SNI and the certificate name check.
        connect: the TCP destination (the token address unless remapped).
    """

    address: str
    host: str
    connect: tuple[str, int]


def destinations(
    addresses: Iterable[str], resolve: Mapping[str, tuple[str, int]] | None = None
) -> list[Destination]:
    """Map token addresses to TCP destinations, keeping the token's host for TLS.

    Args:
        addresses: ``host:port`` strings from the token, in order.
        resolve: optional ``{"host:port": (ip, port)}`` overrides, like curl's ``--resolve``.

    Returns:
        One destination per address, in order.
    """
    result: list[Destination] = []
    for address in addresses:
        host, port = split_host_port(address)
        target = (resolve or {}).get(address, (host, port))
        result.append(Destination(address, host, target))
    return result


@dataclass(frozen=True)
class Response:
    """What the manager answered.

    Attributes:
        status: HTTP status code.
        reason: HTTP reason phrase.
        headers: response headers (last value wins for repeated names, names lower-cased).
        text: body as text.
        json: body parsed as JSON, or None when it is not JSON.
    """

    status: int
    reason: str
    headers: dict[str, str] = field(repr=False)
    text: str
    json: Any

    @property
    def ok(self) -> bool:
        """MicroCloud counts only HTTP 200 as success."""
        return self.status == http.HTTPStatus.OK


class PinnedConnection(http.client.HTTPConnection):
    """An HTTP/1.1 connection over TLS to ``destination.connect`` with SNI ``destination.host``."""

    def __init__(self, destination: Destination, context: ssl.SSLContext, timeout: float):
        super().__init__(destination.connect[0], destination.connect[1], timeout=timeout)
        self.destination = destination
        self.context = context

    def connect(self) -> None:
        """Open the TCP connection and do the TLS handshake."""
        sock = socket.create_connection(self.destination.connect, self.timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.sock = self.context.wrap_socket(sock, server_hostname=self.destination.host)
        except BaseException:
            sock.close()
            raise

    def peer_der(self) -> bytes:
        """DER of the server's leaf certificate on the open connection."""
        if not isinstance(self.sock, ssl.SSLSocket):
            raise ClusterManagerError("connection is not open")
        der = self.sock.getpeercert(binary_form=True)
        if der is None:
            raise ClusterManagerError("server sent no certificate")
        return der


def send(
    conn: PinnedConnection,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: Sequence[tuple[str, str]] = (),
    user_agent: str = GO_USER_AGENT,
) -> Response:
    """Send one request with the header set and order of Go's HTTP/1.1 client.

    Args:
        conn: the connection (opened on demand).
        method: HTTP method.
        path: request target.
        body: request body; None sends no ``Content-Length`` (Go does the same for no body).
        headers: extra headers, sent after ``Content-Length``.
        user_agent: the ``User-Agent`` value.

    Returns:
        The response with its body read (so the connection can be reused).
    """
    conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    conn.putheader("Host", conn.destination.address)
    conn.putheader("User-Agent", user_agent)
    if body is not None:
        conn.putheader("Content-Length", str(len(body)))
    for name, value in headers:
        conn.putheader(name, value)
    conn.putheader("Accept-Encoding", "gzip")
    conn.endheaders(body)
    raw = conn.getresponse()
    data = raw.read()
    response_headers = {name.lower(): value for name, value in raw.getheaders()}
    if response_headers.get("content-encoding", "").lower() == "gzip":
        data = gzip.decompress(data)
    text = data.decode("utf-8", errors="replace")
    try:
        parsed: Any = json.loads(text) if text.strip() else None
    except ValueError:
        parsed = None
    return Response(raw.status, raw.reason, response_headers, text, parsed)


def probe_context() -> ssl.SSLContext:
    """A context with all certificate checks off and no client certificate (the probe)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def probe(destination: Destination, timeout: float, user_agent: str = GO_USER_AGENT) -> bytes:
    """``GET /`` without verification or client certificate; return the server's leaf DER.

    Any HTTP status is fine: only the certificate matters.

    Args:
        destination: where to connect.
        timeout: socket timeout in seconds.
        user_agent: the ``User-Agent`` value.

    Returns:
        DER of the server's leaf certificate.
    """
    conn = PinnedConnection(destination, probe_context(), timeout)
    try:
        conn.connect()
        der = conn.peer_der()
        send(conn, "GET", "/", user_agent=user_agent)
        return der
    finally:
        conn.close()


def probe_first(
    candidates: Sequence[Destination], timeout: float, user_agent: str = GO_USER_AGENT
) -> tuple[Destination, bytes]:
    """Probe each destination in order; the first that answers wins.

    Args:
        candidates: destinations from the token, in order.
        timeout: socket timeout in seconds.
        user_agent: the ``User-Agent`` value.

    Returns:
        The destination that answered and its leaf certificate DER.

    Raises:
        UnreachableError: when none answers.
    """
    failures: list[str] = []
    for destination in candidates:
        try:
            return destination, probe(destination, timeout, user_agent)
        except (OSError, http.client.HTTPException) as exc:
            failures.append(f"{destination.address}: {exc}")
    names = ", ".join(d.address for d in candidates)
    raise UnreachableError(f"Cannot connect to: {names} ({'; '.join(failures)})")


def fingerprint_of(der: bytes) -> str:
    """Lowercase hex SHA-256 of a certificate's DER."""
    return hashlib.sha256(der).hexdigest()


def check_fingerprint(expected: str, der: bytes) -> None:
    """Compare the certificate with the pinned fingerprint, ignoring case.

    Args:
        expected: the fingerprint from the token.
        der: the certificate the server presented.

    Raises:
        FingerprintMismatchError: when they differ.
    """
    got = fingerprint_of(der)
    if got.lower() != expected.lower():
        raise FingerprintMismatchError(
            f"Invalid cluster manager certificate fingerprint, expected {expected}, got {got}"
        )


def pinned_context(trust_der: bytes, client: CertKey) -> ssl.SSLContext:
    """TLS 1.3-only context trusting exactly ``trust_der`` and presenting ``client``.

    The host name must match a subject alternative name (no common-name fallback, like Go), and
    the pinned certificate itself is the trust anchor even though it is not a CA (like Go, which
    accepts a leaf found in its root pool).

    Args:
        trust_der: the manager certificate read by the probe.
        client: the cluster certificate and key to present.

    Returns:
        The client context.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    context.hostname_checks_common_name = False
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    context.load_verify_locations(cadata=trust_der)
    with tempfile.TemporaryDirectory(prefix="mc-client-") as tmp:
        cert_path, key_path = client.write(Path(tmp), "client")
        context.load_cert_chain(cert_path, key_path)
    return context
