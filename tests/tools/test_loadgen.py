import pytest

from tools.httpparse import FramingError, frame_response
from tools.loadgen import LoadResult, check_target, request_bytes, self_test
from tools.tlsclient import Destination

DEST = Destination("cc.example.com:443", "cc.example.com", ("127.0.0.1", 9443))


def test_self_test_sustains_keep_alive_heartbeats_with_only_200s():
    result = self_test(clusters=4, duration=0.5)

    assert result.requests > 100
    assert set(result.statuses) == {200}
    assert not result.errors
    assert 0 < result.percentile(0.5) <= result.percentile(0.99)


def test_request_bytes_are_a_microcloud_heartbeat_without_content_type():
    request = request_bytes(DEST, b"{}")

    head, _, body = request.partition(b"\r\n\r\n")
    assert head.split(b"\r\n")[0] == b"POST /1.0/remote-cluster/status HTTP/1.1"
    assert b"Host: cc.example.com:443" in head
    assert b"Content-Length: 2" in head
    assert b"content-type" not in head.lower()
    assert body == b"{}"


@pytest.mark.parametrize("address", ["8.8.8.8", "cc.example.com"])
def test_check_target_refuses_public_or_unresolved_destinations(address: str):
    with pytest.raises(ValueError):
        check_target(Destination("x:1", "x", (address, 443)))


def test_check_target_accepts_loopback():
    check_target(DEST)


def test_frame_response_waits_for_the_whole_body():
    response = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel"

    assert frame_response(response) is None
    framed = frame_response(response + b"loHTTP/1.1")
    assert framed is not None
    assert (framed.status, framed.length, framed.close) == (200, len(response) + 2, False)


def test_frame_response_handles_chunked_bodies_and_connection_close():
    response = b"HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    body = b"3\r\nabc\r\n0\r\n\r\n"

    assert frame_response(response + body[:-2]) is None
    framed = frame_response(response + body)
    assert framed is not None
    assert (framed.status, framed.length, framed.close) == (403, len(response + body), True)


def test_frame_response_rejects_non_http():
    with pytest.raises(FramingError):
        frame_response(b"SSH-2.0-OpenSSH\r\n\r\n")


def test_result_summary_reports_rate_and_percentiles():
    result = LoadResult(duration=2.0, connections=1, latencies=[0.001] * 99 + [0.1])
    result.statuses[200] = 100

    data = result.as_dict()

    assert (data["requests"], data["heartbeats_per_s"], data["p50_ms"]) == (100, 50.0, 1.0)
    assert data["p99_ms"] == 100.0
