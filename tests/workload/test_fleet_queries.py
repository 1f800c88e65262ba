"""The UI's fleet queries: fast at 10,000 clusters, and warnings counted as the pages list them."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from cluster_manager.db import fleet
from cluster_manager.db.migrate import migrate
from cluster_manager.db.pool import DbConnection, connect
from cluster_manager.ui.warnings import cluster_warnings

from tests.support.postgres import PostgresServer

FLEET_SIZE = 10_000
OFFLINE_AFTER = 180

# Cluster i: every 7th never reported, every 5th has memory over 80 %, every 3rd a full pool,
# every 11th a member offline, every 13th an instance in error, every 17th a Ceph member down.
_SEED = """
INSERT INTO clusters
    (name, certificate, fingerprint, certificate_not_before, certificate_not_after)
SELECT format('cluster-%%s', lpad(i::text, 5, '0')), 'pem', encode(sha256(i::text::bytea), 'hex'),
    now() - interval '1 day', now() + interval '1 year'
FROM generate_series(1, %(n)s) AS i;
INSERT INTO cluster_details (cluster_id, memory_total_amount, memory_usage, member_count,
    member_statuses, instance_count, instance_statuses, ceph_statuses, storage_pool_usages,
    last_heartbeat_at)
SELECT c.id, 1000, CASE WHEN i %% 5 = 0 THEN 900 ELSE 100 END, 3,
    CASE WHEN i %% 11 = 0 THEN '[{"status":"Online","count":2},{"status":"Offline","count":1}]'
         ELSE '[{"status":"Online","count":3}]' END::jsonb,
    4,
    CASE WHEN i %% 13 = 0 THEN '[{"status":"Running","count":3},{"status":"Error","count":1}]'
         ELSE '[{"status":"Running","count":3},{"status":"Stopped","count":1}]' END::jsonb,
    CASE WHEN i %% 17 = 0 THEN '[{"status":"online","count":2},{"status":"down","count":1}]'
         ELSE '[{"status":"ONLINE","count":3}]' END::jsonb,
    format('[{"name":"local","member":"m1","total":100,"usage":%%s}]',
        CASE WHEN i %% 3 = 0 THEN 95 ELSE 10 END)::jsonb,
    CASE WHEN i %% 7 = 0 THEN NULL ELSE now() END
FROM clusters AS c JOIN generate_series(1, %(n)s) AS i
    ON c.name = format('cluster-%%s', lpad(i::text, 5, '0'));
"""


@pytest.fixture(scope="module")
def conn(postgres: PostgresServer) -> Iterator[DbConnection]:
    url = postgres.create_database("fleet_queries")
    with connect(url) as connection:
        migrate(connection)
        for statement in _SEED.split(";\n"):
            if statement.strip():
                connection.execute(statement.encode(), {"n": FLEET_SIZE})
        connection.execute("ANALYZE")
        yield connection


def timed(work) -> tuple[object, float]:
    start = time.perf_counter()
    result = work()
    return result, time.perf_counter() - start


def test_a_filtered_sorted_page_of_10000_clusters_takes_under_a_second(conn: DbConnection):
    page, seconds = timed(
        lambda: fleet.cluster_page(
            conn,
            OFFLINE_AFTER,
            search="cluster-0",
            statuses=("warnings",),
            sort="warnings",
            descending=True,
            limit=50,
            offset=100,
        )
    )

    assert len(page.rows) == 50  # type: ignore[attr-defined]
    assert page.total > 1000  # type: ignore[attr-defined]
    assert seconds < 1.0


def test_the_fleet_summary_of_10000_clusters_takes_under_a_second(conn: DbConnection):
    summary, seconds = timed(lambda: fleet.fleet_summary(conn, OFFLINE_AFTER))

    assert summary["clusters"] == FLEET_SIZE  # type: ignore[index]
    assert summary["online"] == FLEET_SIZE - FLEET_SIZE // 7  # type: ignore[index]
    assert seconds < 1.0


def test_sql_warning_count_matches_the_listed_warnings(conn: DbConnection):
    rows = fleet.cluster_page(
        conn, OFFLINE_AFTER, limit=100, sort="warnings", descending=True
    ).rows

    assert rows[0]["warning_count"] > 2
    assert all(row["warning_count"] == len(cluster_warnings(row)) for row in rows)


def test_status_filters_split_the_fleet(conn: DbConnection):
    online = fleet.cluster_page(conn, OFFLINE_AFTER, statuses=("online",), limit=1).total
    offline = fleet.cluster_page(conn, OFFLINE_AFTER, statuses=("offline",), limit=1).total

    assert online + offline == FLEET_SIZE
    assert offline == FLEET_SIZE // 7


def test_search_treats_like_wildcards_literally(conn: DbConnection):
    page = fleet.cluster_page(conn, OFFLINE_AFTER, search="cluster_%")

    assert page.total == 0
