"""Which unit holds each cluster's reverse tunnel, and the LXD cookies of each session (D13).

A tunnel process registers a socket in the statement that authenticates it (as heartbeats are:
by certificate fingerprint, in date), so a removed cluster cannot register, and learns which
socket it replaced. A registration names the holder (`host:port` of the tunnel process's
internal listener) and the socket (`connection`), so that closing an old socket never clears
its replacement.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable
from datetime import datetime

from .pool import DbConnection


@dataclasses.dataclass(frozen=True)
class Registration:
    """A socket just registered for `cluster`, and the one it replaced, if any."""

    cluster_id: int
    cluster: str
    replaced_holder: str | None
    replaced_connection: uuid.UUID | None


@dataclasses.dataclass(frozen=True)
class TunnelRoute:
    """Where a management request for a cluster goes; `holder` is None without a tunnel."""

    cluster_id: int
    holder: str | None
    connected_at: datetime | None


@dataclasses.dataclass(frozen=True)
class LXDCookie:
    """A cookie an LXD set through the tunnel; `expires_at` None lasts as long as the session."""

    name: str
    value: str
    expires_at: datetime | None


_REGISTER = """
WITH caller AS (
    SELECT id, name FROM clusters
    WHERE fingerprint = %(fingerprint)s
      AND certificate_not_before <= now() AND certificate_not_after > now()
), replaced AS (
    SELECT t.cluster_id, t.holder, t.connection
    FROM tunnels AS t JOIN caller ON t.cluster_id = caller.id
), registered AS (
    INSERT INTO tunnels (cluster_id, holder, connection)
    SELECT id, %(holder)s, %(connection)s FROM caller
    ON CONFLICT (cluster_id) DO UPDATE SET
        holder = EXCLUDED.holder, connection = EXCLUDED.connection, connected_at = now()
)
SELECT caller.id, caller.name, replaced.holder, replaced.connection
FROM caller LEFT JOIN replaced ON replaced.cluster_id = caller.id
"""


def register(
    conn: DbConnection, fingerprint: str, holder: str, connection: uuid.UUID
) -> Registration | None:
    """Record that `holder` holds the tunnel of the cluster with `fingerprint`; None if unknown."""
    row = conn.execute(
        _REGISTER, {"fingerprint": fingerprint, "holder": holder, "connection": connection}
    ).fetchone()
    if row is None:
        return None
    return Registration(row["id"], row["name"], row["holder"], row["connection"])


def unregister(conn: DbConnection, cluster_id: int, connection: uuid.UUID) -> None:
    """Forget the tunnel of `cluster_id` if it is still the socket `connection`."""
    conn.execute(
        "DELETE FROM tunnels WHERE cluster_id = %s AND connection = %s", (cluster_id, connection)
    )


def forget_holder(conn: DbConnection, holder: str, keep: Iterable[uuid.UUID] = ()) -> int:
    """Forget every tunnel `holder` registered but the sockets in `keep`; how many went."""
    cursor = conn.execute(
        "DELETE FROM tunnels WHERE holder = %s AND NOT connection = ANY(%s)",
        (holder, list(keep)),
    )
    return cursor.rowcount


def registered_connections(conn: DbConnection, holder: str) -> set[uuid.UUID]:
    """The sockets the database says `holder` holds."""
    rows = conn.execute("SELECT connection FROM tunnels WHERE holder = %s", (holder,)).fetchall()
    return {row["connection"] for row in rows}


def find_route(conn: DbConnection, cluster: str) -> TunnelRoute | None:
    """The tunnel of the cluster named `cluster`; None when there is no such cluster."""
    row = conn.execute(
        "SELECT c.id, t.holder, t.connected_at FROM clusters AS c"
        " LEFT JOIN tunnels AS t ON t.cluster_id = c.id WHERE c.name = %s",
        (cluster,),
    ).fetchone()
    if row is None:
        return None
    return TunnelRoute(row["id"], row["holder"], row["connected_at"])


def session_cookies(conn: DbConnection, session_id: int, cluster_id: int) -> list[LXDCookie]:
    """The unexpired cookies the cluster's LXD gave this session, by name."""
    rows = conn.execute(
        "SELECT name, value, expires_at FROM tunnel_cookies"
        " WHERE session_id = %s AND cluster_id = %s"
        " AND (expires_at IS NULL OR expires_at > now()) ORDER BY name",
        (session_id, cluster_id),
    ).fetchall()
    return [LXDCookie(row["name"], row["value"], row["expires_at"]) for row in rows]


def store_cookies(
    conn: DbConnection, session_id: int, cluster_id: int, cookies: Iterable[LXDCookie]
) -> None:
    """Keep what LXD set; a cookie that expired already (LXD clearing it) is removed."""
    with conn.transaction():
        for cookie in cookies:
            conn.execute(
                "DELETE FROM tunnel_cookies WHERE session_id = %s AND cluster_id = %s"
                " AND name = %s",
                (session_id, cluster_id, cookie.name),
            )
            conn.execute(
                "INSERT INTO tunnel_cookies (session_id, cluster_id, name, value, expires_at)"
                " SELECT %s, %s, %s, %s, %s WHERE %s::timestamptz IS NULL OR %s > now()",
                (
                    session_id,
                    cluster_id,
                    cookie.name,
                    cookie.value,
                    cookie.expires_at,
                    cookie.expires_at,
                    cookie.expires_at,
                ),
            )
