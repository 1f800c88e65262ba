"""One emulated MicroCloud cluster talking to the cluster manager like ``microcloudd`` does.

Example:
    client = MicroCloudClient(token, resolve={"cc.example.com:443": ("127.0.0.1", 9443)})
    assert client.join().ok
    client.heartbeat(PayloadGenerator("mc-01").payload())
    client.leave()
"""

from __future__ import annotations

import http.client
import ssl
import threading
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any

from tools import gojson, pki
from tools.jointoken import JoinToken, TokenError
from tools.pki import CertKey
from tools.tlsclient import (
    GO_USER_AGENT,
    ClusterManagerError,
    Destination,
    FingerprintMismatchError,
    PinnedConnection,
    Response,
    TLSError,
    UnreachableError,
    check_fingerprint,
    destinations,
    pinned_context,
    probe_first,
    send,
)

__all__ = [
    "ClusterManagerError",
    "FingerprintMismatchError",
    "JoinToken",
    "MicroCloudClient",
    "Response",
    "TLSError",
    "TokenError",
    "UnreachableError",
]

JOIN_PATH = "/1.0/remote-cluster"
STATUS_PATH = "/1.0/remote-cluster/status"
LEAVE_PATH = "/1.0/remote-cluster"
TUNNEL_CHECK_INTERVAL = 10.0
"""microcloudd's `TunnelCheckIntervalSeconds`: how often it opens a missing reverse tunnel."""

# Failures that mean a reused keep-alive connection was closed by the server before it read
# the request; the request is then sent once more on a new connection.
_STALE_CONNECTION_ERRORS = (
    http.client.RemoteDisconnected,
    ConnectionResetError,
    BrokenPipeError,
    ssl.SSLEOFError,
)


class MicroCloudClient:
    """One MicroCloud cluster: join, heartbeat and leave over the real client's TLS set-up.

    Attributes:
        token_text: the token exactly as given (sent back in the join body).
        token: the decoded token.
        cluster_cert: the cluster certificate presented as TLS client certificate.
        probe_every_request: re-read and re-check the manager certificate before every request,
            as MicroCloud does; the benchmark turns this off.
    """

    def __init__(
        self,
        token: str,
        cluster_cert: CertKey | None = None,
        *,
        resolve: Mapping[str, tuple[str, int]] | None = None,
        probe_every_request: bool = True,
        timeout: float = 10.0,
        user_agent: str = GO_USER_AGENT,
    ):
        """Set up the client; no network traffic happens here.

        Args:
            token: the join token as a user would type it.
            cluster_cert: the cluster certificate; if omitted, a new one shaped exactly like
                LXD's (serverAuth only) for a member named after the token's cluster.
            resolve: ``{"host:port": (ip, port)}`` to reach token addresses elsewhere while SNI
                and the certificate name check still use the token's host.
            probe_every_request: probe ``GET /`` before every request (MicroCloud behaviour).
            timeout: socket timeout in seconds.
            user_agent: ``User-Agent`` header (Go's default, like MicroCloud).

        Raises:
            TokenError: when the token is not usable.
        """
        self.token_text = token
        self.token = JoinToken.decode(token)
        self.cluster_cert = cluster_cert or pki.cluster_certificate(self.token.server_name)
        self.probe_every_request = probe_every_request
        self.timeout = timeout
        self.user_agent = user_agent
        self._destinations = destinations(self.token.addresses, resolve)
        self._pinned: tuple[Destination, bytes] | None = None
        self._contexts: dict[bytes, ssl.SSLContext] = {}
        self._conn: PinnedConnection | None = None
        self._lock = threading.Lock()

    def __enter__(self) -> MicroCloudClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the keep-alive connection, if any."""
        with self._lock:
            self._drop_connection()

    def join(self) -> Response:
        """POST the join request: cluster name from the token, the cluster certificate, the token.

        Returns:
            The manager's response (``.ok`` only for HTTP 200).
        """
        body = {
            "cluster_name": self.token.server_name,
            "cluster_certificate": self.cluster_cert.cert_pem,
            "token": self.token_text,
        }
        return self.request("POST", JOIN_PATH, gojson.dump_bytes(body))

    def heartbeat(self, payload: Mapping[str, Any] | bytes) -> Response:
        """POST a status update without a Content-Type header (MicroCloud sets none).

        Args:
            payload: the status object, or its already serialized JSON bytes.

        Returns:
            The manager's response.
        """
        body = payload if isinstance(payload, bytes) else gojson.dump_bytes(dict(payload))
        return self.request("POST", STATUS_PATH, body)

    def leave(self) -> Response:
        """DELETE the remote cluster (no body).

        Returns:
            The manager's response.
        """
        return self.request("DELETE", LEAVE_PATH)

    def tunnel(self, lxd: Any, **kwargs: Any) -> Any:
        """This cluster's reverse tunnel (``tools.tunnel.TunnelClient``), not started.

        Args:
            lxd: the LXD it forwards to (e.g. ``tools.lxd.EmulatedLXD()``).
            **kwargs: ``TunnelClient`` options (``interval``, ``lxd_timeout``, ``enabled``).

        Returns:
            The tunnel client; ``start()`` it.
        """
        from tools.tunnel import TunnelClient  # wsproto only when tunnelling

        return TunnelClient(self, lxd, **kwargs)

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: Sequence[tuple[str, str]] = (),
    ) -> Response:
        """Send any request through the probe, fingerprint pin and pinned TLS connection.

        Args:
            method: HTTP method.
            path: request target.
            body: request body or None.
            headers: extra request headers.

        Returns:
            The response.

        Raises:
            UnreachableError: no token address answered the probe.
            FingerprintMismatchError: the manager certificate is not the pinned one.
            TLSError: the pinned TLS handshake failed (version, name, validity).
            ClusterManagerError: any other connection failure.
        """
        with self._lock:
            for attempt in (1, 2):
                conn = self._connection()
                reused = conn.sock is not None
                try:
                    return send(conn, method, path, body, headers, self.user_agent)
                except _STALE_CONNECTION_ERRORS as exc:
                    self._drop_connection()
                    if reused and attempt == 1:
                        continue
                    raise self._wrap(exc) from exc
                except (OSError, http.client.HTTPException) as exc:
                    self._drop_connection()
                    raise self._wrap(exc) from exc
            raise AssertionError("unreachable")

    @staticmethod
    def _wrap(exc: Exception) -> ClusterManagerError:
        if isinstance(exc, ssl.SSLError):
            return TLSError(f"TLS connection to the cluster manager failed: {exc}")
        return ClusterManagerError(f"Failed to send request to cluster manager: {exc}")

    def probe(self) -> tuple[Destination, bytes]:
        """Probe the token addresses and check the fingerprint; pin the result.

        Returns:
            The answering destination and the manager's leaf certificate DER.
        """
        destination, der = probe_first(self._destinations, self.timeout, self.user_agent)
        check_fingerprint(self.token.fingerprint, der)
        if self._pinned != (destination, der):
            self._drop_connection()
            self._pinned = (destination, der)
        return destination, der

    def _connection(self) -> PinnedConnection:
        if self.probe_every_request or self._pinned is None:
            self.probe()
        assert self._pinned is not None  # noqa: S101 - set by probe()
        destination, der = self._pinned
        if self._conn is None:
            context = self._contexts.get(der)
            if context is None:
                context = pinned_context(der, self.cluster_cert)
                self._contexts = {der: context}
            self._conn = PinnedConnection(destination, context, self.timeout)
        return self._conn

    def _drop_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
