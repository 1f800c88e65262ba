"""Enrolled clusters as the management API, the CLI and the UI see them (reference §1.1).

`ClusterRow` is the one shape of a cluster read from the database. Its fields are the
columns of `CLUSTER_SELECT`, so the column list is written once, here; every query that
reads clusters builds on that select and turns its result into rows with `class_row`.
`ONLINE` is the one meaning of "online", for every query that needs it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from psycopg import sql
from psycopg.rows import class_row

from .pool import DbConnection

# Columns a PATCH may change; anything else never reaches the SQL text.
UPDATABLE_COLUMNS = ("status", "description", "disk_threshold", "memory_threshold")

ONLINE = "coalesce(d.last_heartbeat_at > now() - make_interval(secs => %(offline_after)s), false)"
"""Whether a cluster is online: it reported less than `offline_after` seconds ago.

A cluster that never reported is offline. An SQL expression over `cluster_details AS d`,
taking the query parameter `offline_after` (seconds); no query spells the rule otherwise.
"""

Json = Any
"""A jsonb column as stored: normally a list of objects, but older rows may hold anything."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Reported:
    """What the latest heartbeat reported: the `cluster_details` columns a heartbeat writes.

    Zeros, empty lists and an empty `ui_url` until the first heartbeat.
    """

    ceph_count: int
    ceph_statuses: Json
    cpu_total_count: int
    cpu_load_1: str
    cpu_load_5: str
    cpu_load_15: str
    memory_total_amount: int
    memory_usage: int
    storage_pool_usages: Json
    member_count: int
    member_statuses: Json
    instance_count: int
    instance_statuses: Json
    ui_url: str


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ClusterRow(Reported):
    """One enrolled cluster with its latest heartbeat, as every reader sees it."""

    name: str
    description: str
    certificate: str
    fingerprint: str
    disk_threshold: int
    memory_threshold: int
    status: str
    joined_at: datetime
    created_at: datetime
    last_heartbeat_at: datetime | None
    """None until the first heartbeat."""
    online: bool
    """See `ONLINE`."""
    tunnel_connected_at: datetime | None
    """When the cluster's reverse tunnel opened; None while it has none."""


REPORTED_COLUMNS = tuple(field.name for field in dataclasses.fields(Reported))
"""The `cluster_details` columns a heartbeat writes (besides `last_heartbeat_at`)."""


def _source(column: str) -> str:
    if column == "online":
        return ONLINE
    if column == "tunnel_connected_at":
        return "t.connected_at"
    if column in REPORTED_COLUMNS or column == "last_heartbeat_at":
        return f"d.{column}"
    return f"c.{column}"


CLUSTER_COLUMNS = ",\n    ".join(
    f"{_source(field.name)} AS {field.name}" for field in dataclasses.fields(ClusterRow)
)
"""The select list of a `ClusterRow`, over `clusters AS c`, `cluster_details AS d` and
`tunnels AS t`."""

CLUSTER_SELECT = f"""
SELECT {CLUSTER_COLUMNS}
FROM clusters AS c JOIN cluster_details AS d ON d.cluster_id = c.id
LEFT JOIN tunnels AS t ON t.cluster_id = c.id
"""  # noqa: S608 - assembled from the constants above
"""Every cluster as a `ClusterRow`; takes the parameter `offline_after` (see `ONLINE`)."""


def list_clusters(conn: DbConnection, offline_after: int) -> list[ClusterRow]:
    """Every cluster with its latest heartbeat, sorted by name (byte order).

    Args:
        conn: an open connection.
        offline_after: seconds without a heartbeat after which a cluster counts as offline.

    Returns:
        One row per cluster; `online` tells whether it reported recently enough.
    """
    query = CLUSTER_SELECT + ' ORDER BY c.name COLLATE "C"'
    cursor = conn.cursor(row_factory=class_row(ClusterRow))
    return cursor.execute(query.encode(), {"offline_after": offline_after}).fetchall()


def get_cluster(conn: DbConnection, name: str, offline_after: int) -> ClusterRow | None:
    """One cluster by name, shaped like a row of `list_clusters`, or None."""
    query = CLUSTER_SELECT + " WHERE c.name = %(name)s"
    cursor = conn.cursor(row_factory=class_row(ClusterRow))
    return cursor.execute(
        query.encode(), {"offline_after": offline_after, "name": name}
    ).fetchone()


def update_cluster(conn: DbConnection, name: str, changes: Mapping[str, object]) -> bool:
    """Apply `changes` (column → value) in one statement; False when no such cluster.

    An empty `changes` still tells whether the cluster exists, so a no-op PATCH of an unknown
    name is a 404 like any other.
    """
    unknown = set(changes) - set(UPDATABLE_COLUMNS)
    if unknown:
        raise ValueError(f"not updatable: {', '.join(sorted(unknown))}")
    assignments: list[sql.Composable] = [
        sql.SQL("{} = {}").format(sql.Identifier(column), sql.Placeholder(column))
        for column in changes
    ]
    assignments.append(sql.SQL("updated_at = now()"))
    query = sql.SQL("UPDATE clusters SET {} WHERE name = {} RETURNING id").format(
        sql.SQL(", ").join(assignments), sql.Placeholder("name")
    )
    return conn.execute(query, {**changes, "name": name}).fetchone() is not None


def delete_cluster(conn: DbConnection, name: str) -> bool:
    """Forget a cluster and everything it reported; False when no such cluster."""
    row = conn.execute("DELETE FROM clusters WHERE name = %s RETURNING id", (name,)).fetchone()
    return row is not None
