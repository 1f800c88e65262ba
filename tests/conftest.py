"""Fixtures shared by every test directory: real PostgreSQL and the running workload."""

from __future__ import annotations

import itertools
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.prometheus import PrometheusServer
from tools.postgres import PostgresServer

_database_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the whole run; tests get their own databases in it."""
    base = Path(tempfile.mkdtemp(prefix="mcm-postgres-"))
    server = PostgresServer(base)
    server.init()
    server.start()
    try:
        yield server
    finally:
        try:
            server.stop()
        finally:
            shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def fresh_database_url(postgres: PostgresServer) -> str:
    """URL of a new, empty database (no migrations applied)."""
    return postgres.create_database(f"test_{next(_database_numbers)}")


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    """A real Prometheus accepting remote write, for the tests of one module."""
    server = PrometheusServer(Path(tmp_path_factory.mktemp("prometheus"))).start()
    try:
        yield server
    finally:
        server.stop()
