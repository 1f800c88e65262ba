"""The reverse tunnel's frames (reference §7.1) and the units' internal forwarding contract.

microcloudd (canonical/microcloud `cmd/microcloudd/cluster_manager_tunnel.go`,
`api/types/cluster_manager.go`) reads one JSON request per websocket message and answers each
with one JSON message; docs/reverse-tunnel.md lists the facts. A management request on any unit
reaches the unit holding the tunnel at `POST FORWARD_PATH` of its internal TLS listener, with
the units' shared secret in `SECRET_HEADER`; the body is a request frame without `uuid`, the
answer the cluster's frame without `uuid`.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import re
from collections.abc import Mapping
from typing import Any

TUNNEL_PATH = "/1.0/remote-cluster/ws"
"""Where microcloudd opens its websocket (client/cluster_manager_client.go)."""
FORWARD_PATH = "/internal/tunnels/{cluster_id}"
"""Internal listener: POST sends a request through the tunnel; DELETE closes the tunnel."""
SECRET_HEADER = "X-Tunnel-Secret"  # noqa: S105 (a header name)
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
"""The methods microcloudd forwards; it answers 405 to any other."""
FORWARDED_HEADERS = ("Authorization", "Cookie")
"""The only request headers microcloudd passes on to LXD (their first value)."""
ANSWER_HEADERS = ("Content-Type", "ETag", "Location", "Last-Modified")
"""LXD answer headers a management caller gets; `Set-Cookie` stays on the manager."""

_LXD_PATH = re.compile(r"^/1\.0(?:(/[^?#]*)(?:\?[^#]*)?)?$")
"""`/1.0` alone, or below it with a query: microcloudd refuses `/1.0?…` (400)."""


class FrameError(ValueError):
    """A cluster's answer is not a tunnel response frame."""


def lxd_path_problem(path: str) -> str | None:
    """Why `path` (with its query) must not go through a tunnel, or None.

    microcloudd answers 400 to anything but `/1.0` and what is below it; we refuse those before
    they are sent, and also dot segments and empty segments, which LXD's router would clean up
    into another path than the one an admin was allowed to see in the URL.
    """
    match = _LXD_PATH.match(path)
    if match is None:
        return "only LXD API paths (/1.0 and below) go through a tunnel"
    *inner, last = (match[1] or "/").split("/")[1:]
    if any(segment in ("", ".", "..") for segment in inner) or last in (".", ".."):
        return "the LXD path must not hold empty, `.` or `..` segments"
    return None


def request_frame(
    method: str, path: str, headers: Mapping[str, str], body: bytes | None
) -> dict[str, Any]:
    """A request frame without its `uuid` (the tunnel process adds it), as microcloudd reads it.

    Only `FORWARDED_HEADERS` are sent, spelled exactly so: microcloudd looks them up by those
    keys and drops every other header.
    """
    return {
        "method": method,
        "path": path,
        "headers": {name: [headers[name]] for name in FORWARDED_HEADERS if name in headers},
        "body": base64.b64encode(body).decode() if body else None,
    }


@dataclasses.dataclass(frozen=True)
class TunnelAnswer:
    """LXD's answer as the cluster relayed it (or the cluster's own 400/405/500)."""

    status: int
    headers: dict[str, list[str]]
    cookies: list[dict[str, Any]]
    body: bytes


def answer_from_frame(frame: Any) -> TunnelAnswer:
    """Validate a cluster's response frame (Go's `http.Header`, `[]*http.Cookie`, `[]byte`).

    Raises:
        FrameError: a field has the wrong type, or the body is not base64.
    """
    if not isinstance(frame, dict):
        raise FrameError("the answer is not a JSON object")
    status = frame.get("status")
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise FrameError(f"the answer's status is not an HTTP status: {status!r}")
    headers = {} if frame.get("headers") is None else frame["headers"]
    if not isinstance(headers, dict) or not all(
        isinstance(values, list) and all(isinstance(v, str) for v in values)
        for values in headers.values()
    ):
        raise FrameError("the answer's headers are not an object of string arrays")
    cookies = [] if frame.get("cookies") is None else frame["cookies"]
    if not isinstance(cookies, list) or not all(isinstance(c, dict) for c in cookies):
        raise FrameError("the answer's cookies are not an array of objects")
    body = "" if frame.get("body") is None else frame["body"]
    if not isinstance(body, str):
        raise FrameError("the answer's body is not a base64 string")
    try:
        decoded = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise FrameError("the answer's body is not valid base64") from None
    return TunnelAnswer(status, headers, cookies, decoded)
