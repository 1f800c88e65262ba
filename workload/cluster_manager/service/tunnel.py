"""A request to a cluster's LXD through its reverse tunnel, from any unit (design D13).

The database says which unit's tunnel process holds the cluster's websocket; the request goes
there over the internal network (TLS pinned to the connector certificate, which every unit
serves, and the units' shared secret), and that process sends it through the tunnel. The
caller's OIDC access token goes to LXD as `Authorization: Bearer`, as upstream's manager does,
so an LXD that trusts the same issuer authorises the user; API-token callers send none. Cookies
LXD sets are kept per browser session and cluster, and never reach the browser.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import urllib3

from ..db import tunnels
from ..db.pool import Database, DbConnection
from ..db.tunnels import LXDCookie, TunnelRoute
from ..envelope import APIError, BadRequest, NotFound
from ..protocol.tunnel import (
    ANSWER_HEADERS,
    FORWARD_PATH,
    METHODS,
    SECRET_HEADER,
    FrameError,
    TunnelAnswer,
    answer_from_frame,
    lxd_path_problem,
    request_frame,
)
from ..settings import Settings
from .join_tokens import fingerprint_of_connector

logger = logging.getLogger(__name__)

_GO_ZERO_TIME = "0001-01-01T00:00:00Z"
"""`Expires` of a Go cookie that has none."""


@dataclasses.dataclass(frozen=True)
class LXDReply:
    """What the management caller gets: LXD's status, the allowed headers and the body."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


def send_through_tunnel(
    database: Database,
    settings: Settings,
    cluster: str,
    method: str,
    path: str,
    body: bytes | None = None,
    *,
    access_token: str | None = None,
    session: int | None = None,
    timeout: int | None = None,
) -> LXDReply:
    """Send one request to the LXD of `cluster`; LXD's answer (any status).

    `access_token` is the caller's OIDC access token, `session` its browser session (whose
    LXD cookies are sent and kept); both None for API-token callers. `timeout` shortens the
    tunnel's own (`tunnel_timeout`), for callers that cannot wait that long (a page).

    Raises:
        APIError: 400 for a path outside `/1.0`, 404 for an unknown cluster, 503 without a
            tunnel (or when its unit cannot be reached, or its queue is full, or this unit has
            no tunnel secret yet), 504 when the cluster does not answer in time, 502 for an
            answer that is not a tunnel frame.
    """
    if method not in METHODS:
        raise APIError(405, f"method must be one of {', '.join(METHODS)}")
    problem = lxd_path_problem(path)
    if problem is not None:
        raise BadRequest(problem)
    route, cookies = database.run(
        lambda conn: _route_and_cookies(conn, cluster, session), idempotent=True
    )
    if route is None:
        raise NotFound(f"remote cluster {cluster} not found")
    if route.holder is None:
        raise APIError(503, f"remote cluster {cluster} has no active tunnel")
    if not settings.tunnel_secret:
        # A unit refreshed before the leader created the secret: the holder would refuse it.
        raise APIError(503, "this unit has no tunnel secret yet")
    headers: dict[str, str] = {}
    if access_token:
        headers["Authorization"] = f"Bearer {access_token}"
    if cookies:
        headers["Cookie"] = "; ".join(f"{c.name}={c.value}" for c in cookies)
    frame = request_frame(method, path, headers, body)
    if timeout is not None:
        frame["timeout"] = timeout
    answer = _forward(settings, cluster, route, frame)
    if session is not None and answer.cookies:
        kept = [cookie for cookie in map(lxd_cookie, answer.cookies) if cookie is not None]
        database.run(lambda conn: tunnels.store_cookies(conn, session, route.cluster_id, kept))
    allowed = [
        (name, value)
        for name, values in answer.headers.items()
        if name in ANSWER_HEADERS
        for value in values
    ]
    return LXDReply(answer.status, allowed, answer.body)


def _route_and_cookies(
    conn: DbConnection, cluster: str, session: int | None
) -> tuple[TunnelRoute | None, list[LXDCookie]]:
    """Where the cluster's tunnel is, and what its LXD gave this browser session, at once."""
    route = tunnels.find_route(conn, cluster)
    if route is None or route.holder is None or session is None:
        return route, []
    return route, tunnels.session_cookies(conn, session, route.cluster_id)


def _forward(
    settings: Settings, cluster: str, route: TunnelRoute, frame: dict[str, Any]
) -> TunnelAnswer:
    url = f"https://{route.holder}" + FORWARD_PATH.format(cluster_id=route.cluster_id)
    pool = _holders(fingerprint_of_connector(settings))
    try:
        response = pool.request(
            "POST",
            url,
            body=json.dumps(frame).encode(),
            headers={"Content-Type": "application/json", SECRET_HEADER: settings.tunnel_secret},
            timeout=urllib3.Timeout(connect=5, read=settings.tunnel_timeout + 5),
            retries=False,
            preload_content=True,
        )
    except urllib3.exceptions.HTTPError as error:
        logger.warning("tunnel of %s: unit %s unreachable: %s", cluster, route.holder, error)
        raise APIError(
            503, f"the unit holding the tunnel of {cluster} ({route.holder}) cannot be reached"
        ) from None
    if response.status == 200:
        try:
            return answer_from_frame(json.loads(response.data))
        except (ValueError, FrameError) as error:
            raise APIError(
                502, f"remote cluster {cluster} sent an invalid answer: {error}"
            ) from None
    if response.status == 404:  # the registration outlived the socket (it is being cleared)
        raise APIError(503, f"remote cluster {cluster} has no active tunnel")
    if response.status == 403:
        logger.error("unit %s refused the tunnel secret: the units disagree on it", route.holder)
        raise APIError(502, "the units of the cluster manager disagree on the tunnel secret")
    raise APIError(response.status, _message(response.data))


@functools.cache
def _holders(fingerprint: str) -> urllib3.PoolManager:
    # Pinned to the connector certificate's fingerprint: the units' addresses are pod names,
    # which the certificate does not list.
    return urllib3.PoolManager(
        num_pools=16, maxsize=8, cert_reqs="CERT_NONE", assert_fingerprint=fingerprint
    )


def _message(data: bytes) -> str:
    try:
        return str(json.loads(data)["error"])
    except (ValueError, KeyError, TypeError):
        return "the tunnel process gave an unexpected answer"


def lxd_cookie(item: dict[str, Any]) -> LXDCookie | None:
    """A Go `http.Cookie` object as microcloudd sends it, or None when it has no name."""
    name, value = item.get("Name"), item.get("Value")
    if not isinstance(name, str) or not name or not isinstance(value, str):
        return None
    max_age = item.get("MaxAge")
    now = datetime.now(UTC)
    if isinstance(max_age, int) and max_age < 0:  # `Max-Age=0`: LXD clears the cookie
        return LXDCookie(name, value, now)
    if isinstance(max_age, int) and max_age > 0:
        return LXDCookie(name, value, now + timedelta(seconds=max_age))
    expires = item.get("Expires")
    if isinstance(expires, str) and expires != _GO_ZERO_TIME:
        try:
            return LXDCookie(name, value, datetime.fromisoformat(expires))
        except ValueError:
            pass
    return LXDCookie(name, value, None)


@dataclasses.dataclass(frozen=True)
class Instance:
    """One instance as the cluster page lists it."""

    name: str
    status: str
    type: str
    location: str


@dataclasses.dataclass(frozen=True)
class InstanceList:
    """The cluster's instances read through its tunnel, or why they could not be."""

    instances: tuple[Instance, ...] = ()
    problem: str | None = None
    """None when `instances` is LXD's answer; otherwise a sentence for the page."""


INSTANCES_PATH = "/1.0/instances?recursion=1"
"""`api.Instance` objects of every instance (canonical/lxd `lxd/instances_get.go`)."""


def list_instances(
    database: Database,
    settings: Settings,
    cluster: str,
    *,
    access_token: str | None,
    session: int | None,
    timeout: int,
) -> InstanceList:
    """Name, status, type and location of the cluster's instances, as LXD lets this user see."""
    try:
        reply = send_through_tunnel(
            database,
            settings,
            cluster,
            "GET",
            INSTANCES_PATH,
            access_token=access_token,
            session=session,
            timeout=timeout,
        )
    except APIError as error:
        return InstanceList(problem=error.message)
    envelope = _json(reply.body)
    if reply.status in (401, 403):
        reason = envelope.get("error") if isinstance(envelope, dict) else None
        label = f"{reply.status} {reason}" if reason else str(reply.status)
        return InstanceList(
            problem=f"LXD refused to list the instances ({label}): it must trust this"
            " manager's identity provider and let you see the instances."
        )
    metadata = envelope.get("metadata") if isinstance(envelope, dict) else None
    if reply.status != 200 or not isinstance(metadata, list):
        return InstanceList(problem=f"LXD answered {reply.status} without an instance list")
    found = [
        Instance(
            str(item.get("name", "")),
            str(item.get("status", "")),
            str(item.get("type", "")),
            str(item.get("location", "")),
        )
        for item in metadata
        if isinstance(item, dict)
    ]
    return InstanceList(tuple(sorted(found, key=lambda i: i.name)))


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None
