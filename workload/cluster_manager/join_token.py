"""Join tokens, byte-compatible with what MicroCloud decodes (reference §2.1).

A token is standard base64 (with padding) of compact JSON with the keys in LXD's order. We
keep only its SHA-256 (design D3); the caller sees the token once, when it is minted.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import secrets
from datetime import datetime

from .protocol.envelope import rfc3339


@dataclasses.dataclass(frozen=True)
class JoinToken:
    """The fields MicroCloud reads from a join token."""

    secret: str
    expires_at: datetime
    addresses: tuple[str, ...]
    server_name: str
    fingerprint: str

    def encode(self) -> str:
        """The token text to hand to `microcloud cluster-manager join`."""
        body = {
            "secret": self.secret,
            "expires_at": rfc3339(self.expires_at),
            "addresses": list(self.addresses),
            "server_name": self.server_name,
            "fingerprint": self.fingerprint,
        }
        return base64.b64encode(json.dumps(body, separators=(",", ":")).encode()).decode()


def new_join_token(
    cluster_name: str, expires_at: datetime, address: str, fingerprint: str
) -> JoinToken:
    """A fresh token with 32 random bytes of secret."""
    return JoinToken(
        secret=secrets.token_hex(32),
        expires_at=expires_at,
        addresses=(address,),
        server_name=cluster_name,
        fingerprint=fingerprint,
    )


def token_hash(token: str) -> bytes:
    """What the database stores and compares instead of the token."""
    return hashlib.sha256(token.strip().encode()).digest()


def join_command(token: str) -> str:
    """The exact command an operator runs on one member of the MicroCloud."""
    return f"microcloud cluster-manager join {token}"
