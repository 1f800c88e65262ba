"""Enrolled clusters as the management API and the CLI see them: list, get, change, forget."""

from __future__ import annotations

from ..db import clusters
from ..db.clusters import ClusterRow
from ..db.pool import DbConnection
from ..envelope import NotFound
from ..settings import Settings

__all__ = [
    "OFFLINE",
    "ONLINE",
    "ClusterRow",
    "connection_status",
    "get_cluster",
    "list_clusters",
    "remove_cluster",
    "update_cluster",
]

ONLINE, OFFLINE = "online", "offline"


def connection_status(row: ClusterRow) -> str:
    """Online while heartbeats arrive; offline after three missed intervals, or before any."""
    return ONLINE if row.online else OFFLINE


def list_clusters(conn: DbConnection, settings: Settings) -> list[ClusterRow]:
    """Every enrolled cluster, sorted by name."""
    return clusters.list_clusters(conn, settings.offline_after)


def get_cluster(conn: DbConnection, settings: Settings, name: str) -> ClusterRow:
    """One enrolled cluster, or raise NotFound."""
    row = clusters.get_cluster(conn, name, settings.offline_after)
    if row is None:
        raise NotFound(f"remote cluster {name} not found")
    return row


def update_cluster(conn: DbConnection, name: str, changes: dict[str, object]) -> None:
    """Apply a validated PATCH in one statement, or raise NotFound."""
    if not clusters.update_cluster(conn, name, changes):
        raise NotFound(f"remote cluster {name} not found")


def remove_cluster(conn: DbConnection, name: str) -> None:
    """Forget an enrolled cluster, or raise NotFound.

    The cluster is not told; its next heartbeat is refused (design D4).
    """
    if not clusters.delete_cluster(conn, name):
        raise NotFound(f"remote cluster {name} not found")
