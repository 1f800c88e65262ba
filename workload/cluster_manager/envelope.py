"""The LXD response envelope both apps speak (reference §1.0), and the errors that map onto it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from flask import Response

from .front.config import SECURITY_HEADERS


class APIError(Exception):
    """An error answered to the caller as an LXD error envelope."""

    def __init__(self, status: int, message: str = "", headers: Mapping[str, str] | None = None):
        super().__init__(message or HTTPStatus(status).phrase)
        self.status = status
        self.message = message or HTTPStatus(status).phrase
        self.headers = dict(headers or {})


class BadRequest(APIError):
    """400: the request is malformed or invalid."""

    def __init__(self, message: str):
        super().__init__(400, message)


class Forbidden(APIError):
    """403: the caller may not do this."""

    def __init__(self, message: str = ""):
        super().__init__(403, message)


class NotFound(APIError):
    """404: no such resource."""

    def __init__(self, message: str = ""):
        super().__init__(404, message)


class Conflict(APIError):
    """409: the resource already exists."""

    def __init__(self, message: str):
        super().__init__(409, message)


JSON_HEADERS = {"Content-Type": "application/json", **dict(SECURITY_HEADERS)}
"""The front's own answers carry the same headers, so every envelope reads alike."""


def sync(metadata: Any = None, status: int = 200) -> Response:
    """A sync success envelope, keys in LXD's order, body ending in a newline."""
    return Response(sync_body(metadata), status=status, headers=JSON_HEADERS)


def sync_body(metadata: Any = None) -> str:
    """The text of a sync success envelope."""
    body = {
        "type": "sync",
        "status": "Success",
        "status_code": 200,
        "operation": "",
        "error_code": 0,
        "error": "",
        "metadata": metadata,
    }
    return _dumps(body)


def error(status: int, message: str = "", headers: Mapping[str, str] | None = None) -> Response:
    """An error envelope; the message defaults to the HTTP reason phrase."""
    return Response(
        error_body(status, message), status=status, headers={**JSON_HEADERS, **(headers or {})}
    )


def error_body(status: int, message: str = "") -> str:
    """The text of an error envelope (for servers other than Flask's: the tunnel process)."""
    body = {
        "type": "error",
        "status": "",
        "status_code": 0,
        "operation": "",
        "error_code": status,
        "error": message or HTTPStatus(status).phrase,
        "metadata": None,
    }
    return _dumps(body)


def utc(moment: datetime) -> datetime:
    """The same instant in UTC, so every timestamp we print ends in `Z`."""
    return moment.astimezone(UTC)


def rfc3339(moment: datetime) -> str:
    """RFC 3339 with fractional seconds and `Z` for UTC, as Go's encoder writes times."""
    text = moment.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _default(value: object) -> str:
    if isinstance(value, datetime):
        return rfc3339(value)
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def _dumps(body: Mapping[str, Any]) -> str:
    return json.dumps(body, separators=(",", ":"), default=_default) + "\n"
