"""The fleet queries never overflow, whatever the database holds (issue 9, finding 1).

Rows stored before the heartbeat bounds existed may hold memory near the bigint maximum and
status counts past the integer range; the overview and the cluster list must still answer.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from cluster_manager.db import fleet
from cluster_manager.db.migrate import migrate
from cluster_manager.db.pool import DbConnection, connect

OFFLINE_AFTER = 180
INT64_MAX = 2**63 - 1


@pytest.fixture
def conn(fresh_database_url: str) -> Iterator[DbConnection]:
    with connect(fresh_database_url) as connection:
        migrate(connection)
        yield connection


def _store(conn: DbConnection, name: str, **details: object) -> None:
    cluster = conn.execute(
        "INSERT INTO clusters (name, certificate, fingerprint, certificate_not_before,"
        " certificate_not_after) VALUES (%s, 'pem', encode(sha256(%s::bytea), 'hex'),"
        " now() - interval '1 day', now() + interval '1 year') RETURNING id",
        (name, name.encode()),
    ).fetchone()
    assert cluster is not None
    columns = ["cluster_id", "last_heartbeat_at", *details]
    values = [cluster["id"], "now", *(_sql_value(value) for value in details.values())]
    query = (
        f"INSERT INTO cluster_details ({', '.join(columns)})"  # noqa: S608 - test constants
        f" VALUES ({', '.join(['%s'] * len(values))})"
    )
    conn.execute(query.encode(), values)


def _sql_value(value: object) -> object:
    return json.dumps(value) if isinstance(value, list) else value


def test_memory_near_the_bigint_maximum_counts_as_one_warning(conn: DbConnection) -> None:
    _store(conn, "huge-memory", memory_total_amount=INT64_MAX, memory_usage=INT64_MAX)

    page = fleet.cluster_page(conn, OFFLINE_AFTER)

    assert [row.warning_count for row in page.rows] == [1]


def test_the_overview_sums_memory_near_the_bigint_maximum(conn: DbConnection) -> None:
    _store(conn, "huge-a", memory_total_amount=INT64_MAX, memory_usage=2 * 10**17)
    _store(conn, "huge-b", memory_total_amount=INT64_MAX, memory_usage=10**17)

    summary = fleet.fleet_summary(conn, OFFLINE_AFTER)

    assert summary.memory_total == 2 * INT64_MAX
    assert summary.with_warnings == 0


def test_stored_status_counts_past_the_integer_range_are_counted(conn: DbConnection) -> None:
    counts = [{"status": "Running", "count": 2**40}, {"status": "Error", "count": 2**40}]
    _store(conn, "many-instances", instance_statuses=counts, member_statuses=counts)

    attention = fleet.clusters_needing_attention(conn, OFFLINE_AFTER)

    assert [(row.running_instances, row.warning_count) for row in attention] == [(2**40, 3)]
