"""Join tokens waiting to be used: only their hashes are stored (design D3)."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from .pool import DbConnection


class TokenRefusal(enum.Enum):
    """Why a join token could not be stored."""

    CLUSTER_ENROLLED = "cluster_enrolled"
    TOKEN_EXISTS = "token_exists"  # noqa: S105 - a reason, not a password


def create_join_token(
    conn: DbConnection,
    cluster_name: str,
    token_hash: bytes,
    description: str,
    expires_at: datetime,
) -> TokenRefusal | None:
    """Store a token for `cluster_name`; the refusal reason, or None when stored.

    The enrolled-name check and the insert share one transaction; a concurrent create for
    the same name loses on the unique constraint and is reported as TOKEN_EXISTS.
    """
    with conn.transaction():
        enrolled = conn.execute(
            "SELECT 1 FROM clusters WHERE name = %s", (cluster_name,)
        ).fetchone()
        if enrolled is not None:
            return TokenRefusal.CLUSTER_ENROLLED
        stored = conn.execute(
            "INSERT INTO join_tokens (cluster_name, token_hash, description, expires_at)"
            " VALUES (%s, %s, %s, %s) ON CONFLICT (cluster_name) DO NOTHING RETURNING id",
            (cluster_name, token_hash, description, expires_at),
        ).fetchone()
    return None if stored is not None else TokenRefusal.TOKEN_EXISTS


def list_join_tokens(conn: DbConnection) -> list[dict[str, Any]]:
    """Every pending token (expired ones too), oldest first; never the token text."""
    return list(
        conn.execute(
            "SELECT cluster_name, description, expires_at, created_at,"
            " expires_at <= now() AS expired"
            ' FROM join_tokens ORDER BY created_at, cluster_name COLLATE "C"'
        ).fetchall()
    )


def delete_join_token(conn: DbConnection, cluster_name: str) -> bool:
    """Revoke the token of `cluster_name`; False when there is none."""
    row = conn.execute(
        "DELETE FROM join_tokens WHERE cluster_name = %s RETURNING id", (cluster_name,)
    ).fetchone()
    return row is not None
