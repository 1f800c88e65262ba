"""The names the service accepts for clusters and API tokens: the connector's own rule."""

from __future__ import annotations

from ..envelope import BadRequest
from ..protocol.rules import NAME_RULE, valid_name


def require_valid_name(name: str, what: str) -> None:
    """Refuse names the connector would refuse at join time (or that are empty)."""
    if not name:
        raise BadRequest(f"{what} is required")
    if not valid_name(name):
        raise BadRequest(f"{what} must be {NAME_RULE}")
