"""One connection pool per process, and the mapping of database outages to HTTP 503.

No request waits for PostgreSQL without a bound (docs/workload-contract.md, Database
timeouts): a connection attempt, a pool checkout, each statement and the whole time a
request holds a connection each have a limit of a few seconds, defined here once. A server
that stops answering altogether (a stalled host, a frozen process) cannot enforce its own
`statement_timeout`, so a watchdog thread cuts a connection held past its deadline; the
request then fails with `DatabaseTimeout` (503) and the pool replaces the connection.

Once the database has not answered in time, the process stops asking it: until a background
check gets an answer again, every request fails at once instead of waiting out its own
deadline. So a stall holds each worker at most once, and liveness and `GET /`, which never
touch the database, do not queue behind requests that wait on it.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import psycopg
import psycopg_pool
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import DictRow, dict_row

logger = logging.getLogger(__name__)
T = TypeVar("T")

DbConnection = psycopg.Connection[DictRow]
"""What every query function takes: rows come back as dicts."""

CONNECT_TIMEOUT_SECONDS = 3
"""A connection attempt that has no answer by then fails (libpq `connect_timeout`, at least 2)."""
CHECKOUT_TIMEOUT_SECONDS = 2.0
"""Longest a request waits for the pool to hand it a connection."""
STATEMENT_TIMEOUT_SECONDS = 2
"""PostgreSQL cancels a statement of the apps that runs longer (`statement_timeout`)."""
DEADLINE_SECONDS = 2.5
"""Longest a request waits on the database per connection it borrows, checkout included;
then the connection is cut.

Above `STATEMENT_TIMEOUT_SECONDS`, so a server that still answers cancels first and keeps the
connection; only one that says nothing at all is cut. Below Pebble's 3 s check timeout, so a
liveness check that queued behind such a wait still answers in time.
"""
PING_DEADLINE_SECONDS = 2.0
"""The readiness check's deadline (checkout included), inside Pebble's 3 s check timeout."""
RECHECK_SECONDS = 0.5
"""While the database is not answering, how often the background check asks it again."""


class DatabaseUnavailable(Exception):
    """PostgreSQL cannot be reached or dropped the connection; the caller may retry later."""


class DatabaseTimeout(DatabaseUnavailable):
    """PostgreSQL did not answer in time; trying again at once would only wait as long."""


class _Silence(DatabaseTimeout):
    """No answer in time: the connection was cut, or the pool could not hand one out."""


class Database:
    """A psycopg 3 pool that replaces broken connections by itself (design D6).

    Outages surface as `DatabaseUnavailable` instead of hanging: a request waits at most
    `timeout` seconds for a connection and keeps one at most `DEADLINE_SECONDS`, and a
    connection that broke mid-transaction is discarded by the pool when it is returned.
    """

    def __init__(self, url: str, *, max_size: int = 4, timeout: float = CHECKOUT_TIMEOUT_SECONDS):
        self._pool = psycopg_pool.ConnectionPool(
            conninfo(url, statement_timeout=STATEMENT_TIMEOUT_SECONDS),
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
        self._timeout = timeout
        self._opened = False
        self._closed = False
        self._lock = threading.Lock()
        self._silent = False
        """Set when the database did not answer in time, until the background check clears it."""

    @contextmanager
    def connection(self, *, deadline: float = DEADLINE_SECONDS) -> Iterator[DbConnection]:
        """Borrow a connection in autocommit mode; use `conn.transaction()` for atomic work.

        At most `deadline` seconds pass from this call until the connection is given back:
        waiting for the pool counts, and a connection still held then is cut, so the work
        fails with `DatabaseTimeout`. While the database is not answering, this fails at once.
        """
        if self._silent:
            raise DatabaseTimeout("the database is not answering; checking it in the background")
        try:
            with self._borrow(deadline) as conn:
                yield conn
        except _Silence:
            self._went_silent()
            raise

    def _went_silent(self) -> None:
        with self._lock:
            if self._silent or self._closed:
                return
            self._silent = True
        logger.warning("the database is not answering: failing requests at once until it does")
        threading.Thread(target=self._recheck, name="db-recheck", daemon=True).start()

    def _recheck(self) -> None:
        """Ask the database every RECHECK_SECONDS until it answers; then let requests through."""
        while not self._closed:
            time.sleep(RECHECK_SECONDS)
            try:
                with self._borrow(PING_DEADLINE_SECONDS) as conn:
                    conn.execute("SELECT 1")
            except DatabaseUnavailable:
                continue
            with self._lock:
                self._silent = False
            logger.warning("the database answers again")
            return

    @contextmanager
    def _borrow(self, deadline: float) -> Iterator[DbConnection]:
        self._open()
        started = time.monotonic()
        lease: _Lease | None = None
        try:
            with self._pool.connection(timeout=min(self._timeout, deadline)) as conn:
                lease = _WATCHDOG.arm(conn, started + deadline)
                try:
                    yield conn
                finally:
                    if _WATCHDOG.disarm(lease):
                        conn.close()  # cut at the last moment: never hand it out again
        except psycopg_pool.PoolTimeout as error:
            logger.warning("database unavailable: %s", error)
            raise _Silence(str(error)) from error
        except psycopg.Error as error:
            if lease is not None and lease.cut:
                message = f"no answer from the database within {deadline:g} s"
                logger.warning("database unavailable: %s", message)
                raise _Silence(message) from error
            if isinstance(error, psycopg.errors.QueryCanceled):
                # The server answers, only this statement was too slow: no reason to stop asking.
                logger.warning("database too slow: %s", error)
                raise DatabaseTimeout(str(error)) from error
            if not isinstance(error, psycopg.OperationalError):
                raise
            logger.warning("database unavailable: %s", error)
            raise DatabaseUnavailable(str(error)) from error

    def run(self, work: Callable[[DbConnection], T], *, idempotent: bool = False) -> T:
        """Run `work` on a pooled connection.

        An idempotent piece of work is tried once more when its connection turns out to be
        stale (PostgreSQL restarted while it sat in the pool); anything else is not, because
        a failure during COMMIT leaves its outcome unknown. Nothing is tried again after a
        timeout: the database did not answer, and would make the caller wait twice as long.
        """
        try:
            with self.connection() as conn:
                return work(conn)
        except DatabaseTimeout:
            raise
        except DatabaseUnavailable:
            if not idempotent:
                raise
        with self.connection() as conn:
            return work(conn)

    def ping(self) -> None:
        """Raise DatabaseUnavailable unless a trivial query succeeds within the ping deadline."""
        with self.connection(deadline=PING_DEADLINE_SECONDS) as conn:
            conn.execute("SELECT 1")

    def close(self) -> None:
        """Close every connection; the pool may not be used afterwards."""
        self._closed = True
        if self._opened:
            self._pool.close()

    def _open(self) -> None:
        if not self._opened:
            # Opening does not wait for PostgreSQL, so a process starts even while it is down.
            self._pool.open(wait=False)
            self._opened = True


def conninfo(url: str, *, statement_timeout: float | None) -> str:
    """`url` with our connect timeout and statement timeout, unless the URL sets its own."""
    params = conninfo_to_dict(url)
    params.setdefault("connect_timeout", CONNECT_TIMEOUT_SECONDS)
    if statement_timeout is not None:
        # First, so that a `-c statement_timeout=…` in the URL's own options wins.
        ours = f"-c statement_timeout={round(statement_timeout * 1000)}"
        params["options"] = f"{ours} {params.get('options') or ''}".strip()
    return make_conninfo("", **params)


def connect(
    url: str, *, statement_timeout: float | None = STATEMENT_TIMEOUT_SECONDS
) -> DbConnection:
    """A single autocommit connection for one-shot work such as the CLI.

    `statement_timeout=None` for work that may rightly take long (migrations).
    """
    try:
        return DbConnection.connect(
            conninfo(url, statement_timeout=statement_timeout),
            autocommit=True,
            row_factory=dict_row,
        )
    except psycopg.OperationalError as error:
        raise DatabaseUnavailable(str(error)) from error


class _Lease:
    """One borrowed connection and the moment it must be given back."""

    __slots__ = ("conn", "cut", "deadline", "number")

    def __init__(self, conn: DbConnection, deadline: float, number: int):
        self.conn = conn
        self.deadline = deadline
        self.number = number
        self.cut = False


class _Watchdog:
    """One thread per process that cuts connections held past their deadline.

    Cutting means shutting the socket down: the query waiting on it fails at once with an
    OperationalError, and the pool discards the connection when it comes back. The thread
    starts with the first lease (after gunicorn forked the worker) and sleeps until the
    earliest deadline; leases given back early are dropped from the heap lazily.
    """

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._leases: dict[int, _Lease] = {}
        self._deadlines: list[tuple[float, int]] = []
        self._numbers = itertools.count()
        self._running = False

    def arm(self, conn: DbConnection, deadline: float) -> _Lease:
        """Watch `conn`; it is cut unless disarmed by `deadline` (a `time.monotonic()`)."""
        lease = _Lease(conn, deadline, next(self._numbers))
        with self._lock:
            if not self._running:
                threading.Thread(target=self._watch, name="db-deadlines", daemon=True).start()
                self._running = True
            self._leases[lease.number] = lease
            earliest = not self._deadlines or deadline < self._deadlines[0][0]
            heapq.heappush(self._deadlines, (deadline, lease.number))
            if earliest:
                self._changed.notify()
        return lease

    def disarm(self, lease: _Lease) -> bool:
        """Stop watching; True when the connection was cut (it must not be used again)."""
        with self._lock:
            self._leases.pop(lease.number, None)
            return lease.cut

    def _watch(self) -> None:
        with self._lock:
            while True:
                now = time.monotonic()
                while self._deadlines and (
                    self._deadlines[0][0] <= now or self._deadlines[0][1] not in self._leases
                ):
                    _, number = heapq.heappop(self._deadlines)
                    lease = self._leases.pop(number, None)
                    if lease is not None:
                        lease.cut = True
                        _shut_down(lease.conn)
                timeout = self._deadlines[0][0] - now if self._deadlines else None
                self._changed.wait(timeout)


def _shut_down(conn: DbConnection) -> None:
    """Make every read and write on `conn`'s socket fail, without closing its descriptor."""
    try:
        with socket.socket(fileno=os.dup(conn.fileno())) as sock:
            sock.shutdown(socket.SHUT_RDWR)
    except (OSError, psycopg.Error) as error:  # already closed: nothing left to cut
        logger.debug("could not cut a database connection: %s", error)
        return
    logger.warning("cut a database connection that got no answer before its deadline")


_WATCHDOG = _Watchdog()
# A forked child has none of the parent's threads, and maybe a lock one of them held.
os.register_at_fork(after_in_child=_WATCHDOG._reset)
