"""JSON shapes of the management API: upstream's field names and order, plus our extras."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..protocol.envelope import rfc3339, utc
from ..service import ClusterRow, connection_status


def remote_cluster(row: ClusterRow) -> dict[str, Any]:
    """A RemoteCluster object (reference §1.1), keys in upstream's order.

    `last_status_update_at` must be a timestamp in the published contract, so before the
    first heartbeat it holds the enrollment time, as upstream's does; `last_heartbeat_at`
    (an extra, null until the first heartbeat) tells the two cases apart. `tunnel_registered`
    is upstream's (its OpenAPI document omits it); `tunnel_connected_at` is our extra.
    """
    last_heartbeat = row.last_heartbeat_at
    return {
        "name": row.name,
        "description": row.description,
        "cluster_certificate": row.certificate,
        "disk_threshold": row.disk_threshold,
        "memory_threshold": row.memory_threshold,
        "status": row.status,
        "ceph_count": row.ceph_count,
        "ceph_statuses": row.ceph_statuses,
        "cpu_total_count": row.cpu_total_count,
        "cpu_load_1": row.cpu_load_1,
        "cpu_load_5": row.cpu_load_5,
        "cpu_load_15": row.cpu_load_15,
        "memory_total_amount": row.memory_total_amount,
        "memory_usage": row.memory_usage,
        "storage_pool_usages": row.storage_pool_usages,
        "member_count": row.member_count,
        "member_statuses": row.member_statuses,
        "instance_count": row.instance_count,
        "instance_statuses": row.instance_statuses,
        "ui_url": row.ui_url,
        "tunnel_registered": row.tunnel_connected_at is not None,
        "joined_at": rfc3339(utc(row.joined_at)),
        "created_at": rfc3339(utc(row.created_at)),
        "last_status_update_at": rfc3339(utc(last_heartbeat or row.joined_at)),
        "fingerprint": row.fingerprint,
        "connection_status": connection_status(row),
        "last_heartbeat_at": rfc3339(utc(last_heartbeat)) if last_heartbeat else None,
        "tunnel_connected_at": (
            rfc3339(utc(row.tunnel_connected_at)) if row.tunnel_connected_at else None
        ),
    }


def join_token(row: Mapping[str, Any]) -> dict[str, Any]:
    """A RemoteClusterToken object; `expired` is our extra (expired tokens stay listed)."""
    return {
        "expiry": rfc3339(utc(row["expires_at"])),
        "cluster_name": row["cluster_name"],
        "description": row["description"],
        "created_at": rfc3339(utc(row["created_at"])),
        "expired": bool(row["expired"]),
    }
