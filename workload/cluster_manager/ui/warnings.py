"""Warnings of a cluster, computed as upstream's UI computes them (reference §10).

One warning per condition; `db/fleet.py` counts the same conditions in SQL to filter and
sort the whole fleet, and a test keeps the two in step.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any


@dataclasses.dataclass(frozen=True)
class ClusterWarning:
    """Something about a cluster that needs attention."""

    kind: str
    """offline, memory, storage, members, instances or ceph."""
    message: str


def _percent(usage: float, total: float) -> float:
    return usage * 100 / total if total > 0 else 0.0


def _entries(value: Any) -> list[Mapping[str, Any]]:
    return [item for item in value or [] if isinstance(item, Mapping)]


def cluster_warnings(row: Mapping[str, Any]) -> list[ClusterWarning]:
    """The warnings of one cluster row (as `clusters.get_cluster` returns it)."""
    warnings: list[ClusterWarning] = []
    if not row["online"]:
        if row["last_heartbeat_at"] is None:
            warnings.append(ClusterWarning("offline", "No heartbeat received yet"))
        else:
            warnings.append(
                ClusterWarning("offline", "No recent heartbeat: the cluster is offline")
            )
    memory = _percent(row["memory_usage"], row["memory_total_amount"])
    if row["memory_total_amount"] > 0 and memory > row["memory_threshold"]:
        warnings.append(
            ClusterWarning(
                "memory",
                f"Memory usage {memory:.0f}% is above the {row['memory_threshold']}% threshold",
            )
        )
    for pool in _entries(row["storage_pool_usages"]):
        used = _percent(float(pool.get("usage", 0)), float(pool.get("total", 0)))
        if float(pool.get("total", 0)) > 0 and used > row["disk_threshold"]:
            where = f" on {pool['member']}" if pool.get("member") else ""
            warnings.append(
                ClusterWarning(
                    "storage",
                    f"Storage pool {pool.get('name', '?')}{where} is {used:.0f}% full, above "
                    f"the {row['disk_threshold']}% threshold",
                )
            )
    warnings.extend(
        ClusterWarning("members", f"{entry['count']} member(s) {entry.get('status') or '?'}")
        for entry in _entries(row["member_statuses"])
        if entry.get("status") != "Online" and int(entry.get("count", 0)) > 0
    )
    warnings.extend(
        ClusterWarning("instances", f"{entry['count']} instance(s) in error")
        for entry in _entries(row["instance_statuses"])
        if entry.get("status") == "Error" and int(entry.get("count", 0)) > 0
    )
    for entry in _entries(row["ceph_statuses"]):
        status = str(entry.get("status") or "")
        if status.capitalize() != "Online" and int(entry.get("count", 0)) > 0:
            warnings.append(
                ClusterWarning("ceph", f"{entry['count']} Ceph member(s) {status or '?'}")
            )
    return warnings
