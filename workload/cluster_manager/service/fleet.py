"""The fleet as the web UI shows it: the overview, one page of clusters, one cluster's story.

Thin over `db.fleet`, where the warning rules and the paging live (in SQL); here each read
takes the deployment's settings, so the pages need not know the offline rule.
"""

from __future__ import annotations

import dataclasses

from ..db import fleet
from ..db.fleet import ClusterPage, FleetRow, FleetSummary, HistoryBucket
from ..db.pool import DbConnection
from ..envelope import NotFound
from ..settings import Settings

__all__ = [
    "SORT_COLUMNS",
    "STATUS_FILTERS",
    "ClusterHistory",
    "ClusterPage",
    "FleetOverview",
    "FleetRow",
    "FleetSummary",
    "HistoryBucket",
    "cluster_page",
    "cluster_with_history",
    "fleet_overview",
]

SORT_COLUMNS = frozenset(fleet.SORT_COLUMNS)
"""The names the clusters page may sort by."""
STATUS_FILTERS = frozenset(fleet.STATUS_FILTERS)
"""The names the clusters page may filter on."""


@dataclasses.dataclass(frozen=True)
class FleetOverview:
    """The overview page: fleet totals and the clusters that need attention."""

    summary: FleetSummary
    needing_attention: list[FleetRow]


@dataclasses.dataclass(frozen=True)
class ClusterHistory:
    """One cluster with its warnings and its last day of heartbeats."""

    row: FleetRow
    history: list[HistoryBucket]


def fleet_overview(conn: DbConnection, settings: Settings) -> FleetOverview:
    """Fleet totals and the clusters with the most warnings first."""
    offline_after = settings.offline_after
    return FleetOverview(
        fleet.fleet_summary(conn, offline_after),
        fleet.clusters_needing_attention(conn, offline_after),
    )


def cluster_page(
    conn: DbConnection,
    settings: Settings,
    *,
    search: str,
    statuses: tuple[str, ...],
    sort: str,
    descending: bool,
    limit: int,
    offset: int,
) -> ClusterPage:
    """One page of the clusters matching `search` and `statuses`, sorted by `sort`."""
    return fleet.cluster_page(
        conn,
        settings.offline_after,
        search=search,
        statuses=statuses,
        sort=sort,
        descending=descending,
        limit=limit,
        offset=offset,
    )


def cluster_with_history(conn: DbConnection, settings: Settings, name: str) -> ClusterHistory:
    """One enrolled cluster with its history, or raise NotFound."""
    row = fleet.fleet_row(conn, settings.offline_after, name)
    history = fleet.cluster_history(conn, name)
    if row is None:
        raise NotFound(f"remote cluster {name} not found")
    return ClusterHistory(row, history)
