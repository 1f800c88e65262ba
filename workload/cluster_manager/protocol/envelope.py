"""The LXD response envelope as text (reference §1.0), for every server of the workload.

The Flask apps answer through `cluster_manager.envelope`, the tunnel process (aiohttp)
directly; both write these bodies and headers, so every answer reads alike.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from ..front.config import SECURITY_HEADERS

JSON_HEADERS = {"Content-Type": "application/json", **dict(SECURITY_HEADERS)}
"""The front's own answers carry the same headers, so every envelope reads alike."""


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


def error_body(status: int, message: str = "") -> str:
    """The text of an error envelope ."""
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
