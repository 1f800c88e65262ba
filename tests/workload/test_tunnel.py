"""The reverse tunnel through the real front: MicroCloud-shaped clusters, a real tunnel process.

The clusters are the emulator's (`tools/tunnel.py`: microcloudd's dialer and request loop, read
from canonical/microcloud `cmd/microcloudd/cluster_manager_tunnel.go` and
`client/cluster_manager_client.go`), their LXD the emulated one (`tools/lxd.py`: LXD's answers
and its refusal of callers without credentials, from canonical/lxd `lxd/daemon.go`).
"""

from __future__ import annotations

import concurrent.futures
import http.client
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support import raw_tls
from tests.support.clusters import enroll
from tests.workload.test_metrics import scrape, value
from tools import pki
from tools.lxd import EmulatedLXD, LXDRequest, LXDResponse
from tools.microcloud import MicroCloudClient
from tools.postgres import PostgresServer
from tools.stack import Stack
from tools.tlsclient import pinned_context
from tools.tunnel import TunnelClient, TunnelHandshakeError, WebSocket

TIMEOUT = 3
DIAL_INTERVAL = 0.2


@pytest.fixture(scope="module")
def stack(postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = {
        "MCM_TUNNEL_TIMEOUT": str(TIMEOUT),
        "MCM_TUNNEL_CHECK_INTERVAL": "1",
        "MCM_RATE_LIMIT_MANAGEMENT": "100000/minute",
    }
    url = postgres.create_database("tunnel")
    with Stack(Path(tmp_path_factory.mktemp("tunnel")), url, env=env) as running:
        yield running


@pytest.fixture(scope="module")
def api(stack: Stack) -> requests.Session:
    return stack.management_session()


class SlowLXD:
    """An emulated LXD that takes `delay` seconds per request and notes how many overlap."""

    def __init__(self, delay: float):
        self.lxd = EmulatedLXD()
        self.delay = delay
        self.busy = 0
        self.most_at_once = 0
        self._lock = threading.Lock()

    def __call__(self, request: LXDRequest) -> LXDResponse:
        with self._lock:
            self.busy += 1
            self.most_at_once = max(self.most_at_once, self.busy)
        try:
            time.sleep(self.delay)
            return self.lxd(request)
        finally:
            with self._lock:
                self.busy -= 1


OpenTunnel = Callable[..., tuple[MicroCloudClient, TunnelClient]]


@pytest.fixture
def open_tunnel(stack: Stack) -> Iterator[OpenTunnel]:
    """Enroll a cluster and open its tunnel; every tunnel opened is stopped afterwards."""
    opened: list[TunnelClient] = []

    def open_(name: str, lxd: Any = None) -> tuple[MicroCloudClient, TunnelClient]:
        client = enroll(stack, name)
        tunnel = client.tunnel(lxd or EmulatedLXD(), interval=DIAL_INTERVAL)
        opened.append(tunnel.start())
        assert tunnel.wait_connected(10), tunnel.errors
        return client, tunnel

    yield open_
    for tunnel in opened:
        tunnel.stop()


def through(api: requests.Session, stack: Stack, cluster: str, lxd_path: str, **kwargs: Any):
    url = f"{stack.management_url}/1.0/remote-cluster/{cluster}/tunnel/{lxd_path}"
    return api.request(kwargs.pop("method", "GET"), url, timeout=30, **kwargs)


def cluster_object(api: requests.Session, stack: Stack, name: str) -> dict[str, Any]:
    response = api.get(f"{stack.management_url}/1.0/remote-cluster/{name}", timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["metadata"]


def wait_for(condition: Callable[[], bool], timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def test_an_enrolled_cluster_opens_its_tunnel_and_its_object_says_so(
    stack: Stack, api: requests.Session, open_tunnel: OpenTunnel
) -> None:
    open_tunnel("tun-handshake")

    cluster = cluster_object(api, stack, "tun-handshake")

    assert cluster["tunnel_registered"] is True
    assert cluster["tunnel_connected_at"].endswith("Z")


def test_a_cluster_without_tunnel_is_not_registered(stack: Stack, api: requests.Session) -> None:
    enroll(stack, "tun-none")

    cluster = cluster_object(api, stack, "tun-none")

    assert cluster["tunnel_registered"] is False
    assert cluster["tunnel_connected_at"] is None


def dial_errors(client: MicroCloudClient) -> list[str]:
    """What the cluster's tunnel logged when it dialled and was refused (it never opens)."""
    tunnel = client.tunnel(EmulatedLXD(), interval=DIAL_INTERVAL).start()
    try:
        assert wait_for(lambda: bool(tunnel.errors), 10)
        assert not tunnel.connected
    finally:
        tunnel.stop()
    return tunnel.errors


def test_an_unknown_certificate_cannot_open_a_tunnel(stack: Stack) -> None:
    stranger = MicroCloudClient(stack.mint_token("tun-stranger"), resolve=stack.resolve)

    errors = dial_errors(stranger)

    assert "HTTP 403" in errors[0], errors


def test_a_removed_cluster_cannot_open_a_tunnel(stack: Stack, api: requests.Session) -> None:
    client = enroll(stack, "tun-removed")
    assert api.delete(f"{stack.management_url}/1.0/remote-cluster/tun-removed").ok

    errors = dial_errors(client)

    assert "HTTP 403" in errors[0], errors


def test_removing_a_cluster_closes_its_open_tunnel(
    stack: Stack, api: requests.Session, open_tunnel: OpenTunnel
) -> None:
    _, tunnel = open_tunnel("tun-remove-open")

    assert api.delete(f"{stack.management_url}/1.0/remote-cluster/tun-remove-open").ok

    assert tunnel.wait_disconnected(10)


def test_a_request_goes_to_the_clusters_lxd_and_its_answer_comes_back(
    stack: Stack, api: requests.Session, open_tunnel: OpenTunnel
) -> None:
    lxd = EmulatedLXD(server_name="mc-01")
    open_tunnel("tun-roundtrip", lxd)

    response = through(api, stack, "tun-roundtrip", "1.0")

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert body["type"] == "sync"
    assert body["metadata"]["auth"] == "untrusted"
    assert [request.target for request in lxd.requests] == ["/1.0"]


def test_the_query_string_reaches_lxd(
    stack: Stack, api: requests.Session, open_tunnel: OpenTunnel
) -> None:
    lxd = EmulatedLXD()
    open_tunnel("tun-query", lxd)

    through(api, stack, "tun-query", "1.0/instances?recursion=1&project=default")

    assert lxd.requests[-1].target == "/1.0/instances?recursion=1&project=default"


def test_an_api_token_caller_sends_no_credentials_so_lxd_refuses_the_instances(
    stack: Stack, api: requests.Session, open_tunnel: OpenTunnel
) -> None:
    lxd = EmulatedLXD()
    open_tunnel("tun-anonymous", lxd)

    response = through(api, stack, "tun-anonymous", "1.0/instances")

    assert response.status_code == 403
    assert response.json()["error"] == "Forbidden"
    assert lxd.requests[-1].header("Authorization") == ""
    assert lxd.requests[-1].header("Cookie") == ""


def test_the_callers_own_headers_never_reach_lxd(
    stack: Stack, api: requests.Session, open_tunnel: OpenTunnel
) -> None:
    lxd = EmulatedLXD()
    open_tunnel("tun-headers", lxd)

    through(api, stack, "tun-headers", "1.0", headers={"Cookie": "mine=1", "X-Custom": "x"})

    sent = dict(lxd.requests[-1].headers)
    assert sent["Cookie"] == ""
    assert "X-Custom" not in sent


@pytest.fixture(scope="module")
def path_lxd(stack: Stack) -> Iterator[EmulatedLXD]:
    """One cluster with an open tunnel, for the path checks."""
    lxd = EmulatedLXD()
    with enroll(stack, "tun-paths").tunnel(lxd, interval=DIAL_INTERVAL) as tunnel:
        assert tunnel.wait_connected(10), tunnel.errors
        yield lxd


@pytest.mark.parametrize(
    "raw_path",
    ["2.0/instances", "1.0/../2.0", "1.0//instances", "1.0/./instances", "10/instances"],
)
def test_a_path_outside_the_lxd_api_is_refused_and_never_sent(
    stack: Stack, api: requests.Session, path_lxd: EmulatedLXD, raw_path: str
) -> None:
    context = ssl.create_default_context(cafile=stack.management_ca)
    # http.client sends the path as written: requests would resolve the dot segments first.
    connection = http.client.HTTPSConnection(
        "127.0.0.1", stack.management_port, context=context, timeout=10
    )
    connection.request(
        "GET",
        f"/1.0/remote-cluster/tun-paths/tunnel/{raw_path}",
        headers={"Authorization": str(api.headers["Authorization"])},
    )
    response = connection.getresponse()
    body = response.read()
    connection.close()

    assert response.status == 400, body
    assert path_lxd.requests == []


def test_an_unknown_cluster_is_not_found(stack: Stack, api: requests.Session) -> None:
    response = through(api, stack, "tun-nobody", "1.0")

    assert response.status_code == 404
    assert response.json()["error"] == "remote cluster tun-nobody not found"


def test_a_cluster_without_a_tunnel_answers_503(stack: Stack, api: requests.Session) -> None:
    enroll(stack, "tun-closed")

    response = through(api, stack, "tun-closed", "1.0")

    assert response.status_code == 503
    assert response.json()["error"] == "remote cluster tun-closed has no active tunnel"


def test_ten_parallel_requests_to_one_cluster_are_all_answered_one_at_a_time(
    stack: Stack, api: requests.Session, open_tunnel: OpenTunnel
) -> None:
    lxd = SlowLXD(0.05)
    open_tunnel("tun-parallel", lxd)

    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        statuses = list(
            pool.map(lambda _: through(api, stack, "tun-parallel", "1.0").status_code, range(10))
        )

    assert statuses == [200] * 10
    assert len(lxd.lxd.requests) == 10
    assert lxd.most_at_once == 1


def test_a_cluster_that_does_not_answer_in_time_gives_504(
    stack: Stack, api: requests.Session, open_tunnel: OpenTunnel
) -> None:
    open_tunnel("tun-slow", SlowLXD(TIMEOUT + 2))

    response = through(api, stack, "tun-slow", "1.0")

    assert response.status_code == 504
    assert response.json()["error"] == f"cluster tun-slow did not answer within {TIMEOUT}s"


def test_closing_the_tunnel_clears_its_registration(
    stack: Stack, api: requests.Session, open_tunnel: OpenTunnel
) -> None:
    _, tunnel = open_tunnel("tun-close")

    tunnel.close_tunnel()
    tunnel.enabled = False

    assert wait_for(lambda: not cluster_object(api, stack, "tun-close")["tunnel_registered"])
    assert through(api, stack, "tun-close", "1.0").status_code == 503


def test_a_new_tunnel_of_a_cluster_replaces_its_old_one(
    stack: Stack, api: requests.Session, open_tunnel: OpenTunnel
) -> None:
    client, first = open_tunnel("tun-replace")
    second_lxd = EmulatedLXD()
    second = client.tunnel(second_lxd, interval=DIAL_INTERVAL).start()
    try:
        assert second.wait_connected(10), second.errors
        first.enabled = False  # the old leader stops dialling (it lost leadership)

        assert first.wait_disconnected(10)
        response = through(api, stack, "tun-replace", "1.0")
    finally:
        second.stop()

    assert response.status_code == 200
    assert len(second_lxd.requests) == 1


def test_lxd_cookies_stay_on_the_manager(
    stack: Stack, api: requests.Session, open_tunnel: OpenTunnel
) -> None:
    # The emulated LXD sets its session cookie once a bearer token is accepted; without one it
    # sets none, so an API-token caller never holds LXD cookies and gets no Set-Cookie.
    open_tunnel("tun-cookies")

    response = through(api, stack, "tun-cookies", "1.0")

    assert "Set-Cookie" not in response.headers


def test_the_answer_carries_the_managers_security_headers(
    stack: Stack, api: requests.Session, open_tunnel: OpenTunnel
) -> None:
    open_tunnel("tun-security")

    response = through(api, stack, "tun-security", "1.0")

    assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_the_tunnel_process_reports_alive_and_ready(stack: Stack) -> None:
    health = f"http://127.0.0.1:{stack.health_port}"

    assert requests.get(f"{health}/health/tunnel", timeout=5).text == "ok\n"
    assert requests.get(f"{health}/ready/tunnel", timeout=5).status_code == 200


# -- a second stack: small queue, fast keep-alive ------------------------------------------


@pytest.fixture(scope="module")
def tight_stack(
    postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    env = {
        "MCM_TUNNEL_QUEUE_SIZE": "2",
        "MCM_TUNNEL_PING_INTERVAL": "2",
        "MCM_TUNNEL_MAX_ANSWER_MIB": "1",
        "MCM_RATE_LIMIT_MANAGEMENT": "100000/minute",
    }
    url = postgres.create_database("tunnel_tight")
    with Stack(Path(tmp_path_factory.mktemp("tunnel-tight")), url, env=env) as running:
        yield running


def test_requests_beyond_the_queue_are_refused_with_503(tight_stack: Stack) -> None:
    api = tight_stack.management_session()
    client = enroll(tight_stack, "tun-queue")
    with client.tunnel(SlowLXD(1.0), interval=DIAL_INTERVAL) as tunnel:
        assert tunnel.wait_connected(10), tunnel.errors
        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            responses = list(
                pool.map(lambda _: through(api, tight_stack, "tun-queue", "1.0"), range(6))
            )

    statuses = sorted(response.status_code for response in responses)
    refused = [r.json()["error"] for r in responses if r.status_code == 503]
    assert statuses.count(200) >= 2
    assert refused and refused[0] == "2 requests to tun-queue are waiting already"


def handshake(client: MicroCloudClient) -> WebSocket:
    """Open a websocket as microcloudd dials it, without anything reading from it."""
    destination, der = client.probe()
    context = pinned_context(der, client.cluster_cert)
    raw = socket.create_connection(destination.connect, 10)
    sock = context.wrap_socket(raw, server_hostname=destination.host)
    return WebSocket.connect(sock, destination.address)


def test_a_peer_that_stops_answering_pings_is_dropped(tight_stack: Stack) -> None:
    api = tight_stack.management_session()
    client = enroll(tight_stack, "tun-silent")
    ws = handshake(client)  # and then never reads: no pongs
    try:
        assert cluster_object(api, tight_stack, "tun-silent")["tunnel_registered"] is True

        assert wait_for(
            lambda: not cluster_object(api, tight_stack, "tun-silent")["tunnel_registered"], 10
        )
    finally:
        ws.abort()


def test_an_expired_certificate_is_told_why_it_cannot_open_a_tunnel(stack: Stack) -> None:
    now = datetime.now(UTC)
    expired = pki.cluster_certificate(
        "tun-expired", not_before=now - timedelta(days=2), not_after=now - timedelta(days=1)
    )
    client = MicroCloudClient(stack.mint_token("tun-expired"), expired, resolve=stack.resolve)

    with pytest.raises(TunnelHandshakeError) as refused:
        handshake(client)

    assert refused.value.status == 403
    assert b"TLS client certificate expired at" in refused.value.body


def test_the_tunnel_path_takes_only_get(stack: Stack) -> None:
    client = enroll(stack, "tun-post")

    response = client.request("POST", "/1.0/remote-cluster/ws", b"{}")

    assert response.status == 405
    assert response.headers.get("allow") == "GET"


def test_a_get_of_the_tunnel_path_without_an_upgrade_is_a_bad_request(stack: Stack) -> None:
    client = enroll(stack, "tun-plain-get")

    response = client.request("GET", "/1.0/remote-cluster/ws")

    assert response.status == 400
    assert response.json["error"] == "a websocket upgrade is required"


def registered(stack: Stack, name: str) -> bool:
    return cluster_object(stack.management_session(), stack, name)["tunnel_registered"]


def test_a_tunnel_process_that_crashed_clears_its_old_registrations_when_it_restarts(
    tight_stack: Stack,
) -> None:
    client = enroll(tight_stack, "tun-crash")
    ws = handshake(client)
    try:
        assert registered(tight_stack, "tun-crash")
        tight_stack.kill_process("tunnel")
        assert registered(tight_stack, "tun-crash")  # nobody was there to clear it

        tight_stack.start_app("tunnel")
        tight_stack.wait_ready("tunnel")
    finally:
        ws.abort()

    assert wait_for(lambda: not registered(tight_stack, "tun-crash"))


def test_stopping_the_tunnel_process_clears_its_registrations(tight_stack: Stack) -> None:
    client = enroll(tight_stack, "tun-stop")
    ws = handshake(client)
    try:
        assert registered(tight_stack, "tun-stop")

        tight_stack.stop_process("tunnel")
    finally:
        ws.abort()
        tight_stack.start_app("tunnel")
        tight_stack.wait_ready("tunnel")

    assert not registered(tight_stack, "tun-stop")


def test_a_request_body_over_the_management_limit_is_refused_before_the_tunnel(
    stack: Stack, api: requests.Session
) -> None:
    context = raw_tls.tls_context(stack.management_identity.cert_pem)

    # Announced, never sent: the front answers from the headers alone.
    response = raw_tls.announce_body(
        stack.management_port,
        "localhost",
        context,
        "/1.0/remote-cluster/tun-any/tunnel/1.0/instances",
        2 * 2**20,
        headers={"Authorization": str(api.headers["Authorization"])},
    )

    assert response.status == 413


class HugeLXD:
    """An LXD whose every answer is `size` bytes of JSON (a very large instance list)."""

    def __init__(self, size: int):
        self.body = b'{"metadata":"' + b"x" * size + b'"}'

    def __call__(self, request: LXDRequest) -> LXDResponse:
        return LXDResponse(200, (("Content-Type", "application/json"),), self.body)


def test_an_answer_over_the_size_limit_gives_502_and_closes_the_tunnel(tight_stack: Stack) -> None:
    api = tight_stack.management_session()
    client = enroll(tight_stack, "tun-huge")
    with client.tunnel(HugeLXD(2 * 2**20), interval=DIAL_INTERVAL) as tunnel:
        assert tunnel.wait_connected(10), tunnel.errors

        response = through(api, tight_stack, "tun-huge", "1.0")

        assert tunnel.wait_disconnected(10)
    assert response.status_code == 502
    assert response.json()["error"] == "the answer of tun-huge was larger than 1 MiB"


def test_metrics_count_the_clusters_holding_a_tunnel(
    stack: Stack, open_tunnel: OpenTunnel
) -> None:
    before = value(scrape(stack), "mcm_clusters_with_tunnel")

    open_tunnel("tun-metrics")

    assert value(scrape(stack), "mcm_clusters_with_tunnel") == before + 1
