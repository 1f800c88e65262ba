"""Admin API tokens: minted once by the operator's CLI, stored hashed, looked up per request."""

from __future__ import annotations

import hashlib
import secrets

from ..db import api_tokens
from ..db.pool import DbConnection
from ..envelope import Conflict
from .names import require_valid_name

API_TOKEN_PREFIX = "mcm_"  # noqa: S105 - marks our tokens, not a secret


def create_api_token(conn: DbConnection, name: str) -> str:
    """Mint an admin API token called `name`; the token is returned once, stored hashed."""
    require_valid_name(name, "API token name")
    token = API_TOKEN_PREFIX + secrets.token_urlsafe(32)
    if not api_tokens.create_api_token(conn, name, api_token_hash(token)):
        raise Conflict(f"an API token named {name} already exists")
    return token


def identify_api_token(conn: DbConnection, token: str) -> str | None:
    """The name of the API token `token`, or None when no such token is stored."""
    return api_tokens.identify_api_token(conn, api_token_hash(token))


def api_token_hash(token: str) -> bytes:
    """What the database stores for an API token."""
    return hashlib.sha256(token.encode()).digest()
