"""The tunnel's frames and rules, as pure functions (reference §7.1, docs/reverse-tunnel.md).

The frame shapes are microcloudd's (canonical/microcloud `api/types/cluster_manager.go`,
`cmd/microcloudd/cluster_manager_tunnel.go`); the cookie objects are Go's `http.Cookie`
(`net/http/cookie.go`), which microcloudd sends as they are.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from cluster_manager.front import FrontSettings
from cluster_manager.front.config import render_front_config
from cluster_manager.protocol.tunnel import (
    TUNNEL_PATH,
    FrameError,
    answer_from_frame,
    lxd_path_problem,
    request_frame,
)
from cluster_manager.service.tunnel import lxd_cookie

GO_COOKIE = {
    "Name": "session", "Value": "abc", "Quoted": False, "Path": "/", "Domain": "",
    "Expires": "0001-01-01T00:00:00Z", "RawExpires": "", "MaxAge": 0, "Secure": True,
    "HttpOnly": True, "SameSite": 3, "Partitioned": False, "Raw": "session=abc", "Unparsed": None,
}  # fmt: skip


@pytest.mark.parametrize(
    "path", ["/1.0", "/1.0/", "/1.0/instances", "/1.0/instances?recursion=1", "/1.0/a/b.c"]
)
def test_lxd_api_paths_may_go_through_a_tunnel(path: str) -> None:
    assert lxd_path_problem(path) is None


@pytest.mark.parametrize(
    "path",
    ["/", "/2.0", "/1.0?recursion=1", "/1.00", "/1.0/../x", "/1.0/./x", "/1.0//x", "/1.0/x/..",
     "1.0", "/1.0#x"],
)  # fmt: skip
def test_other_paths_never_go_through_a_tunnel(path: str) -> None:
    assert lxd_path_problem(path) is not None


def test_a_request_frame_carries_only_the_two_headers_microcloudd_forwards() -> None:
    headers = {"Authorization": "Bearer t", "Cookie": "session=x", "X-Other": "y"}

    frame = request_frame("POST", "/1.0/instances", headers, b'{"name":"c1"}')

    assert frame == {
        "method": "POST",
        "path": "/1.0/instances",
        "headers": {"Authorization": ["Bearer t"], "Cookie": ["session=x"]},
        "body": base64.b64encode(b'{"name":"c1"}').decode(),
    }


def test_a_request_without_body_sends_null() -> None:
    assert request_frame("GET", "/1.0", {}, None)["body"] is None


def test_an_error_answer_of_microcloudd_has_null_fields_and_an_empty_body() -> None:
    answer = answer_from_frame(
        {"uuid": "u", "status": 500, "headers": None, "cookies": None, "body": None}
    )

    assert (answer.status, answer.headers, answer.cookies, answer.body) == (500, {}, [], b"")


@pytest.mark.parametrize(
    "frame",
    [
        [],
        {"status": "200"},
        {"status": True},
        {"status": 99},
        {"status": 200, "headers": {"A": "b"}},
        {"status": 200, "cookies": {}},
        {"status": 200, "body": "not base64!"},
        {"status": 200, "body": 12},
    ],
)
def test_a_malformed_answer_is_refused(frame: object) -> None:
    with pytest.raises(FrameError):
        answer_from_frame(frame)


def test_a_go_cookie_without_expiry_lasts_the_session() -> None:
    cookie = lxd_cookie(GO_COOKIE)

    assert cookie is not None and (cookie.name, cookie.value, cookie.expires_at) == (
        "session",
        "abc",
        None,
    )


def test_a_go_cookie_with_max_age_minus_one_is_already_expired() -> None:
    cookie = lxd_cookie({**GO_COOKIE, "MaxAge": -1})

    assert cookie is not None and cookie.expires_at is not None
    assert cookie.expires_at <= datetime.now(UTC)


def test_a_go_cookie_with_expires_keeps_that_time() -> None:
    cookie = lxd_cookie({**GO_COOKIE, "Expires": "2030-01-02T03:04:05Z"})

    assert cookie is not None
    assert cookie.expires_at == datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_a_go_cookie_with_max_age_expires_that_many_seconds_from_now() -> None:
    cookie = lxd_cookie({**GO_COOKIE, "MaxAge": 3600})

    assert cookie is not None and cookie.expires_at is not None
    assert abs(cookie.expires_at - datetime.now(UTC) - timedelta(hours=1)) < timedelta(minutes=1)


def test_a_nameless_cookie_is_dropped() -> None:
    assert lxd_cookie({**GO_COOKIE, "Name": ""}) is None


def test_the_front_sends_exactly_the_tunnel_path_to_the_tunnel_process() -> None:
    settings = FrontSettings(
        management_cert="/tls/management.crt", connector_cert="/tls/connector.crt", run_dir="/run"
    )

    config = render_front_config(settings)

    assert f"use_backend tunnel_app if {{ path {TUNNEL_PATH} }}" in config
    assert "server tunnel unix@/run/tunnel.sock" in config
