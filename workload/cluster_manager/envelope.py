"""The LXD envelope as Flask answers (bodies: `protocol.envelope`), and the errors it carries."""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from flask import Response

from .protocol.envelope import JSON_HEADERS, error_body, sync_body


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


def sync(metadata: Any = None, status: int = 200) -> Response:
    """A sync success envelope, keys in LXD's order, body ending in a newline."""
    return Response(sync_body(metadata), status=status, headers=JSON_HEADERS)


def error(status: int, message: str = "", headers: Mapping[str, str] | None = None) -> Response:
    """An error envelope; the message defaults to the HTTP reason phrase."""
    return Response(
        error_body(status, message), status=status, headers={**JSON_HEADERS, **(headers or {})}
    )
