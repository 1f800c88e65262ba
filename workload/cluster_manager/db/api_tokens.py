"""API tokens: long-lived admin credentials for scripts, stored as SHA-256 hashes."""

from __future__ import annotations

from .pool import DbConnection

# Recording every use would turn each authenticated read into a write; once a minute is
# precise enough to tell a token in use from a forgotten one.
LAST_USED_RESOLUTION = "1 minute"

_IDENTIFY = """
WITH found AS (
    SELECT id, name, last_used_at FROM api_tokens WHERE token_hash = %(hash)s
), touched AS (
    UPDATE api_tokens AS t SET last_used_at = now()
    FROM found
    WHERE t.id = found.id
      AND (found.last_used_at IS NULL
           OR found.last_used_at < now() - %(resolution)s::interval)
)
SELECT name FROM found
"""


def create_api_token(conn: DbConnection, name: str, token_hash: bytes) -> bool:
    """Store a token under `name`; False when that name is taken."""
    row = conn.execute(
        "INSERT INTO api_tokens (name, token_hash) VALUES (%s, %s)"
        " ON CONFLICT (name) DO NOTHING RETURNING id",
        (name, token_hash),
    ).fetchone()
    return row is not None


def identify_api_token(conn: DbConnection, token_hash: bytes) -> str | None:
    """The name of the token with this hash (noting its use), or None.

    The lookup is by hash, so no comparison of secret bytes happens in Python and the
    timing of a miss tells nothing about how close a guess was.
    """
    row = conn.execute(
        _IDENTIFY, {"hash": token_hash, "resolution": LAST_USED_RESOLUTION}
    ).fetchone()
    return None if row is None else str(row["name"])
