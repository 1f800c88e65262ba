"""Logins in progress and browser sessions (design D7): only hashes of the browser's values."""

from __future__ import annotations

import dataclasses
from typing import Any

from .pool import DbConnection

# Like API tokens, a session's last use is recorded at most once a minute.
LAST_SEEN_RESOLUTION = "1 minute"


@dataclasses.dataclass(frozen=True)
class PendingLogin:
    """What the callback needs from the login that started it."""

    browser_hash: bytes
    nonce: str
    code_verifier: str
    return_to: str


def start_login(conn: DbConnection, state_hash: bytes, login: PendingLogin, lifetime: int) -> None:
    """Remember a login for `lifetime` seconds; expired ones are dropped on the way."""
    with conn.transaction():
        conn.execute("DELETE FROM oidc_logins WHERE expires_at <= now()")
        conn.execute(
            "INSERT INTO oidc_logins"
            " (state_hash, browser_hash, nonce, code_verifier, return_to, expires_at)"
            " VALUES (%s, %s, %s, %s, %s, now() + make_interval(secs => %s))",
            (
                state_hash,
                login.browser_hash,
                login.nonce,
                login.code_verifier,
                login.return_to,
                lifetime,
            ),
        )


def finish_login(conn: DbConnection, state_hash: bytes) -> PendingLogin | None:
    """Take (delete and return) the unexpired login of this state: each state works once."""
    row = conn.execute(
        "DELETE FROM oidc_logins WHERE state_hash = %s"
        " RETURNING browser_hash, nonce, code_verifier, return_to, expires_at > now() AS live",
        (state_hash,),
    ).fetchone()
    if row is None or not row["live"]:
        return None
    return PendingLogin(
        bytes(row["browser_hash"]), row["nonce"], row["code_verifier"], row["return_to"]
    )


def create_session(
    conn: DbConnection,
    token_hash: bytes,
    claims: dict[str, Any],
    sealed_refresh: bytes | None,
    tokens_expire_in: int,
    lifetime: int,
    sealed_access: bytes | None = None,
) -> None:
    """Store a new session; `claims` holds subject, name, email and groups."""
    with conn.transaction():
        conn.execute("DELETE FROM sessions WHERE expires_at <= now()")
        conn.execute(
            "INSERT INTO sessions (token_hash, subject, name, email, groups, sealed_refresh,"
            " sealed_access, tokens_expire_at, expires_at) VALUES (%s, %s, %s, %s, %s, %s, %s,"
            " now() + make_interval(secs => %s), now() + make_interval(secs => %s))",
            (
                token_hash,
                claims["subject"],
                claims["name"],
                claims["email"],
                list(claims["groups"]),
                sealed_refresh,
                sealed_access,
                tokens_expire_in,
                lifetime,
            ),
        )


_FIND = """
WITH found AS (
    SELECT id, subject, name, email, groups, sealed_refresh, sealed_access, last_seen_at,
        tokens_expire_at <= now() AS tokens_expired
    FROM sessions WHERE token_hash = %(hash)s AND expires_at > now()
), touched AS (
    UPDATE sessions AS s SET last_seen_at = now() FROM found
    WHERE s.id = found.id AND found.last_seen_at < now() - %(resolution)s::interval
)
SELECT id, subject, name, email, groups, sealed_refresh, sealed_access, tokens_expired
FROM found
"""


def find_session(conn: DbConnection, token_hash: bytes) -> dict[str, Any] | None:
    """The live session with this cookie hash (noting its use), or None."""
    return conn.execute(_FIND, {"hash": token_hash, "resolution": LAST_SEEN_RESOLUTION}).fetchone()


def lock_session(conn: DbConnection, session_id: int) -> dict[str, Any] | None:
    """Lock a session row for a refresh (inside a transaction); None once it is gone."""
    return conn.execute(
        "SELECT sealed_refresh, tokens_expire_at <= now() AS tokens_expired"
        " FROM sessions WHERE id = %s AND expires_at > now() FOR UPDATE",
        (session_id,),
    ).fetchone()


def store_refreshed(
    conn: DbConnection,
    session_id: int,
    claims: dict[str, Any],
    sealed_refresh: bytes | None,
    tokens_expire_in: int,
    sealed_access: bytes | None = None,
) -> None:
    """Record refreshed tokens and the identity they carry now."""
    conn.execute(
        "UPDATE sessions SET name = %s, email = %s, groups = %s,"
        " sealed_refresh = coalesce(%s, sealed_refresh), sealed_access = %s,"
        " tokens_expire_at = now() + make_interval(secs => %s) WHERE id = %s",
        (
            claims["name"],
            claims["email"],
            list(claims["groups"]),
            sealed_refresh,
            sealed_access,
            tokens_expire_in,
            session_id,
        ),
    )


def delete_session(conn: DbConnection, token_hash: bytes) -> bool:
    """End the session with this cookie hash; False when there was none."""
    row = conn.execute(
        "DELETE FROM sessions WHERE token_hash = %s RETURNING id", (token_hash,)
    ).fetchone()
    return row is not None


def delete_session_by_id(conn: DbConnection, session_id: int) -> None:
    """End a session whose tokens can no longer be refreshed."""
    conn.execute("DELETE FROM sessions WHERE id = %s", (session_id,))
