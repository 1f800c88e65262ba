"""Forward-only migrations under an advisory lock (design D6), on real PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from cluster_manager.db.migrate import Migration, available_migrations, migrate
from cluster_manager.db.pool import connect


def _tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall()
    return {row[0] for row in rows}


def _schema_version(url: str) -> int:
    """The highest migration recorded as applied."""
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
    assert row is not None
    return row[0]


def cli_migrate(url: str) -> subprocess.CompletedProcess[str]:
    """Run the real `migrate --json` command against `url`, as the charm does."""
    env = {**os.environ, "MCM_DATABASE_URL": url, "MCM_CONNECTOR_DOMAIN": "cc.mcm.test"}
    env.pop("MCM_ENV_FILE", None)
    return subprocess.run(
        [sys.executable, "-m", "cluster_manager", "migrate", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_migrate_applies_every_migration_to_an_empty_database(fresh_database_url: str) -> None:
    latest = available_migrations()[-1].version

    with connect(fresh_database_url) as conn:
        result = migrate(conn)

    assert result.version == latest
    assert result.applied == tuple(range(1, latest + 1))
    assert {"clusters", "join_tokens", "api_tokens", "schema_migrations"} <= _tables(
        fresh_database_url
    )


def test_second_migrate_is_a_no_op(fresh_database_url: str) -> None:
    with connect(fresh_database_url) as conn:
        first = migrate(conn)

        second = migrate(conn)

    assert second.applied == ()
    assert second.version == first.version


def test_concurrent_migrate_processes_all_succeed_at_one_version(
    fresh_database_url: str,
) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(cli_migrate, [fresh_database_url] * 4))

    outputs = [json.loads(result.stdout) for result in results]
    assert [result.returncode for result in results] == [0, 0, 0, 0]
    assert {output["version"] for output in outputs} == {available_migrations()[-1].version}
    # Exactly one process did the work; the others found nothing left to do.
    assert sorted(len(output["applied"]) for output in outputs)[:3] == [0, 0, 0]


def test_failing_migration_leaves_the_schema_untouched(fresh_database_url: str) -> None:
    with connect(fresh_database_url) as conn:
        migrate(conn)
    tables_before = _tables(fresh_database_url)
    broken = Migration(
        version=len(available_migrations()) + 1,
        name="broken",
        sql="CREATE TABLE half_done (id integer); SELECT 1 / 0;",
    )

    with connect(fresh_database_url) as conn, pytest.raises(psycopg.errors.DivisionByZero):
        migrate(conn, [*available_migrations(), broken])

    assert _schema_version(fresh_database_url) == broken.version - 1
    assert _tables(fresh_database_url) == tables_before


def test_failing_first_run_leaves_an_empty_database_empty(fresh_database_url: str) -> None:
    broken = Migration(version=2, name="broken", sql="SELECT no_such_column FROM clusters;")

    with connect(fresh_database_url) as conn, pytest.raises(psycopg.errors.UndefinedColumn):
        migrate(conn, [available_migrations()[0], broken])

    assert _tables(fresh_database_url) == set()
