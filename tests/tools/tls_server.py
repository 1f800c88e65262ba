"""A bare threaded Python TLS + HTTP/1.1 server that records what clients send.

MicroCloud's own test suite uses a bare Python TLS server the same way. The server can request a
client certificate: Python's ssl cannot accept an arbitrary certificate without verifying it, so
the tests trust exactly the expected cluster certificate, which lets the server see (and record)
the certificate a client presents. A real cluster certificate allows serverAuth only, which
OpenSSL refuses from a client ("unsuitable certificate purpose") unless the trust anchor says
otherwise; so the expected certificate is trusted with an explicit clientAuth trust setting, the
way ``openssl x509 -addtrust clientAuth`` marks one. Any other client certificate still fails.
"""

from __future__ import annotations

import base64
import http.server
import socketserver
import ssl
import tempfile
import textwrap
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from tools.pki import CertKey

SYNC_OK = (
    b'{"type":"sync","status":"Success","status_code":200,"operation":"",'
    b'"error_code":0,"error":"","metadata":{}}\n'
)


@dataclass(frozen=True)
class Exchange:
    """One request as the server saw it."""

    connection: int
    peer_der: bytes | None
    method: str
    path: str
    headers: dict[str, str]
    header_names: list[str]
    body: bytes


Responder = Callable[[Exchange], tuple[int, bytes]]

# OpenSSL's trust settings appended to a trusted certificate's DER (X509_CERT_AUX):
# SEQUENCE { trust SEQUENCE { OBJECT IDENTIFIER clientAuth (1.3.6.1.5.5.7.3.2) } }.
_TRUST_CLIENT_AUTH = bytes.fromhex("300c300a06082b06010505070302")


def _trusted_for_client_auth(cert: CertKey) -> str:
    """``cert`` as an OpenSSL TRUSTED CERTIFICATE PEM explicitly trusted for clientAuth.

    OpenSSL lets the trust settings of a matching trust anchor override the leaf's EKU, so a
    serverAuth-only cluster certificate is accepted as a client certificate, and only it.
    """
    body = base64.b64encode(cert.der + _TRUST_CLIENT_AUTH).decode()
    lines = "\n".join(textwrap.wrap(body, 64))
    return f"-----BEGIN TRUSTED CERTIFICATE-----\n{lines}\n-----END TRUSTED CERTIFICATE-----\n"


def server_context(
    cert: CertKey,
    client_ca: CertKey | None = None,
    minimum_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2,
    maximum_version: ssl.TLSVersion = ssl.TLSVersion.MAXIMUM_SUPPORTED,
) -> ssl.SSLContext:
    """A server context presenting ``cert`` and, if given, accepting exactly ``client_ca``.

    Args:
        cert: the server certificate and key.
        client_ca: request a client certificate (optional) and trust exactly this one for
            clientAuth, whatever its EKU; None requests none.
        minimum_version: lowest TLS version offered.
        maximum_version: highest TLS version offered.

    Returns:
        The context.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = minimum_version
    context.maximum_version = maximum_version
    with tempfile.TemporaryDirectory() as tmp:
        context.load_cert_chain(*cert.write(Path(tmp), "server"))
        if client_ca is not None:
            context.verify_mode = ssl.CERT_OPTIONAL
            context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
            # cafile, not cadata: only OpenSSL's file loader keeps the trust settings.
            trusted = Path(tmp) / "client-ca.pem"
            trusted.write_text(_trusted_for_client_auth(client_ca))
            context.load_verify_locations(cafile=trusted)
    return context


def _ok(_: Exchange) -> tuple[int, bytes]:
    return 200, SYNC_OK


@dataclass
class _State:
    responder: Responder
    exchanges: list[Exchange] = field(default_factory=list)
    handshake_errors: list[str] = field(default_factory=list)
    connections: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _handle_any(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        assert isinstance(self.connection, ssl.SSLSocket)
        server = self.server
        assert isinstance(server, _Server)
        exchange = Exchange(
            connection=server.connection_ids[id(self.connection)],
            peer_der=self.connection.getpeercert(binary_form=True),
            method=self.command,
            path=self.path,
            headers={k.lower(): v for k, v in self.headers.items()},
            header_names=list(self.headers.keys()),
            body=body,
        )
        state = server.state
        with state.lock:
            state.exchanges.append(exchange)
        status, payload = state.responder(exchange)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _handle_any  # noqa: N815 - stdlib names


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, context: ssl.SSLContext, state: _State):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.context = context
        self.state = state
        self.connection_ids: dict[int, int] = {}

    def finish_request(self, request: Any, client_address: Any) -> None:
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            with self.state.lock:
                self.state.handshake_errors.append(str(exc))
            return
        with self.state.lock:
            self.state.connections += 1
            self.connection_ids[id(tls)] = self.state.connections
        try:
            super().finish_request(tls, client_address)
        finally:
            tls.close()


class RecordingTLSServer:
    """A TLS server on 127.0.0.1 recording every request and the client certificate, if any."""

    def __init__(
        self,
        cert: CertKey,
        *,
        client_ca: CertKey | None = None,
        minimum_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2,
        maximum_version: ssl.TLSVersion = ssl.TLSVersion.MAXIMUM_SUPPORTED,
        responder: Responder = _ok,
    ):
        """Build the server (not started).

        Args:
            cert: the server certificate and key.
            client_ca: request a client certificate and accept exactly this one, whatever its
                EKU (None: no request).
            minimum_version: lowest TLS version offered.
            maximum_version: highest TLS version offered.
            responder: maps each request to (status, body).
        """
        context = server_context(cert, client_ca, minimum_version, maximum_version)
        self.state = _State(responder)
        self._server = _Server(context, self.state)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def port(self) -> int:
        """The listening port."""
        return self._server.server_address[1]

    @property
    def exchanges(self) -> list[Exchange]:
        """A copy of the requests received so far."""
        with self.state.lock:
            return list(self.state.exchanges)

    @property
    def handshake_errors(self) -> list[str]:
        """TLS handshake failures seen by the server."""
        with self.state.lock:
            return list(self.state.handshake_errors)

    def start(self) -> RecordingTLSServer:
        """Start serving in a daemon thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> RecordingTLSServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
