"""The pool's bounds: statement timeout, deadline and connect timeout (cluster_manager.db.pool)."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cluster_manager.db import pool
from cluster_manager.db.pool import Database, DatabaseTimeout
from psycopg.conninfo import conninfo_to_dict

from tools.postgres import PostgresServer

SLACK = 1.5
"""What a loaded 2-core machine may add to a bound."""


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server these tests may freeze."""
    server = PostgresServer(Path(tempfile.mkdtemp(prefix="mcm-timeouts-")))
    server.init()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def database(own_postgres: PostgresServer) -> Iterator[Database]:
    db = Database(own_postgres.admin_url)
    db.ping()
    yield db
    db.close()


def test_the_url_gets_the_connect_and_statement_timeouts() -> None:
    params = conninfo_to_dict(pool.conninfo("postgresql://u:pw@db:5432/mcm", statement_timeout=3))

    assert params["connect_timeout"] == str(pool.CONNECT_TIMEOUT_SECONDS)
    assert params["options"] == "-c statement_timeout=3000"
    assert params["password"] == "pw"


def test_timeouts_set_in_the_url_win() -> None:
    url = "postgresql://db/mcm?connect_timeout=9&options=-c%20statement_timeout%3D60000"

    params = conninfo_to_dict(pool.conninfo(url, statement_timeout=3))

    assert params["connect_timeout"] == "9"
    # PostgreSQL applies `-c` options in order, so the URL's own comes last and wins.
    assert params["options"] == "-c statement_timeout=3000 -c statement_timeout=60000"


def test_pooled_connections_have_the_statement_timeout(database: Database) -> None:
    row = database.run(lambda conn: conn.execute("SHOW statement_timeout").fetchone())

    assert row == {"statement_timeout": f"{pool.STATEMENT_TIMEOUT_SECONDS}s"}


def test_a_statement_past_the_timeout_is_cancelled_and_the_pool_goes_on(
    database: Database,
) -> None:
    started = time.monotonic()
    with pytest.raises(DatabaseTimeout):
        database.run(lambda conn: conn.execute("SELECT pg_sleep(30)"), idempotent=True)
    took = time.monotonic() - started

    assert took < pool.STATEMENT_TIMEOUT_SECONDS + SLACK
    database.ping()


def test_work_on_a_frozen_database_fails_by_the_deadline_and_is_not_tried_again(
    own_postgres: PostgresServer, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    borrowed = []
    borrow = database.connection

    def counted(**kwargs):
        borrowed.append(kwargs)
        return borrow(**kwargs)

    monkeypatch.setattr(database, "connection", counted)
    with own_postgres.frozen():
        started = time.monotonic()
        with pytest.raises(DatabaseTimeout):
            database.run(lambda conn: conn.execute("SELECT 1"), idempotent=True)
        took = time.monotonic() - started

    assert took < pool.DEADLINE_SECONDS + SLACK
    assert len(borrowed) == 1


def test_a_ping_on_a_frozen_database_fails_by_the_ping_deadline(
    own_postgres: PostgresServer, database: Database
) -> None:
    with own_postgres.frozen():
        started = time.monotonic()
        with pytest.raises(DatabaseTimeout):
            database.ping()
        took = time.monotonic() - started

    assert took < pool.PING_DEADLINE_SECONDS + SLACK


def test_once_the_database_did_not_answer_requests_fail_at_once(
    own_postgres: PostgresServer, database: Database
) -> None:
    with own_postgres.frozen():
        with pytest.raises(DatabaseTimeout):
            database.ping()
        started = time.monotonic()
        with pytest.raises(DatabaseTimeout, match="not answering"):
            database.run(lambda conn: conn.execute("SELECT 1"), idempotent=True)
        took = time.monotonic() - started

    assert took < 0.5


def test_a_connection_attempt_to_a_frozen_database_gives_up(
    own_postgres: PostgresServer,
) -> None:
    with own_postgres.frozen():
        started = time.monotonic()
        with pytest.raises(pool.DatabaseUnavailable):
            pool.connect(own_postgres.admin_url).close()
        took = time.monotonic() - started

    assert took < pool.CONNECT_TIMEOUT_SECONDS + SLACK


def test_the_pool_serves_again_soon_after_the_database_thaws(
    own_postgres: PostgresServer, database: Database
) -> None:
    with own_postgres.frozen(), pytest.raises(DatabaseTimeout):
        database.ping()

    deadline = time.monotonic() + pool.PING_DEADLINE_SECONDS + pool.RECHECK_SECONDS + 3
    while True:
        try:
            database.ping()
            return
        except pool.DatabaseUnavailable:
            assert time.monotonic() < deadline, "the pool did not recover"
            time.sleep(0.1)
