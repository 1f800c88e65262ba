"""How each warning of a cluster reads, in upstream UI's words (reference §10).

Which conditions are warnings is decided in one place, the SQL of `db/fleet.py`: a
`FleetRow` carries its warnings as the database found them (the rule's kind and the
reported entry that raised it), the fleet counts, filters and sorts by that same list, and
this module only puts each one into words.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from ..service import FleetRow


@dataclasses.dataclass(frozen=True)
class ClusterWarning:
    """Something about a cluster that needs attention."""

    kind: str
    """offline, memory, storage, members, instances or ceph."""
    message: str


def _percent(usage: float, total: float) -> float:
    return usage * 100 / total if total > 0 else 0.0


def _offline(row: FleetRow, _: Any) -> str:
    if row.last_heartbeat_at is None:
        return "No heartbeat received yet"
    return "No recent heartbeat: the cluster is offline"


def _memory(row: FleetRow, _: Any) -> str:
    memory = _percent(row.memory_usage, row.memory_total_amount)
    return f"Memory usage {memory:.0f}% is above the {row.memory_threshold}% threshold"


def _storage(row: FleetRow, pool: Mapping[str, Any]) -> str:
    used = _percent(float(pool.get("usage", 0)), float(pool.get("total", 0)))
    where = f" on {pool['member']}" if pool.get("member") else ""
    return (
        f"Storage pool {pool.get('name', '?')}{where} is {used:.0f}% full, above "
        f"the {row.disk_threshold}% threshold"
    )


def _members(_: FleetRow, entry: Mapping[str, Any]) -> str:
    return f"{entry['count']} member(s) {entry.get('status') or '?'}"


def _instances(_: FleetRow, entry: Mapping[str, Any]) -> str:
    return f"{entry['count']} instance(s) in error"


def _ceph(_: FleetRow, entry: Mapping[str, Any]) -> str:
    return f"{entry['count']} Ceph member(s) {entry.get('status') or '?'}"


_MESSAGES: dict[str, Callable[[FleetRow, Any], str]] = {
    "offline": _offline,
    "memory": _memory,
    "storage": _storage,
    "members": _members,
    "instances": _instances,
    "ceph": _ceph,
}


def cluster_warnings(row: FleetRow) -> list[ClusterWarning]:
    """The warnings of one cluster, in the order the database listed them."""
    return [ClusterWarning(kind, _MESSAGES[kind](row, entry)) for kind, entry in row.warnings]
