"""Forwarding heartbeats' LXD metrics: the remote-write writer against real endpoints.

Label correctness is checked in a real Prometheus (the receiver decides what a series is);
headers, retries and failures against a recording endpoint that answers what a test scripts.
"""

from __future__ import annotations

import time

import pytest
from cluster_manager.remote_write import (
    HEADERS,
    MemberMetrics,
    MetricsTextError,
    RemoteWriter,
    parse_member_metrics,
)
from prometheus_client import REGISTRY

from tests.support.prometheus import PrometheusServer
from tests.support.receiver import RecordingReceiver
from tools.payloads import PayloadGenerator


def members_of(generator: PayloadGenerator) -> list[MemberMetrics]:
    return [
        MemberMetrics(entry["member"], entry["metrics"])
        for entry in generator.payload()["server_metrics"]
    ]


def counter(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


def test_series_are_labelled_with_cluster_member_and_job(prometheus: PrometheusServer):
    writer = RemoteWriter([prometheus.remote_write_url])

    writer.submit("rw-labels", members_of(PayloadGenerator("rw-labels", members=2)))

    assert writer.wait_idle(10)
    result = prometheus.wait_for('lxd_uptime_seconds{cluster="rw-labels"}', lambda r: len(r) == 2)
    assert sorted(item["metric"]["member"] for item in result) == ["micro1", "micro2"]
    assert {item["metric"]["job"] for item in result} == {"rw_labels"}


def test_counter_samples_keep_their_total_name(prometheus: PrometheusServer):
    writer = RemoteWriter([prometheus.remote_write_url])

    writer.submit("rw-counters", members_of(PayloadGenerator("rw-counters", members=1)))

    assert writer.wait_idle(10)
    assert prometheus.wait_for('lxd_cpu_seconds_total{cluster="rw-counters"}')


def test_sample_labels_are_kept(prometheus: PrometheusServer):
    text = 'lxd_procs_total{name="web-01",project="default",type="container"} 21\n'
    writer = RemoteWriter([prometheus.remote_write_url])

    writer.submit("rw-keep", [MemberMetrics("m1", text)])

    assert writer.wait_idle(10)
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


def test_cluster_and_member_labels_in_the_text_are_overridden():
    text = 'lxd_uptime_seconds{cluster="other",member="x",job="y"} 5\n'

    [series] = parse_member_metrics("real", "m1", text, 1000)

    assert dict(series.labels) == {
        "__name__": "lxd_uptime_seconds",
        "cluster": "real",
        "member": "m1",
        "job": "real",
    }


def test_unparsable_text_raises_metrics_text_error():
    with pytest.raises(MetricsTextError):
        parse_member_metrics("c", "m", "this is { not metrics\n", 0)


def test_requests_carry_the_remote_write_headers_and_a_snappy_protobuf_body():
    text = "lxd_warnings_total 3\n"
    with RecordingReceiver() as receiver:
        writer = RemoteWriter([receiver.url])

        writer.submit("rw-wire", [MemberMetrics("m1", text)])

        assert writer.wait_idle(10)
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


def test_bad_text_of_one_member_is_skipped_and_counted_while_the_other_is_sent():
    bad_before = counter("mcm_remote_write_bad_metrics_total")
    with RecordingReceiver() as receiver:
        writer = RemoteWriter([receiver.url])

        writer.submit(
            "rw-bad",
            [MemberMetrics("good", "lxd_uptime_seconds 1\n"), MemberMetrics("bad", "}{ 1 2 3\n")],
        )

        assert writer.wait_idle(10)
    assert counter("mcm_remote_write_bad_metrics_total") == bad_before + 1
    [request] = receiver.requests
    assert [labels["member"] for labels, _, _ in request.series()] == ["good"]


def test_server_errors_are_retried_until_accepted():
    sent_before = counter("mcm_remote_write_sent_total")
    with RecordingReceiver() as receiver:
        receiver.statuses = [503, 500]
        writer = RemoteWriter([receiver.url], backoff=0.01)

        writer.submit("rw-retry", [MemberMetrics("m1", "lxd_uptime_seconds 1\n")])

        assert writer.wait_idle(10)
    assert len(receiver.requests) == 3
    assert counter("mcm_remote_write_sent_total") == sent_before + 1


def test_a_refused_request_is_not_retried_and_counted_failed():
    failed_before = counter("mcm_remote_write_failed_total")
    with RecordingReceiver(default_status=400) as receiver:
        writer = RemoteWriter([receiver.url], backoff=0.01)

        writer.submit("rw-refused", [MemberMetrics("m1", "lxd_uptime_seconds 1\n")])

        assert writer.wait_idle(10)
    assert len(receiver.requests) == 1
    assert counter("mcm_remote_write_failed_total") == failed_before + 1


def test_an_unreachable_endpoint_is_counted_failed_after_the_retries():
    failed_before = counter("mcm_remote_write_failed_total")
    writer = RemoteWriter(["http://127.0.0.1:9/api/v1/write"], retries=2, backoff=0.01)

    writer.submit("rw-down", [MemberMetrics("m1", "lxd_uptime_seconds 1\n")])

    assert writer.wait_idle(10)
    assert counter("mcm_remote_write_failed_total") == failed_before + 1


def test_submit_returns_at_once_and_drops_beyond_the_queue_while_the_endpoint_hangs():
    dropped_before = counter("mcm_remote_write_dropped_total")
    hang = 1.0
    with RecordingReceiver(delay=hang) as receiver:
        writer = RemoteWriter([receiver.url], queue_size=2)
        members = [MemberMetrics("m1", "lxd_uptime_seconds 1\n")]
        writer.submit("rw-slow", members)
        deadline = time.monotonic() + 5
        while not receiver.requests and time.monotonic() < deadline:
            time.sleep(0.01)  # the thread now waits for the slow endpoint

        started = time.perf_counter()
        accepted = [writer.submit("rw-slow", members) for _ in range(10)]
        elapsed = time.perf_counter() - started

        assert writer.wait_idle(15)
    # Not a speed target: ten submits finishing within one hang prove none waited for it.
    assert elapsed < hang
    assert accepted == [True, True] + [False] * 8
    assert counter("mcm_remote_write_dropped_total") == dropped_before + 8


def test_one_request_goes_to_every_url():
    with RecordingReceiver() as first, RecordingReceiver() as second:
        writer = RemoteWriter([first.url, second.url])

        writer.submit("rw-fanout", [MemberMetrics("m1", "lxd_uptime_seconds 1\n")])

        assert writer.wait_idle(10)
    assert len(first.requests) == len(second.requests) == 1
    assert first.requests[0].body == second.requests[0].body
