"""One connection pool per process, and the mapping of database outages to HTTP 503."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import psycopg
import psycopg_pool
from psycopg.rows import DictRow, dict_row

logger = logging.getLogger(__name__)
T = TypeVar("T")

DbConnection = psycopg.Connection[DictRow]
"""What every query function takes: rows come back as dicts."""


class DatabaseUnavailable(Exception):
    """PostgreSQL cannot be reached or dropped the connection; the caller may retry later."""


class Database:
    """A psycopg 3 pool that replaces broken connections by itself (design D6).

    Outages surface as `DatabaseUnavailable` instead of hanging: a request waits at most
    `timeout` seconds for a connection, and a connection that broke mid-transaction is
    discarded by the pool when it is returned.
    """

    def __init__(self, url: str, *, max_size: int = 4, timeout: float = 2.0):
        self._pool = psycopg_pool.ConnectionPool(
            url,
            min_size=1,
            max_size=max_size,
            timeout=timeout,
            # Give up a failed connection attempt at once; the next request starts a new one,
            # so service resumes as soon as PostgreSQL is back instead of after a backoff.
            reconnect_timeout=0,
            open=False,
            kwargs={"autocommit": True, "row_factory": dict_row},
            name="cluster-manager",
        )
        self._opened = False

    @contextmanager
    def connection(self) -> Iterator[DbConnection]:
        """Borrow a connection in autocommit mode; use `conn.transaction()` for atomic work."""
        self._open()
        try:
            with self._pool.connection() as conn:
                yield conn
        except (psycopg.OperationalError, psycopg_pool.PoolTimeout) as error:
            logger.warning("database unavailable: %s", error)
            raise DatabaseUnavailable(str(error)) from error

    def run(self, work: Callable[[DbConnection], T], *, idempotent: bool = False) -> T:
        """Run `work` on a pooled connection.

        An idempotent piece of work is tried once more when its connection turns out to be
        stale (PostgreSQL restarted while it sat in the pool); anything else is not, because
        a failure during COMMIT leaves its outcome unknown.
        """
        try:
            with self.connection() as conn:
                return work(conn)
        except DatabaseUnavailable:
            if not idempotent:
                raise
        with self.connection() as conn:
            return work(conn)

    def ping(self) -> None:
        """Raise DatabaseUnavailable unless a trivial query succeeds."""
        with self.connection() as conn:
            conn.execute("SELECT 1")

    def close(self) -> None:
        """Close every connection; the pool may not be used afterwards."""
        if self._opened:
            self._pool.close()

    def _open(self) -> None:
        if not self._opened:
            # Opening does not wait for PostgreSQL, so a process starts even while it is down.
            self._pool.open(wait=False)
            self._opened = True


def connect(url: str) -> DbConnection:
    """A single autocommit connection for one-shot work such as the CLI."""
    try:
        return DbConnection.connect(url, autocommit=True, row_factory=dict_row, connect_timeout=10)
    except psycopg.OperationalError as error:
        raise DatabaseUnavailable(str(error)) from error
