"""Keep-alive mTLS heartbeat load generator for the benchmark.

N enrolled clusters (each with its own client certificate) hold one persistent TLS 1.3
connection each and send pre-serialized heartbeats back to back (closed loop: the next request
leaves when the answer to the previous one is in) for a fixed time or number of requests.
The manager certificate is fetched and pinned once, as MicroCloudClient does with probing off.

Run ``python -m tools.loadgen --help``; ``--self-test`` measures the generator's own ceiling
against a trivial local TLS server running in a separate process.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import multiprocessing
import multiprocessing.connection
import socket
import ssl
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tools import gojson, pki
from tools.httpparse import FramingError, frame_response
from tools.jointoken import JoinToken
from tools.payloads import PayloadGenerator
from tools.pki import CertKey
from tools.tlsclient import (
    GO_USER_AGENT,
    Destination,
    check_fingerprint,
    destinations,
    pinned_context,
    probe,
)

STATUS_PATH = "/1.0/remote-cluster/status"
MAX_CLIENTS = 5000
MAX_DURATION = 600.0


@dataclass(frozen=True)
class LoadClient:
    """One enrolled cluster: its certificate and the heartbeat body it sends."""

    cert: CertKey
    body: bytes


@dataclass
class LoadResult:
    """Outcome of a run."""

    duration: float
    connections: int
    latencies: list[float] = field(repr=False, default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)

    @property
    def requests(self) -> int:
        """Responses received."""
        return len(self.latencies)

    @property
    def rate(self) -> float:
        """Responses per second."""
        return self.requests / self.duration if self.duration > 0 else 0.0

    def percentile(self, fraction: float) -> float:
        """Latency percentile in seconds (nearest rank).

        Args:
            fraction: 0.5 for p50, 0.99 for p99.

        Returns:
            The latency, or 0 without samples.
        """
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]

    def as_dict(self) -> dict[str, object]:
        """Machine-readable summary."""
        return {
            "connections": self.connections,
            "requests": self.requests,
            "duration_s": round(self.duration, 3),
            "heartbeats_per_s": round(self.rate, 1),
            "p50_ms": round(self.percentile(0.5) * 1000, 3),
            "p99_ms": round(self.percentile(0.99) * 1000, 3),
            "status_counts": {str(k): v for k, v in sorted(self.statuses.items())},
            "non_200": sum(v for k, v in self.statuses.items() if k != 200),
            "errors": dict(self.errors),
        }

    def summary(self) -> str:
        """One human-readable line."""
        data = self.as_dict()
        return (
            f"{data['requests']} heartbeats in {data['duration_s']} s over {self.connections} "
            f"connections: {data['heartbeats_per_s']}/s, p50 {data['p50_ms']} ms, "
            f"p99 {data['p99_ms']} ms, statuses {data['status_counts']}, errors {data['errors']}"
        )


def request_bytes(destination: Destination, body: bytes, path: str = STATUS_PATH) -> bytes:
    """A heartbeat request as MicroCloud writes it (no Content-Type).

    Args:
        destination: gives the ``Host`` header (the token address).
        body: JSON body.
        path: request target.

    Returns:
        The full request.
    """
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {destination.address}\r\n"
        f"User-Agent: {GO_USER_AGENT}\r\nContent-Length: {len(body)}\r\n"
        "Accept-Encoding: gzip\r\n\r\n"
    )
    return head.encode() + body


class _Budget:
    def __init__(self, deadline: float, max_requests: int | None):
        self.deadline = deadline
        self.remaining = max_requests

    def take(self) -> bool:
        if time.perf_counter() >= self.deadline:
            return False
        if self.remaining is None:
            return True
        if self.remaining <= 0:
            return False
        self.remaining -= 1
        return True


class _HeartbeatProtocol(asyncio.Protocol):
    def __init__(self, request: bytes, result: LoadResult, loop: asyncio.AbstractEventLoop):
        self.request = request
        self.result = result
        self.buffer = bytearray()
        self.sent_at = 0.0
        self.budget: _Budget | None = None
        self.transport: asyncio.Transport | None = None
        self.finished: asyncio.Future[str] = loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)  # noqa: S101 - stream transport
        self.transport = transport

    def start(self, budget: _Budget) -> None:
        self.budget = budget
        self._send()

    def _finish(self, reason: str) -> None:
        if not self.finished.done():
            self.finished.set_result(reason)

    def _send(self) -> None:
        assert self.transport is not None and self.budget is not None  # noqa: S101
        if not self.budget.take():
            self._finish("done")
            return
        self.sent_at = time.perf_counter()
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            try:
                framed = frame_response(self.buffer)
            except FramingError as exc:
                self.result.errors[f"framing: {exc}"] += 1
                self._finish("broken")
                return
            if framed is None:
                return
            del self.buffer[: framed.length]
            self.result.latencies.append(time.perf_counter() - self.sent_at)
            self.result.statuses[framed.status] += 1
            if framed.close:
                self._finish("closed")
                return
            self._send()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.finished.done():
            self.result.errors["disconnected"] += 1
            self._finish("lost")


async def _connect(
    loop: asyncio.AbstractEventLoop,
    destination: Destination,
    context: ssl.SSLContext,
    request: bytes,
    result: LoadResult,
) -> _HeartbeatProtocol:
    sock = socket.create_connection(destination.connect, timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setblocking(False)
    _, protocol = await loop.create_connection(
        lambda: _HeartbeatProtocol(request, result, loop),
        sock=sock,
        ssl=context,
        server_hostname=destination.host,
        ssl_handshake_timeout=10,
    )
    return protocol


async def _client_loop(
    destination: Destination,
    context: ssl.SSLContext,
    request: bytes,
    result: LoadResult,
    first: _HeartbeatProtocol,
    budget: _Budget,
) -> None:
    protocol = first
    while True:
        protocol.start(budget)
        reason = await protocol.finished
        if protocol.transport is not None:
            protocol.transport.close()
        if reason == "done" or time.perf_counter() >= budget.deadline:
            return
        try:
            protocol = await _connect(
                asyncio.get_running_loop(), destination, context, request, result
            )
        except (OSError, ssl.SSLError) as exc:
            result.errors[f"reconnect: {type(exc).__name__}"] += 1
            await asyncio.sleep(0.05)
            protocol = first
            if time.perf_counter() >= budget.deadline:
                return


def _prepare(
    destination: Destination,
    trust_der: bytes,
    clients: Sequence[LoadClient],
    duration: float,
    path: str,
) -> tuple[LoadResult, list[ssl.SSLContext], list[bytes]]:
    """Check the bounds and the target; an empty result, every client's TLS context and request."""
    if not 0 < len(clients) <= MAX_CLIENTS:
        raise ValueError(f"between 1 and {MAX_CLIENTS} clients")
    if not 0 < duration <= MAX_DURATION:
        raise ValueError(f"duration must be in (0, {MAX_DURATION}] seconds")
    check_target(destination)
    result = LoadResult(duration=0.0, connections=len(clients))
    contexts = [pinned_context(trust_der, client.cert) for client in clients]
    return result, contexts, [request_bytes(destination, c.body, path) for c in clients]


async def run_load(
    destination: Destination,
    trust_der: bytes,
    clients: Sequence[LoadClient],
    *,
    duration: float,
    max_requests: int | None = None,
    path: str = STATUS_PATH,
) -> LoadResult:
    """Run the load: one persistent connection per client, back-to-back heartbeats.

    Connections are set up (TLS handshakes included) before the clock starts.

    Args:
        destination: where to send (loopback or private only, see :func:`check_target`).
        trust_der: the pinned manager certificate.
        clients: enrolled clusters.
        duration: seconds to run (at most ``MAX_DURATION``).
        max_requests: stop after this many requests in total.
        path: request target.

    Returns:
        Counts, rate, latencies and errors.
    """
    result, contexts, requests = _prepare(destination, trust_der, clients, duration, path)
    loop = asyncio.get_running_loop()
    protocols = await asyncio.gather(
        *(
            _connect(loop, destination, c, r, result)
            for c, r in zip(contexts, requests, strict=True)
        )
    )
    started = time.perf_counter()
    budget = _Budget(started + duration, max_requests)
    await asyncio.gather(
        *(
            _client_loop(destination, c, r, result, p, budget)
            for c, r, p in zip(contexts, requests, protocols, strict=True)
        )
    )
    result.duration = time.perf_counter() - started
    return result


class _PacedProtocol(_HeartbeatProtocol):
    """Sends only when asked, one request at a time (open loop: the caller keeps the pace)."""

    waiter: asyncio.Future[None] | None = None

    def ask(self) -> asyncio.Future[None]:
        """Send the heartbeat; the future is done when its answer is in (or the link is gone)."""
        assert self.transport is not None  # noqa: S101 - connected before it is asked
        self.waiter = asyncio.get_running_loop().create_future()
        self.sent_at = time.perf_counter()
        self.transport.write(self.request)
        return self.waiter

    def _send(self) -> None:  # an answer arrived: wake the caller instead of sending again
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def data_received(self, data: bytes) -> None:
        if self.waiter is None or self.waiter.done():
            # Nothing was asked: the server gives up an idle connection (HAProxy answers 408
            # once `timeout http-request` passes). Go's client ignores such an answer and
            # dials again; so does this one, and it is not a heartbeat's answer.
            self.result.errors["idle connection closed by the server"] += 1
            self.buffer.clear()
            self._finish("closed")
            if self.transport is not None:
                self.transport.close()
            return
        super().data_received(data)

    def _finish(self, reason: str) -> None:
        super()._finish(reason)
        self._send()


async def run_paced(
    destination: Destination,
    trust_der: bytes,
    clients: Sequence[LoadClient],
    *,
    interval: float,
    duration: float,
    timeout: float = 30.0,
) -> LoadResult:
    """Every client heartbeats once per `interval`, as a fleet does, for `duration` seconds.

    The clients' first heartbeats are spread evenly over one interval; each keeps one
    connection (set up before the clock starts) and reconnects when the server closes it.

    Args:
        destination: where to send (loopback or private only, see :func:`check_target`).
        trust_der: the pinned manager certificate.
        clients: enrolled clusters.
        interval: seconds between two heartbeats of one client.
        duration: seconds to run (at most ``MAX_DURATION``).
        timeout: seconds one heartbeat may wait for its answer before it counts as an error.

    Returns:
        Counts, latencies and errors (the rate is the offered one: clients / interval).
    """
    result, contexts, requests = _prepare(destination, trust_der, clients, duration, STATUS_PATH)
    loop = asyncio.get_running_loop()

    async def connect(index: int) -> _PacedProtocol:
        _, protocol = await loop.create_connection(
            lambda: _PacedProtocol(requests[index], result, loop),
            *destination.connect,
            ssl=contexts[index],
            server_hostname=destination.host,
            ssl_handshake_timeout=10,
        )
        return protocol

    protocols = list(await asyncio.gather(*(connect(i) for i in range(len(clients)))))
    started = time.perf_counter()

    async def heartbeat_forever(index: int) -> None:
        due = started + interval * index / len(clients)
        while due < started + duration:
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            due += interval
            try:
                if protocols[index].finished.done():
                    protocols[index] = await connect(index)
                await asyncio.wait_for(protocols[index].ask(), timeout)
            except (OSError, ssl.SSLError, TimeoutError) as exc:
                result.errors[type(exc).__name__] += 1
                protocols[index].finished.cancel()

    await asyncio.gather(*(heartbeat_forever(i) for i in range(len(clients))))
    result.duration = time.perf_counter() - started
    for protocol in protocols:
        if protocol.transport is not None:
            protocol.transport.close()
    return result


def check_target(destination: Destination) -> None:
    """Refuse anything but a loopback or private destination (the benchmark stays local).

    Args:
        destination: the target.

    Raises:
        ValueError: for a public or non-IP destination.
    """
    try:
        address = ipaddress.ip_address(destination.connect[0])
    except ValueError as exc:
        raise ValueError(f"connect to an IP address, not {destination.connect[0]!r}") from exc
    if not (address.is_loopback or address.is_private):
        raise ValueError(f"refusing to load a non-local address: {address}")


def pin(destination: Destination, fingerprint: str | None) -> bytes:
    """Fetch the server certificate like MicroCloud's probe and check it.

    Args:
        destination: where to probe.
        fingerprint: expected SHA-256 (None: trust what is served, for the self-test).

    Returns:
        The certificate DER.
    """
    der = probe(destination, timeout=10)
    if fingerprint is not None:
        check_fingerprint(fingerprint, der)
    return der


def clients_from_state(state_dir: Path) -> tuple[list[LoadClient], JoinToken]:
    """Load enrolled clusters written by ``tools.fleet``.

    Args:
        state_dir: the fleet state directory.

    Returns:
        The clients (each with a heartbeat body) and one of their tokens.
    """
    clients: list[LoadClient] = []
    token: JoinToken | None = None
    for directory in sorted(p for p in state_dir.iterdir() if (p / "joined.json").exists()):
        token = JoinToken.decode((directory / "token").read_text())
        body = gojson.dump_bytes(PayloadGenerator(directory.name).payload())
        clients.append(LoadClient(CertKey.read(directory, "cluster"), body))
    if token is None:
        raise ValueError(f"no enrolled clusters in {state_dir} (run tools.fleet --once first)")
    return clients, token


def _trivial_server(conn: multiprocessing.connection.Connection, cert: CertKey) -> None:
    """Serve fixed 200 responses over TLS 1.3 (child process of the self-test)."""
    from tools.trivial_server import serve_forever

    serve_forever(cert, conn)


def self_test(clusters: int, duration: float) -> LoadResult:
    """Measure the generator's own ceiling against a trivial TLS server in another process.

    Args:
        clusters: connections (each with its own new certificate).
        duration: seconds.

    Returns:
        The result.
    """
    server_cert = pki.self_signed("trivial", dns_names=["localhost"], ip_addresses=["127.0.0.1"])
    parent, child = multiprocessing.Pipe()
    process = multiprocessing.Process(target=_trivial_server, args=(child, server_cert))
    process.start()
    try:
        port = parent.recv()
        destination = destinations(["localhost:443"], {"localhost:443": ("127.0.0.1", port)})[0]
        der = pin(destination, server_cert.fingerprint)
        body = gojson.dump_bytes(PayloadGenerator("self-test").payload())
        clients = [LoadClient(pki.cluster_certificate(f"mc-{i}"), body) for i in range(clusters)]
        return asyncio.run(run_load(destination, der, clients, duration=duration))
    finally:
        process.terminate()
        process.join(5)


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser."""
    parser = argparse.ArgumentParser(
        prog="python -m tools.loadgen",
        description="Keep-alive mTLS heartbeat load against a local cluster manager.",
    )
    parser.add_argument("--state-dir", type=Path, help="fleet state dir of enrolled clusters")
    parser.add_argument("--connect", help="IP:PORT to connect to (default: the token address)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds (max 600)")
    parser.add_argument("--max-requests", type=int, help="stop after this many requests")
    parser.add_argument(
        "--self-test", type=int, metavar="N", help="N connections against a trivial TLS server"
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m tools.loadgen``.

    Args:
        argv: arguments (default: ``sys.argv[1:]``).

    Returns:
        Exit code.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.self_test:
            result = self_test(args.self_test, args.duration)
        elif args.state_dir:
            clients, token = clients_from_state(args.state_dir)
            resolve = {}
            if args.connect:
                host, _, port = args.connect.rpartition(":")
                resolve = {token.addresses[0]: (host, int(port))}
            destination = destinations(token.addresses[:1], resolve)[0]
            der = pin(destination, token.fingerprint)
            result = asyncio.run(
                run_load(
                    destination,
                    der,
                    clients,
                    duration=args.duration,
                    max_requests=args.max_requests,
                )
            )
        else:
            parser.error("give --state-dir (enrolled fleet) or --self-test N")
    except (ValueError, OSError) as exc:
        print(f"loadgen: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result.as_dict()) if args.json else result.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
