"""Fleet-wide reads for the web UI: totals, distributions, one page of clusters, history.

Built on the cluster select of `clusters.py`, so a cluster has the same columns (and the
same online rule) in the API and the UI. Everything that grows with the fleet (filtering,
counting warnings, sorting, paging) happens in PostgreSQL, so a page stays fast at 10,000
clusters.
"""

# The SQL here is assembled only from constants of this module (sort and filter names map
# to fixed fragments); every value goes as a query parameter.
# ruff: noqa: S608

from __future__ import annotations

import dataclasses
from typing import Any

from .clusters import _SELECT as CLUSTER_SELECT  # pyright: ignore[reportPrivateUsage]
from .pool import DbConnection


def _items(column: str) -> str:
    # The elements of a JSON array column; a stored JSON null counts as no elements.
    return (
        f"jsonb_array_elements(CASE WHEN jsonb_typeof({column}) = 'array'"
        f" THEN {column} ELSE '[]' END)"
    )


# Counts one warning per condition the UI lists (ui/warnings.py keeps the two in step):
# offline, memory over its threshold, each pool over the disk threshold, each member status
# other than Online, instances in error, each Ceph status other than Online.
# All arithmetic on reported numbers is numeric: a bigint times 100, or a sum of counts,
# must never overflow, whatever a row stored before the heartbeat bounds holds (issue 9).
_WARNING_COUNT = f"""
    (CASE WHEN NOT f.online THEN 1 ELSE 0 END)
    + (CASE WHEN f.memory_total_amount > 0
            AND f.memory_usage::numeric * 100
                > f.memory_threshold * f.memory_total_amount::numeric
       THEN 1 ELSE 0 END)
    + (SELECT count(*) FROM {_items("f.storage_pool_usages")} AS p
       WHERE (p->>'total')::numeric > 0
         AND (p->>'usage')::numeric * 100 > f.disk_threshold * (p->>'total')::numeric)
    + (SELECT count(*) FROM {_items("f.member_statuses")} AS m
       WHERE m->>'status' IS DISTINCT FROM 'Online' AND (m->>'count')::numeric > 0)
    + (SELECT count(*) FROM {_items("f.instance_statuses")} AS i
       WHERE i->>'status' = 'Error' AND (i->>'count')::numeric > 0)
    + (SELECT count(*) FROM {_items("f.ceph_statuses")} AS s
       WHERE initcap(s->>'status') IS DISTINCT FROM 'Online' AND (s->>'count')::numeric > 0)
"""
_RUNNING = f"""
    (SELECT coalesce(sum((i->>'count')::numeric), 0) FROM {_items("f.instance_statuses")}
     AS i WHERE i->>'status' = 'Running')
"""
_ANNOTATED = f"""
WITH f AS ({CLUSTER_SELECT}), annotated AS (
    SELECT f.*, ({_WARNING_COUNT})::int AS warning_count, ({_RUNNING}) AS running_instances
    FROM f
)
"""

SORT_COLUMNS = {
    "name": 'name COLLATE "C"',
    "status": "online",
    "members": "member_count",
    "instances": "running_instances",
    "warnings": "warning_count",
    "heartbeat": "last_heartbeat_at",
}
STATUS_FILTERS = {
    "online": "online",
    "offline": "NOT online",
    "warnings": "warning_count > 0",
}


@dataclasses.dataclass(frozen=True)
class ClusterPage:
    """One page of the filtered, sorted cluster list."""

    rows: list[dict[str, Any]]
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
        The rows of the page (cluster columns plus `warning_count` and `running_instances`)
        and the number of matching clusters.
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
    rows = conn.execute(
        query.encode(),
        {
            "offline_after": offline_after,
            "search": f"%{escaped}%",
            "limit": limit,
            "offset": offset,
        },
    ).fetchall()
    if rows:
        return ClusterPage(list(rows), int(rows[0]["total"]))
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


def fleet_summary(conn: DbConnection, offline_after: int) -> dict[str, Any]:
    """Totals over every cluster, and how members and instances split by status."""
    params = {"offline_after": offline_after}
    totals = conn.execute(
        (
            _ANNOTATED
            + """SELECT count(*) AS clusters,
                count(*) FILTER (WHERE online) AS online,
                count(*) FILTER (WHERE last_heartbeat_at IS NULL) AS never_reported,
                count(*) FILTER (WHERE warning_count > 0) AS with_warnings,
                coalesce(sum(warning_count), 0) AS warnings,
                coalesce(sum(member_count), 0) AS members,
                coalesce(sum(instance_count), 0) AS instances,
                coalesce(sum(running_instances), 0) AS running_instances,
                coalesce(sum(cpu_total_count), 0) AS cpus,
                coalesce(sum(memory_total_amount), 0) AS memory_total,
                coalesce(sum(memory_usage), 0) AS memory_usage
            FROM annotated"""
        ).encode(),
        params,
    ).fetchone()
    result: dict[str, Any] = dict(totals or {})
    for column in ("member_statuses", "instance_statuses"):
        rows = conn.execute(
            (
                f"WITH f AS ({CLUSTER_SELECT}) SELECT e->>'status' AS status,"
                " sum((e->>'count')::numeric) AS count"
                f" FROM f, {_items('f.' + column)} AS e"
                " GROUP BY 1 ORDER BY 2 DESC, 1"
            ).encode(),
            params,
        ).fetchall()
        result[column] = [dict(row) for row in rows if row["count"]]
    return result


def clusters_needing_attention(
    conn: DbConnection, offline_after: int, limit: int = 20
) -> list[dict[str, Any]]:
    """The clusters with the most warnings first (at most `limit`)."""
    query = (
        _ANNOTATED
        + "SELECT * FROM annotated WHERE warning_count > 0"
        + ' ORDER BY warning_count DESC, name COLLATE "C" LIMIT %(limit)s'
    )
    return list(
        conn.execute(query.encode(), {"offline_after": offline_after, "limit": limit}).fetchall()
    )


def cluster_history(conn: DbConnection, name: str, hours: int = 24) -> list[dict[str, Any]]:
    """The cluster's heartbeat history buckets of the last `hours`, oldest first."""
    return list(
        conn.execute(
            "SELECT h.bucket, h.cpu_load_1, h.memory_total, h.memory_usage, h.storage_total,"
            " h.storage_usage, h.member_count, h.instance_count"
            " FROM heartbeat_history AS h JOIN clusters AS c ON c.id = h.cluster_id"
            " WHERE c.name = %s AND h.bucket > now() - make_interval(hours => %s)"
            " ORDER BY h.bucket",
            (name, hours),
        ).fetchall()
    )
