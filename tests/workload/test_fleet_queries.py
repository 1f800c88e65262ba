"""The UI's fleet queries at 10,000 clusters: pages, totals, and warnings counted as listed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cluster_manager.db import fleet
from cluster_manager.db.migrate import migrate
from cluster_manager.db.pool import DbConnection, connect
from cluster_manager.ui.warnings import cluster_warnings

from tools.fleet_seed import seed_fleet
from tools.postgres import PostgresServer

FLEET_SIZE = 10_000
SMALL_FLEET_SIZE = 420
"""Past 13 * 17: every two of the seeded conditions meet on some cluster."""
OFFLINE_AFTER = 180


@pytest.fixture(scope="module")
def conn(postgres: PostgresServer) -> Iterator[DbConnection]:
    url = postgres.create_database("fleet_queries")
    with connect(url) as connection:
        migrate(connection)
        seed_fleet(connection, FLEET_SIZE)
        yield connection


@pytest.fixture(scope="module")
def small_fleet(postgres: PostgresServer) -> Iterator[DbConnection]:
    """A fleet small enough to open every cluster's own page."""
    url = postgres.create_database("fleet_queries_small")
    with connect(url) as connection:
        migrate(connection)
        seed_fleet(connection, SMALL_FLEET_SIZE)
        yield connection


def _seeded_warnings(i: int) -> list[str]:
    # What tools/fleet_seed.py says cluster i has, in the order the UI lists warnings.
    rules = [("offline", 7), ("memory", 5), ("storage", 3), ("members", 11)]
    rules += [("instances", 13), ("ceph", 17)]
    return [kind for kind, every in rules if i % every == 0]


# How fast these are at 10,000 clusters is measured by `python -m tools.bench_ui`, not here.


def test_a_filtered_sorted_page_of_10000_clusters_is_one_page_of_the_matches(
    conn: DbConnection,
):
    page = fleet.cluster_page(
        conn,
        OFFLINE_AFTER,
        search="cluster-0",
        statuses=("warnings",),
        sort="warnings",
        descending=True,
        limit=50,
        offset=100,
    )

    assert len(page.rows) == 50
    assert page.total > 1000


def test_the_fleet_summary_counts_all_10000_clusters(conn: DbConnection):
    summary = fleet.fleet_summary(conn, OFFLINE_AFTER)

    assert summary.clusters == FLEET_SIZE
    assert summary.online == FLEET_SIZE - FLEET_SIZE // 7


def test_sql_warning_count_matches_the_listed_warnings(conn: DbConnection):
    rows = fleet.cluster_page(
        conn, OFFLINE_AFTER, limit=100, sort="warnings", descending=True
    ).rows

    assert rows[0].warning_count > 2
    assert all(row.warning_count == len(cluster_warnings(row)) for row in rows)


def test_status_filters_split_the_fleet(conn: DbConnection):
    online = fleet.cluster_page(conn, OFFLINE_AFTER, statuses=("online",), limit=1).total
    offline = fleet.cluster_page(conn, OFFLINE_AFTER, statuses=("offline",), limit=1).total

    assert online + offline == FLEET_SIZE
    assert offline == FLEET_SIZE // 7


def test_search_treats_like_wildcards_literally(conn: DbConnection):
    page = fleet.cluster_page(conn, OFFLINE_AFTER, search="cluster_%")

    assert page.total == 0


def test_each_cluster_lists_the_warnings_it_was_seeded_with(small_fleet: DbConnection):
    for i in range(1, SMALL_FLEET_SIZE + 1):
        row = fleet.fleet_row(small_fleet, OFFLINE_AFTER, f"cluster-{i:05}")

        assert row is not None
        assert [w.kind for w in cluster_warnings(row)] == _seeded_warnings(i), row.name


def test_the_overview_counts_what_the_cluster_pages_list(small_fleet: DbConnection):
    names = [f"cluster-{i:05}" for i in range(1, SMALL_FLEET_SIZE + 1)]
    rows = [fleet.fleet_row(small_fleet, OFFLINE_AFTER, name) for name in names]
    listed = [cluster_warnings(row) for row in rows if row is not None]

    summary = fleet.fleet_summary(small_fleet, OFFLINE_AFTER)
    attention = fleet.clusters_needing_attention(small_fleet, OFFLINE_AFTER, SMALL_FLEET_SIZE)
    with_warnings = fleet.cluster_page(small_fleet, OFFLINE_AFTER, statuses=("warnings",))

    assert len(listed) == summary.clusters == SMALL_FLEET_SIZE
    assert summary.warnings == sum(len(warnings) for warnings in listed)
    assert summary.with_warnings == sum(1 for warnings in listed if warnings)
    assert with_warnings.total == summary.with_warnings == len(attention)
    offline = sum(1 for warnings in listed if any(w.kind == "offline" for w in warnings))
    assert summary.clusters - summary.online == offline
    assert {row.name: cluster_warnings(row) for row in attention} == {
        name: warnings for name, warnings in zip(names, listed, strict=True) if warnings
    }
