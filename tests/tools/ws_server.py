"""A tiny stand-in for the manager's tunnel endpoint: TLS (stdlib ssl) + the websockets server.

It answers the certificate probe (``GET /``) with 404, upgrades ``GET /1.0/remote-cluster/ws``
and hands each websocket to the test, recording the handshake's headers (names and order as
sent) and the client certificate. The test then sends request frames and reads the answers.
"""

from __future__ import annotations

import json
import queue
import ssl
import threading
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from websockets.datastructures import Headers
from websockets.http11 import Request, Response
from websockets.sync.server import Server, ServerConnection, serve

from tests.tools.tls_server import server_context
from tools.pki import CertKey
from tools.tunnel import TUNNEL_PATH


@dataclass
class Peer:
    """One tunnel as the server sees it."""

    connection: ServerConnection
    peer_der: bytes | None
    headers: list[tuple[str, str]]
    finished: threading.Event = field(default_factory=threading.Event)

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def send(self, frame: dict[str, Any] | str) -> None:
        self.connection.send(frame if isinstance(frame, str) else json.dumps(frame))

    def recv(self, timeout: float = 10.0) -> str | bytes:
        return self.connection.recv(timeout=timeout)

    def recv_json(self, timeout: float = 10.0) -> Any:
        return json.loads(self.recv(timeout))

    def close(self) -> None:
        """End the handler, which closes the websocket with a close frame."""
        self.finished.set()


class TunnelServer:
    """TLS websocket server on 127.0.0.1 that queues every tunnel for the test."""

    def __init__(self, cert: CertKey, client_ca: CertKey | None = None):
        self._context = server_context(cert, client_ca)
        self.peers: queue.Queue[Peer] = queue.Queue()
        self.probes: list[str] = []
        self._all: list[Peer] = []
        self._lock = threading.Lock()
        self._closing = False
        self._server: Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.socket.getsockname()[1]

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if (
            request.path != TUNNEL_PATH
            or "upgrade" not in request.headers.get("Connection", "").lower()
        ):
            self.probes.append(f"{request.path}")
            return connection.respond(404, "404 page not found\n")
        return None

    def _handler(self, connection: ServerConnection) -> None:
        sock = connection.socket
        der = sock.getpeercert(binary_form=True) if isinstance(sock, ssl.SSLSocket) else None
        raw: Headers = connection.request.headers if connection.request else Headers()
        peer = Peer(connection, der, list(raw.raw_items()))
        with self._lock:
            if self._closing:  # stop() already released the peers: do not wait for a release
                return
            self._all.append(peer)
        self.peers.put(peer)
        peer.finished.wait()

    def next_peer(self, timeout: float = 10.0) -> Peer:
        return self.peers.get(timeout=timeout)

    def start(self) -> TunnelServer:
        self._server = serve(
            self._handler,
            "127.0.0.1",
            0,
            ssl=self._context,
            process_request=self._process_request,
            compression=None,
            ping_interval=None,
            max_size=None,
        )
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Release every handler, close the connections and wait for the serving thread."""
        with self._lock:
            self._closing = True
            peers = list(self._all)
        for peer in peers:
            peer.close()
        if self._server is not None:
            self._server.shutdown()  # returns once every connection handler has ended
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> TunnelServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
