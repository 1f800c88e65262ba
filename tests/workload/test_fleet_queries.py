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
OFFLINE_AFTER = 180


@pytest.fixture(scope="module")
def conn(postgres: PostgresServer) -> Iterator[DbConnection]:
    url = postgres.create_database("fleet_queries")
    with connect(url) as connection:
        migrate(connection)
        seed_fleet(connection, FLEET_SIZE)
        yield connection


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
