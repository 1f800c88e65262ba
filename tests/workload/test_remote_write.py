"""Forwarding heartbeats' LXD metrics: the forwarder against real endpoints.

Label correctness is checked in a real Prometheus (the receiver decides what a series is);
headers, batching, retries and failures against a recording endpoint that answers what a test
scripts. The forwarder process itself is started as Pebble starts it and fed through the
connector workers' client; the whole path from a heartbeat is in test_metrics.py and
tests/e2e/test_prometheus.py.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cluster_manager.forwarding.client import ForwarderClient
from cluster_manager.forwarding.forwarder import Forwarder, member_labels
from cluster_manager.forwarding.sender import HEADERS, Sender
from cluster_manager.forwarding.wire import SOCKET_NAME, Heartbeat, MemberMetrics
from prometheus_client import REGISTRY

from tests.support.prometheus import PrometheusServer
from tests.support.receiver import RecordingReceiver
from tools.payloads import PayloadGenerator


def members_of(generator: PayloadGenerator) -> tuple[MemberMetrics, ...]:
    return tuple(
        MemberMetrics(entry["member"], entry["metrics"])
        for entry in generator.payload()["server_metrics"]
    )


def beat(cluster: str, *members: MemberMetrics) -> Heartbeat:
    return Heartbeat(cluster, int(time.time() * 1000), members)


def forwarder(*urls: str, **options: float) -> Forwarder:
    retries = int(options.pop("retries", 3))
    sender = Sender(urls, retries=retries, backoff=options.pop("backoff", 0.5))
    return Forwarder(sender, **options).start()  # type: ignore[arg-type]


def counter(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


UPTIME = MemberMetrics("m1", "lxd_uptime_seconds 1\n")


def test_series_are_labelled_with_cluster_member_and_job(prometheus: PrometheusServer):
    running = forwarder(prometheus.remote_write_url)

    running.submit(beat("rw-labels", *members_of(PayloadGenerator("rw-labels", members=2))))

    assert running.wait_idle(10)
    result = prometheus.wait_for('lxd_uptime_seconds{cluster="rw-labels"}', lambda r: len(r) == 2)
    assert sorted(item["metric"]["member"] for item in result) == ["micro1", "micro2"]
    assert {item["metric"]["job"] for item in result} == {"rw_labels"}


def test_every_series_of_a_realistic_heartbeat_reaches_prometheus(prometheus: PrometheusServer):
    members = members_of(PayloadGenerator("rw-count", members=3, instances=30))
    sent = sum(1 for m in members for line in m.text.splitlines() if not line.startswith("#"))
    running = forwarder(prometheus.remote_write_url, max_request_bytes=64 * 1024)

    running.submit(beat("rw-count", *members))

    assert running.wait_idle(20)
    prometheus.wait_for('count({cluster="rw-count"})', lambda r: r[0]["value"][1] == str(sent))


def test_sample_labels_are_kept(prometheus: PrometheusServer):
    text = 'lxd_procs_total{name="web-01",project="default",type="container"} 21\n'
    running = forwarder(prometheus.remote_write_url)

    running.submit(beat("rw-keep", MemberMetrics("m1", text)))

    assert running.wait_idle(10)
    [item] = prometheus.wait_for('lxd_procs_total{cluster="rw-keep"}')
    assert item["metric"] == {
        "__name__": "lxd_procs_total",
        "cluster": "rw-keep",
        "job": "rw_keep",
        "member": "m1",
        "name": "web-01",
        "project": "default",
        "type": "container",
    }
    assert item["value"][1] == "21"


def test_member_labels_are_cluster_member_and_upstreams_job():
    assert member_labels("my-cloud", "m1") == {
        "cluster": "my-cloud",
        "job": "my_cloud",
        "member": "m1",
    }


def test_requests_carry_the_remote_write_headers_and_a_snappy_protobuf_body():
    with RecordingReceiver() as receiver:
        running = forwarder(receiver.url)

        running.submit(beat("rw-wire", MemberMetrics("m1", "lxd_warnings_total 3\n")))

        assert running.wait_idle(10)
    [request] = receiver.requests
    assert {key: request.headers[key] for key in HEADERS} == HEADERS
    [(labels, value, timestamp)] = request.series()
    assert labels == {
        "__name__": "lxd_warnings_total",
        "cluster": "rw-wire",
        "job": "rw_wire",
        "member": "m1",
    }
    assert value == 3.0
    assert abs(timestamp / 1000 - time.time()) < 60


def test_series_are_cut_into_requests_no_bigger_than_the_limit():
    members = members_of(PayloadGenerator("rw-batch", members=2, instances=10))
    with RecordingReceiver() as receiver:
        running = forwarder(receiver.url, max_request_bytes=16 * 1024)

        running.submit(beat("rw-batch", *members))

        assert running.wait_idle(10)
    sizes = [len(r.body) for r in receiver.requests]
    series = [s for r in receiver.requests for s in r.series()]
    assert len(sizes) > 2
    assert all(size <= 16 * 1024 for size in sizes)
    assert len({tuple(sorted(labels.items())) for labels, _, _ in series}) == len(series)
    assert len(series) == sum(
        1 for m in members for line in m.text.splitlines() if not line.startswith("#")
    )


def test_bad_text_of_one_member_is_skipped_and_counted_while_the_other_is_sent():
    bad_before = counter("mcm_remote_write_bad_metrics_total")
    with RecordingReceiver() as receiver:
        running = forwarder(receiver.url)

        running.submit(
            beat("rw-bad", MemberMetrics("good", UPTIME.text), MemberMetrics("bad", "}{ 1 2 3\n"))
        )

        assert running.wait_idle(10)
    assert counter("mcm_remote_write_bad_metrics_total") == bad_before + 1
    [request] = receiver.requests
    assert [labels["member"] for labels, _, _ in request.series()] == ["good"]


def test_server_errors_are_retried_until_accepted():
    sent_before = counter("mcm_remote_write_sent_total")
    with RecordingReceiver() as receiver:
        receiver.statuses = [503, 500]
        running = forwarder(receiver.url, backoff=0.01)

        running.submit(beat("rw-retry", UPTIME))

        assert running.wait_idle(10)
    assert len(receiver.requests) == 3
    assert counter("mcm_remote_write_sent_total") == sent_before + 1


def test_a_refused_request_is_not_retried_and_counted_failed():
    failed_before = counter("mcm_remote_write_failed_total")
    with RecordingReceiver(default_status=400) as receiver:
        running = forwarder(receiver.url, backoff=0.01)

        running.submit(beat("rw-refused", UPTIME))

        assert running.wait_idle(10)
    assert len(receiver.requests) == 1
    assert counter("mcm_remote_write_failed_total") == failed_before + 1


def test_an_unreachable_endpoint_is_counted_failed_after_the_retries():
    failed_before = counter("mcm_remote_write_failed_total")
    running = forwarder("http://127.0.0.1:9/api/v1/write", retries=2, backoff=0.01)

    running.submit(beat("rw-down", UPTIME))

    assert running.wait_idle(10)
    assert counter("mcm_remote_write_failed_total") == failed_before + 1


def test_submit_returns_at_once_and_drops_beyond_the_queue_while_the_endpoint_hangs():
    dropped_before = counter("mcm_remote_write_dropped_total")
    hang = 1.0
    with RecordingReceiver(delay=hang) as receiver:
        running = forwarder(receiver.url, queue_size=2, outbox_bytes=1)  # one request waits
        running.submit(beat("rw-slow", UPTIME))
        deadline = time.monotonic() + 5
        while not receiver.requests and time.monotonic() < deadline:
            time.sleep(0.01)  # the pusher now waits for the slow endpoint

        started = time.perf_counter()
        accepted = [running.submit(beat("rw-slow", UPTIME)) for _ in range(10)]
        elapsed = time.perf_counter() - started

        assert running.wait_idle(15)
    # Not a speed target: ten submits finishing within one hang prove none waited for it.
    assert elapsed < hang
    # Two wait in the queue; the encoder holds one more, the outbox one, the other pusher one.
    assert accepted.count(False) >= 5
    assert accepted[:2] == [True, True]
    assert counter("mcm_remote_write_dropped_total") == dropped_before + accepted.count(False)


def test_one_request_goes_to_every_url():
    with RecordingReceiver() as first, RecordingReceiver() as second:
        running = forwarder(first.url, second.url)

        running.submit(beat("rw-fanout", UPTIME))

        assert running.wait_idle(10)
    assert len(first.requests) == len(second.requests) == 1
    assert first.requests[0].body == second.requests[0].body


# -- the forwarder process ---------------------------------------------------------------------


@pytest.fixture
def forwarder_process(tmp_path: Path, prometheus: PrometheusServer) -> Iterator[Path]:
    """The forwarder running as Pebble runs it; yields its socket's path."""
    env = {
        **os.environ,
        "MCM_DATABASE_URL": "postgresql://unused/unused",
        "MCM_CONNECTOR_DOMAIN": "cc.mcm.test",
        "MCM_RUN_DIR": str(tmp_path),
        "MCM_REMOTE_WRITE_URLS": prometheus.remote_write_url,
    }
    process = subprocess.Popen([sys.executable, "-m", "cluster_manager.forwarding"], env=env)
    path = tmp_path / SOCKET_NAME
    deadline = time.monotonic() + 15
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield path
    finally:
        process.terminate()
        assert process.wait(10) == 0


def health(path: Path) -> bytes:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.connect(str(path))
        probe.sendall(b"GET /healthz HTTP/1.1\r\nHost: forwarder\r\n\r\n")
        return probe.recv(4096)


def test_the_forwarder_process_delivers_what_a_worker_hands_it(
    forwarder_process: Path, prometheus: PrometheusServer
):
    client = ForwarderClient(forwarder_process)

    assert client.submit("rw-process", members_of(PayloadGenerator("rw-process", members=2)))

    assert client.wait_idle(10)
    result = prometheus.wait_for('lxd_uptime_seconds{cluster="rw-process"}', lambda r: len(r) == 2)
    assert {item["metric"]["job"] for item in result} == {"rw_process"}
    assert health(forwarder_process).startswith(b"HTTP/1.1 200 OK\r\n")


def test_a_worker_drops_and_counts_when_the_forwarder_is_down(tmp_path: Path):
    dropped_before = counter("mcm_remote_write_dropped_total")
    client = ForwarderClient(tmp_path / SOCKET_NAME)

    started = time.perf_counter()
    accepted = client.submit("rw-nobody", [UPTIME])
    elapsed = time.perf_counter() - started

    assert client.wait_idle(10)
    assert accepted  # queued at once; what fails later is counted, not raised
    assert elapsed < 1
    assert counter("mcm_remote_write_dropped_total") == dropped_before + 1
