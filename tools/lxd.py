"""A small in-process LXD: what a MicroCloud's tunnel forwards to in the emulator.

It answers what the tunnel's users need (``GET /1.0`` and ``GET /1.0/instances``) with LXD's
field names, envelopes and status codes, and its authentication as far as the tunnel sees it.
Facts from canonical/lxd: ``lxd/response/response.go`` (the sync and error envelopes, the
headers they set, the extra newline after an error), ``shared/api/response.go``,
``shared/api/server.go`` and ``lxd/api_1.0.go`` (``/1.0``: untrusted callers get a partial
server object, status 200), ``lxd/daemon.go`` (``allowAuthenticated``: untrusted callers of
``/1.0/instances`` get 403 "Forbidden"; a failed OIDC login gets 401), ``lxd/instances_get.go``
and ``shared/api/instance.go`` (the instance list and objects), ``lxd/auth/oidc/oidc.go`` (a
bearer token needs the "cookiejar" user-agent feature, then LXD starts a session and sets the
``session`` cookie). Go's ``net/http`` server adds ``Date`` and, for bodies up to 2048 bytes,
``Content-Length`` (longer ones are chunked).

Not LXD: any non-empty bearer token is a valid OIDC access token unless ``tokens`` is given, and
the session is an opaque random value kept in memory.
"""

from __future__ import annotations

import email.utils
import json
import secrets
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tools import gojson

# Go's http.Server switches to chunked encoding once the handler writes more than this.
_GO_CHUNKING_THRESHOLD = 2048
_SESSION_COOKIE = "session"
_STATUS_CODES = {"Running": 103, "Stopped": 102, "Frozen": 110, "Error": 112}
API_EXTENSIONS = ("storage_zfs_remove_snapshots", "container_host_shutdown_timeout", "instances")


@dataclass(frozen=True)
class LXDRequest:
    """One request as LXD received it (``headers`` keep the names and order sent)."""

    method: str
    target: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        """The first value of a header, by case-insensitive name, or None."""
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


@dataclass(frozen=True)
class LXDResponse:
    """LXD's answer: status, headers (Go canonical names, several values allowed), body."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


def instance(
    name: str,
    *,
    status: str = "Running",
    type_: str = "container",
    location: str = "micro01",
    project: str = "default",
    created_at: str = "2026-08-01T09:00:00.123456789Z",
) -> dict[str, Any]:
    """One instance as ``GET /1.0/instances?recursion=1`` returns it (api.Instance, in order).

    Args:
        name: instance name.
        status: "Running", "Stopped", "Frozen" or "Error".
        type_: "container" or "virtual-machine".
        location: the cluster member holding it.
        project: its project.
        created_at: RFC3339 creation time.

    Returns:
        The object with LXD's keys in LXD's order.
    """
    return {
        "name": name,
        "description": "",
        "status": status,
        "status_code": _STATUS_CODES.get(status, 0),
        "created_at": created_at,
        "last_used_at": created_at if status == "Running" else "1970-01-01T00:00:00Z",
        "location": location,
        "type": type_,
        "project": project,
        "architecture": "x86_64",
        "ephemeral": False,
        "stateful": False,
        "profiles": ["default"],
        "config": {"image.os": "Ubuntu", "volatile.base_image": "0" * 64},
        "devices": {},
        "expanded_config": {"image.os": "Ubuntu", "volatile.base_image": "0" * 64},
        "expanded_devices": {
            "eth0": {"name": "eth0", "network": "lxdfan0", "type": "nic"},
            "root": {"path": "/", "pool": "remote", "type": "disk"},
        },
    }


def default_instances(members: Sequence[str]) -> list[dict[str, Any]]:
    """A few instances spread over ``members``: running and stopped, containers and VMs."""
    kinds = [
        ("web", "Running", "container"),
        ("db", "Running", "virtual-machine"),
        ("build", "Stopped", "container"),
    ]
    return [
        instance(
            f"{prefix}-{i + 1}", status=status, type_=kind, location=members[i % len(members)]
        )
        for i, (prefix, status, kind) in enumerate(kinds)
    ]


def sync_body(metadata: Any) -> bytes:
    """LXD's sync envelope; its JSON encoder does not escape HTML and ends with a newline."""
    envelope = {
        "type": "sync",
        "status": "Success",
        "status_code": 200,
        "operation": "",
        "error_code": 0,
        "error": "",
        "metadata": metadata,
    }
    return (json.dumps(envelope, separators=(",", ":"), ensure_ascii=False) + "\n").encode()


def error_body(code: int, message: str) -> bytes:
    """LXD's error envelope: Go's default (HTML-escaping) encoder, then one more newline."""
    envelope = {
        "type": "error",
        "status": "",
        "status_code": 0,
        "operation": "",
        "error_code": code,
        "error": message,
        "metadata": None,
    }
    return (gojson.dumps(envelope) + "\n\n").encode()


@dataclass
class EmulatedLXD:
    """An LXD cluster's API, reduced to ``/1.0`` and ``/1.0/instances``.

    Attributes:
        server_name: this member's name.
        members: cluster member names (instance locations).
        instances: the instance objects returned by ``recursion=1``.
        tokens: valid OIDC access tokens; None accepts any non-empty bearer token.
        requests: every request received, in order (for tests).
    """

    server_name: str = "micro01"
    members: Sequence[str] = ("micro01", "micro02", "micro03")
    instances: list[dict[str, Any]] | None = None
    tokens: Iterable[str] | None = None
    requests: list[LXDRequest] = field(default_factory=list)
    _sessions: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if self.instances is None:
            self.instances = default_instances(self.members)
        if self.tokens is not None:
            self.tokens = frozenset(self.tokens)

    def __call__(self, request: LXDRequest) -> LXDResponse:
        """Answer one request.

        Args:
            request: what the tunnel client sent.

        Returns:
            LXD's response.
        """
        with self._lock:
            self.requests.append(request)
        extra: list[tuple[str, str]] = []
        user, failure = self._authenticate(request, extra)
        if failure is not None:
            return self._respond(failure[0], error_body(*failure), extra, error=True)
        parts = urlsplit(request.target)
        query = parse_qs(parts.query)
        path = parts.path.rstrip("/") or "/"
        if request.method != "GET":
            if path in ("/1.0", "/1.0/instances"):
                return self._respond(501, error_body(501, "Not implemented"), extra, error=True)
            return self._respond(404, error_body(404, "Not Found"), extra, error=True)
        if path == "/1.0":
            return self._respond(200, sync_body(self._server(user)), extra)
        if path == "/1.0/instances":
            if user is None:
                return self._respond(403, error_body(403, "Forbidden"), extra, error=True)
            recursion = query.get("recursion", ["0"])[0]
            instances = list(self.instances or [])
            if recursion in ("1", "2"):
                return self._respond(200, sync_body(instances), extra)
            urls = [f"/1.0/instances/{i['name']}" for i in instances]
            return self._respond(200, sync_body(urls), extra)
        return self._respond(404, error_body(404, "Not Found"), extra, error=True)

    def _authenticate(
        self, request: LXDRequest, extra: list[tuple[str, str]]
    ) -> tuple[str | None, tuple[int, str] | None]:
        """The user (None: untrusted) or an error, as LXD's OIDC verifier decides."""
        session = _cookie(request.header("Cookie") or "", _SESSION_COOKIE)
        if session is not None:
            user = self._sessions.get(session)
            if user is None:
                extra.append(("Set-Cookie", _deleted_session_cookie()))
                return None, (403, "Failed OIDC Authentication: Session token invalid")
            return user, None
        authorization = request.header("Authorization") or ""
        token = authorization[len("Bearer ") :] if authorization.startswith("Bearer ") else ""
        if not token:
            return None, None
        if "(cookiejar)" not in (request.header("User-Agent") or ""):
            message = (
                "OIDC authentication requires persistent cookie support. Please update your client"
            )
            return None, (400, f"Failed OIDC Authentication: {message}")
        valid = self.tokens
        if valid is not None and token not in valid:  # type: ignore[operator]
            return None, (
                401,
                "Failed OIDC Authentication: Failed authenticating: Failed calling user info "
                "endpoint with given access token",
            )
        user = f"user-{token[:8]}@example.com"
        value = secrets.token_urlsafe(32)
        with self._lock:
            self._sessions[value] = user
        extra.append(("Set-Cookie", _session_cookie(value)))
        return user, None

    def _server(self, user: str | None) -> dict[str, Any]:
        server: dict[str, Any] = {
            "api_extensions": list(API_EXTENSIONS),
            "api_status": "stable",
            "api_version": "1.0",
            "auth": "untrusted" if user is None else "trusted",
            "public": False,
            "auth_methods": ["tls", "bearer", "oidc"],
            "client_certificate": False,
            "config": {},
        }
        if user is None:
            return server
        server["config"] = {"cluster.https_address": "10.0.0.1:8443"}
        server["auth_user_name"] = user
        server["auth_user_method"] = "oidc"
        server["environment"] = {
            "addresses": ["10.0.0.1:8443"],
            "architectures": ["x86_64", "i686"],
            "server": "lxd",
            "server_clustered": True,
            "server_name": self.server_name,
            "server_version": "6.5",
            "project": "default",
        }
        return server

    @staticmethod
    def _respond(
        status: int, body: bytes, extra: Sequence[tuple[str, str]], *, error: bool = False
    ) -> LXDResponse:
        headers: list[tuple[str, str]] = [("Content-Type", "application/json")]
        if error:
            headers.append(("X-Content-Type-Options", "nosniff"))
        headers.extend(extra)
        headers.append(("Date", email.utils.formatdate(time.time(), usegmt=True)))
        if len(body) <= _GO_CHUNKING_THRESHOLD:
            headers.append(("Content-Length", str(len(body))))
        return LXDResponse(status, tuple(headers), body)


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


def _session_cookie(value: str) -> str:
    expires = email.utils.formatdate(time.time() + 7 * 86400, usegmt=True)
    return (
        f"{_SESSION_COOKIE}={value}; Path=/; Expires={expires}; HttpOnly; Secure; SameSite=Strict"
    )


def _deleted_session_cookie() -> str:
    return (
        f"{_SESSION_COOKIE}=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; Secure; "
        "SameSite=Strict"
    )


def headers_map(headers: Iterable[tuple[str, str]]) -> Mapping[str, list[str]]:
    """Group headers by name, keeping the order of values (Go's http.Header)."""
    result: dict[str, list[str]] = {}
    for name, value in headers:
        result.setdefault(name, []).append(value)
    return result
