"""The join token, encoded and decoded exactly as the manager and MicroCloud do.

A token is standard base64 (with ``=`` padding) of compact JSON whose keys come in the order
``secret``, ``expires_at``, ``addresses``, ``server_name``, ``fingerprint``. MicroCloud rejects a
token with an empty ``server_name``, ``addresses``, ``secret`` or ``fingerprint`` and does not look
at ``expires_at``; :meth:`JoinToken.decode` does the same.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
from dataclasses import dataclass
from typing import Any

from tools import gojson

GO_ZERO_TIME = "0001-01-01T00:00:00Z"


class TokenError(ValueError):
    """The join token cannot be used."""


def format_rfc3339nano(moment: datetime.datetime) -> str:
    """Format a time as Go's ``time.RFC3339Nano`` (trailing fraction zeros dropped, ``Z`` for UTC).

    Args:
        moment: an aware datetime.

    Returns:
        The formatted time.
    """
    if moment.tzinfo is None:
        raise ValueError("moment must be timezone-aware")
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += "." + f"{moment.microsecond:06d}".rstrip("0")
    offset = moment.utcoffset() or datetime.timedelta(0)
    if not offset:
        return text + "Z"
    sign = "-" if offset < datetime.timedelta(0) else "+"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"{text}{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def split_host_port(address: str) -> tuple[str, int]:
    """Split ``host:port`` (IPv6 hosts in brackets) like Go's ``net.SplitHostPort``.

    Args:
        address: for example ``cc.example.com:443`` or ``[::1]:9443``.

    Returns:
        Host (without brackets) and port.

    Raises:
        TokenError: when the address has no valid port.
    """
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise TokenError(f"address {address!r} is not host:port")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise TokenError(f"address {address!r} has an IPv6 host without brackets")
    return host, int(port)


def _field(data: dict[str, Any], key: str, default: Any, kind: type) -> Any:
    value = data.get(key, default)
    if value is None:
        value = default
    if not isinstance(value, kind):
        raise TokenError(f"join token field {key!r} has the wrong type")
    return value


@dataclass(frozen=True)
class JoinToken:
    """A decoded join token."""

    secret: str
    expires_at: str
    addresses: tuple[str, ...]
    server_name: str
    fingerprint: str

    def to_json(self) -> str:
        """Compact JSON with the fields in wire order."""
        return gojson.dumps(
            {
                "secret": self.secret,
                "expires_at": self.expires_at,
                "addresses": list(self.addresses),
                "server_name": self.server_name,
                "fingerprint": self.fingerprint,
            }
        )

    def encode(self) -> str:
        """Standard base64 (padded) of :meth:`to_json`."""
        return base64.b64encode(self.to_json().encode()).decode("ascii")

    @classmethod
    def decode(cls, token: str) -> JoinToken:
        """Decode a token like MicroCloud does (expiry is not checked).

        Args:
            token: the base64 text; surrounding whitespace is ignored.

        Returns:
            The decoded token.

        Raises:
            TokenError: on bad base64, bad JSON or an empty required field.
        """
        try:
            raw = base64.b64decode(token.strip(), validate=True)
            data = json.loads(raw)
        except (binascii.Error, ValueError) as exc:
            raise TokenError(f"invalid join token: {exc}") from exc
        if not isinstance(data, dict):
            raise TokenError("invalid join token: not a JSON object")
        addresses = _field(data, "addresses", [], list)
        if not all(isinstance(item, str) for item in addresses):
            raise TokenError("join token field 'addresses' has the wrong type")
        parsed = cls(
            secret=_field(data, "secret", "", str),
            expires_at=_field(data, "expires_at", GO_ZERO_TIME, str),
            addresses=tuple(addresses),
            server_name=_field(data, "server_name", "", str),
            fingerprint=_field(data, "fingerprint", "", str),
        )
        if not parsed.server_name:
            raise TokenError("No server name in join token")
        if not parsed.addresses:
            raise TokenError("No cluster member addresses in join token")
        if not parsed.secret:
            raise TokenError("No secret in join token")
        if not parsed.fingerprint:
            raise TokenError("No certificate fingerprint in join token")
        return parsed
