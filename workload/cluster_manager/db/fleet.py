"""Fleet-wide reads for the web UI and `/metrics`: totals, one page of clusters, history.

Built on the cluster select of `clusters.py`, so a cluster has the same columns (and the
same online rule) in the API, the UI and the metrics. Everything that grows with the fleet
(filtering, counting warnings, sorting, paging) happens in PostgreSQL, so a page stays fast
at 10,000 clusters.

The warning rules live here, in SQL, and only here (`_WARNINGS`): each cluster's list of
warnings comes from the database, the counts, filters and sorting of the UI count that same
list, and `ui/warnings.py` only words each entry.
"""

# The SQL here is assembled only from constants of this module (sort and filter names map
# to fixed fragments); every value goes as a query parameter.
# ruff: noqa: S608

from __future__ import annotations

import dataclasses
from datetime import datetime
from decimal import Decimal

from psycopg.rows import class_row

from .clusters import CLUSTER_SELECT, ClusterRow, Json
from .pool import DbConnection


def _items(column: str) -> str:
    # The elements of a JSON array column; a stored JSON null counts as no elements.
    return (
        f"jsonb_array_elements(CASE WHEN jsonb_typeof({column}) = 'array'"
        f" THEN {column} ELSE '[]' END)"
    )


def _numbered(column: str, alias: str) -> str:
    # The elements of a JSON array column as `alias(entry, n)`, n counting from 1.
    return f"{_items(column)} WITH ORDINALITY AS {alias}(entry, n)"


# The warnings of the cluster `f`, one row each, in the order the UI lists them (`rule`,
# then the entry's place in its list): offline, memory over its threshold, each pool over
# the disk threshold, each member status other than Online, instances in error, each Ceph
# status other than Online. `kind` names the rule; `entry` is the reported element that
# raised it (null for offline and memory).
# All arithmetic on reported numbers is numeric: a bigint times 100, or a sum of counts,
# must never overflow, whatever a row stored before the heartbeat bounds holds (issue 9).
_WARNINGS = f"""
    SELECT 1 AS rule, 0::bigint AS n, 'offline' AS kind, NULL::jsonb AS entry
    WHERE NOT f.online
    UNION ALL
    SELECT 2, 0, 'memory', NULL
    WHERE f.memory_total_amount > 0
      AND f.memory_usage::numeric * 100 > f.memory_threshold * f.memory_total_amount::numeric
    UNION ALL
    SELECT 3, p.n, 'storage', p.entry FROM {_numbered("f.storage_pool_usages", "p")}
    WHERE (p.entry->>'total')::numeric > 0
      AND (p.entry->>'usage')::numeric * 100 > f.disk_threshold * (p.entry->>'total')::numeric
    UNION ALL
    SELECT 4, m.n, 'members', m.entry FROM {_numbered("f.member_statuses", "m")}
    WHERE m.entry->>'status' IS DISTINCT FROM 'Online' AND (m.entry->>'count')::numeric > 0
    UNION ALL
    SELECT 5, i.n, 'instances', i.entry FROM {_numbered("f.instance_statuses", "i")}
    WHERE i.entry->>'status' = 'Error' AND (i.entry->>'count')::numeric > 0
    UNION ALL
    SELECT 6, s.n, 'ceph', s.entry FROM {_numbered("f.ceph_statuses", "s")}
    WHERE initcap(s.entry->>'status') IS DISTINCT FROM 'Online'
      AND (s.entry->>'count')::numeric > 0
"""
_RUNNING = f"""
    (SELECT coalesce(sum((i->>'count')::numeric), 0) FROM {_items("f.instance_statuses")}
     AS i WHERE i->>'status' = 'Running')
"""
_ANNOTATED = f"""
WITH f AS ({CLUSTER_SELECT}), annotated AS (
    SELECT f.*, w.warning_kinds, w.warning_entries, ({_RUNNING}) AS running_instances
    FROM f CROSS JOIN LATERAL (
        SELECT coalesce(array_agg(w.kind ORDER BY w.rule, w.n), ARRAY[]::text[])
                   AS warning_kinds,
               coalesce(array_agg(w.entry ORDER BY w.rule, w.n), ARRAY[]::jsonb[])
                   AS warning_entries
        FROM ({_WARNINGS}) AS w
    ) AS w
)
"""
_WARNING_COUNT = "cardinality(warning_kinds)"

SORT_COLUMNS = {
    "name": 'name COLLATE "C"',
    "status": "online",
    "members": "member_count",
    "instances": "running_instances",
    "warnings": _WARNING_COUNT,
    "heartbeat": "last_heartbeat_at",
}
STATUS_FILTERS = {
    "online": "online",
    "offline": "NOT online",
    "warnings": f"{_WARNING_COUNT} > 0",
}


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class FleetRow(ClusterRow):
    """A cluster as the UI shows it: its `ClusterRow` plus its warnings and running instances."""

    warning_kinds: list[str]
    """The rule behind each warning: offline, memory, storage, members, instances or ceph."""
    warning_entries: list[Json]
    """For each warning, the reported element that raised it (None for offline and memory)."""
    running_instances: Decimal

    @property
    def warnings(self) -> list[tuple[str, Json]]:
        """The warnings as (kind, entry) pairs, in the order the UI lists them."""
        return list(zip(self.warning_kinds, self.warning_entries, strict=True))

    @property
    def warning_count(self) -> int:
        """How many warnings the cluster has."""
        return len(self.warning_kinds)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class _PageRow(FleetRow):
    total: int
    """Clusters matching the page's filter, over all pages."""


@dataclasses.dataclass(frozen=True)
class ClusterPage:
    """One page of the filtered, sorted cluster list."""

    rows: list[FleetRow]
    total: int
    """Clusters matching the filter, over all pages."""


def cluster_page(
    conn: DbConnection,
    offline_after: int,
    *,
    search: str = "",
    statuses: tuple[str, ...] = (),
    sort: str = "name",
    descending: bool = False,
    limit: int = 50,
    offset: int = 0,
) -> ClusterPage:
    """Clusters whose name or description contains `search`, in any of `statuses`.

    Args:
        conn: an open connection.
        offline_after: seconds without a heartbeat after which a cluster is offline.
        search: case-insensitive substring of the name or description; empty = all.
        statuses: keys of STATUS_FILTERS, combined with OR; empty = all.
        sort: a key of SORT_COLUMNS (ties are broken by name).
        descending: reverse the order.
        limit: page size.
        offset: rows to skip.

    Returns:
        The rows of the page and the number of matching clusters.
    """
    conditions = ["true"]
    if search:
        conditions.append("(name ILIKE %(search)s OR description ILIKE %(search)s)")
    wanted = [STATUS_FILTERS[s] for s in statuses if s in STATUS_FILTERS]
    if wanted:
        conditions.append("(" + " OR ".join(wanted) + ")")
    direction = "DESC" if descending else "ASC"
    nulls = "NULLS LAST" if descending else "NULLS FIRST"
    order = SORT_COLUMNS.get(sort, SORT_COLUMNS["name"])
    query = (
        _ANNOTATED
        + "SELECT *, count(*) OVER () AS total FROM annotated WHERE "
        + " AND ".join(conditions)
        + f' ORDER BY {order} {direction} {nulls}, name COLLATE "C"'
        + " LIMIT %(limit)s OFFSET %(offset)s"
    )
    escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    rows = (
        conn.cursor(row_factory=class_row(_PageRow))
        .execute(
            query.encode(),
            {
                "offline_after": offline_after,
                "search": f"%{escaped}%",
                "limit": limit,
                "offset": offset,
            },
        )
        .fetchall()
    )
    if rows:
        return ClusterPage([*rows], rows[0].total)
    if offset == 0:
        return ClusterPage([], 0)
    count = conn.execute(
        (
            _ANNOTATED
            + "SELECT count(*) AS total FROM annotated WHERE "
            + " AND ".join(conditions)
        ).encode(),
        {"offline_after": offline_after, "search": f"%{escaped}%"},
    ).fetchone()
    return ClusterPage([], int(count["total"]) if count else 0)


def fleet_row(conn: DbConnection, offline_after: int, name: str) -> FleetRow | None:
    """One cluster by name with its warnings, or None."""
    query = _ANNOTATED + "SELECT * FROM annotated WHERE name = %(name)s"
    cursor = conn.cursor(row_factory=class_row(FleetRow))
    return cursor.execute(
        query.encode(), {"offline_after": offline_after, "name": name}
    ).fetchone()


def clusters_needing_attention(
    conn: DbConnection, offline_after: int, limit: int = 20
) -> list[FleetRow]:
    """The clusters with the most warnings first (at most `limit`)."""
    query = (
        _ANNOTATED
        + f"SELECT * FROM annotated WHERE {_WARNING_COUNT} > 0"
        + f' ORDER BY {_WARNING_COUNT} DESC, name COLLATE "C" LIMIT %(limit)s'
    )
    cursor = conn.cursor(row_factory=class_row(FleetRow))
    return cursor.execute(
        query.encode(), {"offline_after": offline_after, "limit": limit}
    ).fetchall()


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class FleetSummary:
    """Totals over every cluster, and how members and instances split by status."""

    clusters: int
    online: int
    never_reported: int
    with_warnings: int
    """Clusters with at least one warning."""
    warnings: int
    """Warnings of all clusters."""
    members: int
    instances: int
    running_instances: Decimal
    cpus: Decimal
    memory_total: Decimal
    memory_usage: Decimal
    member_statuses: Json
    """`[{"status", "count"}]`, the shape a heartbeat reports, biggest count first."""
    instance_statuses: Json
    """`[{"status", "count"}]`, the shape a heartbeat reports, biggest count first."""


def _distribution(column: str) -> str:
    # How the entries of a status column add up over the fleet, as a reported status list.
    return f"""(
        SELECT coalesce(jsonb_agg(jsonb_build_object('status', status, 'count', total)
                                  ORDER BY total DESC, status), '[]')
        FROM (SELECT e->>'status' AS status, sum((e->>'count')::numeric) AS total
              FROM f, {_items("f." + column)} AS e GROUP BY 1) AS totals
        WHERE total <> 0
    )"""


_SUMMARY = f"""
    SELECT count(*) AS clusters,
        count(*) FILTER (WHERE online) AS online,
        count(*) FILTER (WHERE last_heartbeat_at IS NULL) AS never_reported,
        count(*) FILTER (WHERE {_WARNING_COUNT} > 0) AS with_warnings,
        coalesce(sum({_WARNING_COUNT}), 0) AS warnings,
        coalesce(sum(member_count), 0) AS members,
        coalesce(sum(instance_count), 0) AS instances,
        coalesce(sum(running_instances), 0) AS running_instances,
        coalesce(sum(cpu_total_count), 0) AS cpus,
        coalesce(sum(memory_total_amount), 0) AS memory_total,
        coalesce(sum(memory_usage), 0) AS memory_usage,
        {_distribution("member_statuses")} AS member_statuses,
        {_distribution("instance_statuses")} AS instance_statuses
    FROM annotated
"""


def fleet_summary(conn: DbConnection, offline_after: int) -> FleetSummary:
    """Totals over every cluster, and how members and instances split by status."""
    cursor = conn.cursor(row_factory=class_row(FleetSummary))
    summary = cursor.execute(
        (_ANNOTATED + _SUMMARY).encode(), {"offline_after": offline_after}
    ).fetchone()
    if summary is None:  # never: an aggregate without GROUP BY has one row
        raise RuntimeError("the fleet summary returned no row")
    return summary


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class HistoryBucket:
    """The last heartbeat of a cluster in one ten-minute bucket (`heartbeat_history`)."""

    bucket: datetime
    cpu_load_1: float
    memory_total: int
    memory_usage: int
    storage_total: int
    storage_usage: int
    member_count: int
    instance_count: int


_HISTORY = f"""
    SELECT {", ".join("h." + field.name for field in dataclasses.fields(HistoryBucket))}
    FROM heartbeat_history AS h JOIN clusters AS c ON c.id = h.cluster_id
    WHERE c.name = %s AND h.bucket > now() - make_interval(hours => %s)
    ORDER BY h.bucket
"""


def cluster_history(conn: DbConnection, name: str, hours: int = 24) -> list[HistoryBucket]:
    """The cluster's heartbeat history buckets of the last `hours`, oldest first."""
    cursor = conn.cursor(row_factory=class_row(HistoryBucket))
    return cursor.execute(_HISTORY.encode(), (name, hours)).fetchall()


# -- the fleet gauges of /metrics -----------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class FleetGauges:
    """What `/metrics` reports about the fleet, read in one query."""

    clusters: int
    online: int
    names: list[str]
    """Every cluster's name, in the order of `last_seen`."""
    last_seen: list[float]
    """Unix time of each cluster's last heartbeat, or of its enrollment before the first."""
    valid_tokens: int
    """Join tokens not used yet that still work."""
    tunnels: int
    """Clusters holding a reverse tunnel to some unit now."""
    expired_tokens: int
    """Join tokens not used before they expired."""


# The clusters come from the very select the API and the UI read, so all three agree on
# which clusters exist and which are online. One aggregate feeds every row to both arrays,
# so they are in the same order.
_GAUGES = f"""
WITH f AS ({CLUSTER_SELECT})
SELECT count(*) AS clusters, count(*) FILTER (WHERE online) AS online,
    coalesce(array_agg(name), ARRAY[]::text[]) AS names,
    coalesce(array_agg(extract(epoch FROM coalesce(last_heartbeat_at, joined_at))::float8),
             ARRAY[]::float8[]) AS last_seen,
    (SELECT count(*) FROM join_tokens WHERE expires_at > now()) AS valid_tokens,
    (SELECT count(*) FROM join_tokens WHERE expires_at <= now()) AS expired_tokens,
    count(*) FILTER (WHERE tunnel_connected_at IS NOT NULL) AS tunnels
FROM f
"""


def fleet_gauges(conn: DbConnection, offline_after: int) -> FleetGauges:
    """How many clusters are online, when each was last heard of, the join tokens by state."""
    cursor = conn.cursor(row_factory=class_row(FleetGauges))
    gauges = cursor.execute(_GAUGES.encode(), {"offline_after": offline_after}).fetchone()
    if gauges is None:  # never: an aggregate without GROUP BY has one row
        raise RuntimeError("the fleet gauges returned no row")
    return gauges
