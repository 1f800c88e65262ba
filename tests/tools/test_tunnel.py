"""The emulated MicroCloud's reverse tunnel against a small TLS websocket server."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator

import pytest

from tests.tools.conftest import MANAGER_ADDRESS, MakeToken
from tests.tools.ws_server import TunnelServer
from tools.lxd import EmulatedLXD, LXDRequest, LXDResponse
from tools.microcloud import MicroCloudClient
from tools.pki import CertKey
from tools.tunnel import (
    TunnelClient,
    decode_request,
    encode_response,
    parse_set_cookie,
)

INTERVAL = 0.2


@pytest.fixture
def server(manager_cert: CertKey, cluster_cert: CertKey) -> Iterator[TunnelServer]:
    with TunnelServer(manager_cert, client_ca=cluster_cert) as srv:
        yield srv


@pytest.fixture
def lxd() -> EmulatedLXD:
    return EmulatedLXD()


def make_tunnel(
    server: TunnelServer, token: str, cluster_cert: CertKey, lxd, **kwargs
) -> TunnelClient:
    client = MicroCloudClient(
        token, cluster_cert, resolve={MANAGER_ADDRESS: ("127.0.0.1", server.port)}
    )
    return TunnelClient(client, lxd, interval=INTERVAL, **kwargs)


@pytest.fixture
def tunnel(
    server: TunnelServer, make_token: MakeToken, cluster_cert: CertKey, lxd: EmulatedLXD
) -> Iterator[TunnelClient]:
    with make_tunnel(server, make_token(), cluster_cert, lxd) as client:
        yield client


def request(uuid: str, path: str, method: str = "GET", **headers: str) -> dict:
    return {
        "uuid": uuid,
        "method": method,
        "path": path,
        "headers": {name: [value] for name, value in headers.items()},
        "body": None,
    }


def test_handshake_carries_cluster_certificate_and_no_origin(
    server: TunnelServer, tunnel: TunnelClient, cluster_cert: CertKey
) -> None:
    peer = server.next_peer()
    assert peer.peer_der == cluster_cert.der
    names = [name for name, _ in peer.headers]
    assert names == [
        "Host",
        "User-Agent",
        "Connection",
        "Sec-WebSocket-Key",
        "Sec-WebSocket-Version",
        "Upgrade",
    ]
    assert peer.header("Host") == MANAGER_ADDRESS
    assert peer.header("User-Agent") == "Go-http-client/1.1"
    assert peer.header("Upgrade") == "websocket"
    assert peer.header("Origin") is None
    assert peer.header("Sec-WebSocket-Protocol") is None
    assert peer.header("Sec-WebSocket-Extensions") is None
    assert server.probes == ["/"]  # the certificate probe before the dial
    # The server queues the peer once it has sent its 101; the client registers the tunnel only
    # after reading that answer, so wait for it rather than read `connected` at once.
    assert tunnel.wait_connected(5)
    assert tunnel.connected


def test_request_frame_gets_answer_frame(
    server: TunnelServer, tunnel: TunnelClient, lxd: EmulatedLXD
) -> None:
    peer = server.next_peer()
    peer.send(request("0198-a", "/1.0/instances?recursion=1", Authorization="Bearer tok"))
    raw = peer.recv()
    assert isinstance(raw, str) and raw.endswith("\n")
    answer = json.loads(raw)
    assert list(answer) == ["uuid", "status", "headers", "cookies", "body"]
    assert answer["uuid"] == "0198-a"
    assert answer["status"] == 200
    assert list(answer["headers"]) == sorted(answer["headers"])
    assert answer["headers"]["Content-Type"] == ["application/json"]
    assert all(isinstance(v, list) for v in answer["headers"].values())
    body = json.loads(base64.b64decode(answer["body"]))
    assert body["type"] == "sync" and body["status_code"] == 200 and body["error_code"] == 0
    names = [(i["name"], i["status"], i["type"], i["location"]) for i in body["metadata"]]
    assert names[0] == ("web-1", "Running", "container", "micro01")
    assert {i["type"] for i in body["metadata"]} == {"container", "virtual-machine"}
    # LXD started a session: the cookie is in the headers and parsed in cookies
    [cookie] = answer["cookies"]
    assert cookie["Name"] == "session" and cookie["Path"] == "/"
    assert cookie["HttpOnly"] is True and cookie["Secure"] is True and cookie["SameSite"] == 3
    assert answer["headers"]["Set-Cookie"] == [cookie["Raw"]]
    assert lxd.requests[0].target == "/1.0/instances?recursion=1"


@pytest.mark.parametrize(
    ("path", "method", "status"),
    [
        ("/2.0/instances", "GET", 400),
        ("/1.0?recursion=1", "GET", 400),
        ("/1.00", "GET", 400),
        ("1.0/instances", "GET", 400),
        ("/1.0/instances", "HEAD", 405),
        ("/1.0/instances", "get", 405),
        ("/1.0/bad%zz", "GET", 500),
    ],
)
def test_refused_requests_get_microcloudd_answers(
    server: TunnelServer, tunnel: TunnelClient, lxd: EmulatedLXD, path, method, status
) -> None:
    peer = server.next_peer()
    peer.send(request("u1", path, method))
    answer = peer.recv()
    assert (
        answer
        == json.dumps(
            {"uuid": "u1", "status": status, "headers": None, "cookies": None, "body": None},
            separators=(",", ":"),
        )
        + "\n"
    )
    assert lxd.requests == []


def test_only_cookie_and_authorization_reach_lxd(
    server: TunnelServer, tunnel: TunnelClient, lxd: EmulatedLXD
) -> None:
    peer = server.next_peer()
    frame = request("u2", "/1.0", "POST", Authorization="Bearer t", Cookie="a=b")
    frame["headers"]["X-User-Secret"] = ["s"]
    frame["headers"]["Origin"] = ["https://evil"]
    frame["body"] = base64.b64encode(b'{"x":1}').decode()
    peer.send(frame)
    peer.recv_json()
    [seen] = lxd.requests
    assert [name for name, _ in seen.headers] == [
        "Host",
        "User-Agent",
        "Content-Length",
        "Authorization",
        "Cookie",
        "Accept-Encoding",
    ]
    assert seen.header("Authorization") == "Bearer t"
    assert seen.header("Cookie") == "a=b"
    assert (seen.header("User-Agent") or "").endswith("(cookiejar)")
    assert seen.body == b'{"x":1}'
    # non-canonical names are not found by Go's Header.Get: empty values go to LXD
    peer.send({"uuid": "u3", "method": "GET", "path": "/1.0", "headers": {"authorization": ["x"]}})
    peer.recv_json()
    assert lxd.requests[1].header("Authorization") == ""
    assert lxd.requests[1].header("Cookie") == ""


def test_forbidden_without_authorization(server: TunnelServer, tunnel: TunnelClient) -> None:
    peer = server.next_peer()
    peer.send(request("u4", "/1.0/instances"))
    answer = peer.recv_json()
    assert answer["status"] == 403
    assert answer["cookies"] == []
    body = base64.b64decode(answer["body"])
    assert body.endswith(b"}\n\n")
    assert json.loads(body) == {
        "type": "error",
        "status": "",
        "status_code": 0,
        "operation": "",
        "error_code": 403,
        "error": "Forbidden",
        "metadata": None,
    }
    peer.send(request("u5", "/1.0"))
    untrusted = json.loads(base64.b64decode(peer.recv_json()["body"]))
    assert untrusted["metadata"]["auth"] == "untrusted"


def test_requests_answered_one_at_a_time_in_order(
    server: TunnelServer, make_token: MakeToken, cluster_cert: CertKey
) -> None:
    active = 0
    peak = 0
    lock = threading.Lock()
    inner = EmulatedLXD()

    def slow(req: LXDRequest) -> LXDResponse:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        time.sleep(0.05)
        with lock:
            active -= 1
        return inner(req)

    with make_tunnel(server, make_token(), cluster_cert, slow):
        peer = server.next_peer()
        for i in range(10):
            peer.send(request(f"r{i}", "/1.0", Authorization="Bearer t"))
        uuids = [peer.recv_json()["uuid"] for _ in range(10)]
    assert uuids == [f"r{i}" for i in range(10)]
    assert peak == 1


def test_lxd_timeout_and_failure_answer_500(
    server: TunnelServer, make_token: MakeToken, cluster_cert: CertKey
) -> None:
    def broken(req: LXDRequest) -> LXDResponse:
        if req.target == "/1.0/slow":
            time.sleep(1)
        raise OSError("connection refused")

    with make_tunnel(server, make_token(), cluster_cert, broken, lxd_timeout=0.2):
        peer = server.next_peer()
        peer.send(request("t1", "/1.0/slow"))
        peer.send(request("t2", "/1.0"))
        assert peer.recv_json() == {
            "uuid": "t1", "status": 500, "headers": None, "cookies": None, "body": None
        }  # fmt: skip
        assert peer.recv_json()["status"] == 500


def test_large_answer_comes_in_4096_byte_frames(
    server: TunnelServer, make_token: MakeToken, cluster_cert: CertKey
) -> None:
    big = b"x" * 20000

    def lxd(_: LXDRequest) -> LXDResponse:
        return LXDResponse(200, (("Content-Type", "application/json"),), big)

    with make_tunnel(server, make_token(), cluster_cert, lxd):
        peer = server.next_peer()
        peer.send(request("big", "/1.0"))
        fragments = [str(f) for f in peer.connection.recv_streaming()]
    assert all(len(f.encode()) == 4096 for f in fragments[:-1])
    answer = json.loads("".join(fragments))
    assert base64.b64decode(answer["body"]) == big
    assert "Content-Length" not in answer["headers"]


def test_bad_frame_drops_the_tunnel_and_it_reconnects(
    server: TunnelServer, tunnel: TunnelClient
) -> None:
    peer = server.next_peer()
    peer.send('{"uuid": 5}')
    second = server.next_peer()
    assert tunnel.wait_connected(5, count=2)
    assert any("read error" in e for e in tunnel.errors)
    second.send(request("after", "/1.0"))
    assert second.recv_json()["uuid"] == "after"


def test_reconnects_after_server_closes(server: TunnelServer, tunnel: TunnelClient) -> None:
    first = server.next_peer()
    start = time.monotonic()
    first.close()
    second = server.next_peer()
    assert time.monotonic() - start < INTERVAL * 4
    assert tunnel.wait_connected(5, count=2)
    second.send(request("again", "/1.0"))
    assert second.recv_json()["uuid"] == "again"


def test_disabled_closes_and_stays_closed(server: TunnelServer, tunnel: TunnelClient) -> None:
    server.next_peer()
    assert tunnel.wait_connected(5)  # else wait_disconnected could see the tunnel not yet open
    tunnel.enabled = False
    assert tunnel.wait_disconnected(5)
    time.sleep(INTERVAL * 3)
    assert tunnel.connects == 1
    tunnel.enabled = True
    assert tunnel.wait_connected(5, count=2)


def test_wrong_fingerprint_never_dials(
    server: TunnelServer, make_token: MakeToken, cluster_cert: CertKey, lxd: EmulatedLXD
) -> None:
    with make_tunnel(server, make_token(fingerprint="00" * 32), cluster_cert, lxd) as client:
        time.sleep(INTERVAL * 3)
        assert client.connects == 0
        assert any("fingerprint" in e for e in client.errors)
    assert server.peers.empty()


def test_decode_request_like_go() -> None:
    req = decode_request('{"UUID":"a","Method":"GET","path":"/1.0","body":"aGk=","x":1} junk')
    assert (req.uuid, req.method, req.path, req.body) == ("a", "GET", "/1.0", b"hi")
    assert decode_request("null").path == ""
    for bad in ("", "[]", '{"body":"not base64"}', '{"headers":{"A":"b"}}', "{"):
        with pytest.raises(ValueError):
            decode_request(bad)


def test_encode_response_escapes_like_go() -> None:
    text = encode_response({"uuid": "u", "headers": {"Link": ["<a>&"]}})
    assert text == '{"uuid":"u","headers":{"Link":["\\u003ca\\u003e\\u0026"]}}\n'


def test_parse_set_cookie_like_go() -> None:
    cookie = parse_set_cookie(
        'id="v"; Max-Age=0; Expires=Wed, 21 Oct 2026 07:28:00 GMT; SameSite=odd; Partitioned; x=y'
    )
    assert cookie is not None
    assert list(cookie) == [
        "Name", "Value", "Quoted", "Path", "Domain", "Expires", "RawExpires", "MaxAge",
        "Secure", "HttpOnly", "SameSite", "Partitioned", "Raw", "Unparsed",
    ]  # fmt: skip
    assert cookie["Value"] == "v" and cookie["Quoted"] is True
    assert cookie["MaxAge"] == -1 and cookie["SameSite"] == 1 and cookie["Partitioned"]
    assert cookie["Expires"] == "2026-10-21T07:28:00Z"
    assert cookie["Unparsed"] == ["x=y"]
    assert parse_set_cookie("no-equals") is None
    plain = parse_set_cookie("a=b")
    assert plain is not None and plain["Expires"] == "0001-01-01T00:00:00Z"
