"""Enrolled clusters as the management API and the CLI see them (reference §1.1)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from psycopg import sql

from .pool import DbConnection

# Columns a PATCH may change; anything else never reaches the SQL text.
UPDATABLE_COLUMNS = ("status", "description", "disk_threshold", "memory_threshold")

_SELECT = """
SELECT c.name, c.description, c.certificate, c.fingerprint, c.disk_threshold,
    c.memory_threshold, c.status, d.ceph_count, d.ceph_statuses, d.cpu_total_count,
    d.cpu_load_1, d.cpu_load_5, d.cpu_load_15, d.memory_total_amount, d.memory_usage,
    d.storage_pool_usages, d.member_count, d.member_statuses, d.instance_count,
    d.instance_statuses, d.ui_url, c.joined_at, c.created_at, d.last_heartbeat_at,
    coalesce(d.last_heartbeat_at > now() - make_interval(secs => %(offline_after)s), false)
        AS online
FROM clusters AS c JOIN cluster_details AS d ON d.cluster_id = c.id
"""


def list_clusters(conn: DbConnection, offline_after: int) -> list[dict[str, Any]]:
    """Every cluster with its latest heartbeat, sorted by name (byte order).

    Args:
        conn: an open connection.
        offline_after: seconds without a heartbeat after which a cluster counts as offline.

    Returns:
        One row per cluster; `online` tells whether it reported recently enough.
    """
    query = _SELECT + ' ORDER BY c.name COLLATE "C"'
    return list(conn.execute(query, {"offline_after": offline_after}).fetchall())


def get_cluster(conn: DbConnection, name: str, offline_after: int) -> dict[str, Any] | None:
    """One cluster by name, shaped like a row of `list_clusters`, or None."""
    query = _SELECT + " WHERE c.name = %(name)s"
    return conn.execute(query, {"offline_after": offline_after, "name": name}).fetchone()


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
