"""PostgreSQL stalls (every process stopped with SIGSTOP): nothing waits for it unbounded.

A stalled server is worse than a stopped one: connections stay open and new ones are accepted
by the kernel, but nothing ever answers. Liveness and MicroCloud's `GET /` probe must keep
answering while readiness checks and heartbeats keep arriving (they must not queue behind
requests stuck on the database), and requests that need it must get a 503 within seconds,
not when the database comes back. Every freeze here is bounded and always resumed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests

from tests.support import raw_tls
from tests.support.recovery import wait_until_settled
from tools.microcloud import MicroCloudClient
from tools.postgres import PostgresServer
from tools.stack import CONNECTOR_DOMAIN, Stack

BEAT = {"cpu_load_1": "0.5", "member_statuses": [{"status": "Online", "count": 1}]}
FREEZE_LIMIT = 9.0
"""The longest any test keeps PostgreSQL frozen, whatever the apps do meanwhile."""
STUCK_AFTER = 1.5
"""Time the background load gets to run into the freeze before a measurement starts."""
PROBES = 6
"""Liveness checks during one freeze, a second apart (Pebble: every 10 s, 3 s timeout)."""
AT_ONCE = 2.0
"""Generous bound for an answer that needs no database (instant when nothing queues)."""
WITHIN_SECONDS = 5.0
"""Generous bound for a 503 from a request that needs the database."""
CLIENT_TIMEOUT = 20.0
UNLIMITED = {"MCM_RATE_LIMIT_CONNECTOR": "1000/second", "MCM_RATE_LIMIT_MANAGEMENT": "1000/second"}
"""The background load must reach the apps, not the front's rate limits."""


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server these tests may freeze."""
    server = PostgresServer(Path(tempfile.mkdtemp(prefix="mcm-stall-")), durable=True)
    server.init()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def stall_stack(
    own_postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    url = own_postgres.create_database("stall")
    with Stack(Path(tmp_path_factory.mktemp("stall")), url, env=UNLIMITED) as running:
        yield running


@pytest.fixture(scope="module")
def clusters(stall_stack: Stack) -> dict[str, MicroCloudClient]:
    """Enrolled clusters: `steady` for measurements, the others for background load."""
    enrolled = {}
    for name in ("steady", "busy-1", "busy-2", "busy-3"):
        client = MicroCloudClient(
            stall_stack.mint_token(f"stall-{name}"),
            resolve=stall_stack.resolve,
            timeout=CLIENT_TIMEOUT,
        )
        assert client.join().ok
        enrolled[name] = client
    return enrolled


@pytest.fixture(autouse=True)
def settled(stall_stack: Stack, clusters: dict[str, MicroCloudClient]) -> None:
    """Every test starts with the database answering and every app ready again."""
    wait_until_settled(stall_stack, also=lambda: clusters["steady"].heartbeat(BEAT).ok)


_APPS = ("connector", "management")


@dataclasses.dataclass
class Timed:
    """One call's result (or the exception it raised) and how long it took."""

    seconds: float
    result: Any = None
    error: BaseException | None = None


def _timed(call: Callable[[], Any]) -> Timed:
    started = time.monotonic()
    try:
        result = call()
    except Exception as error:  # reported by the assertion that reads it
        return Timed(time.monotonic() - started, error=error)
    return Timed(time.monotonic() - started, result=result)


@contextlib.contextmanager
def _background(calls: Sequence[Callable[[], Any]]) -> Iterator[None]:
    """Each call repeated in a thread of its own until the block ends (like Pebble, clusters)."""
    stop = threading.Event()

    def repeat(call: Callable[[], Any]) -> None:
        while not stop.is_set():
            _timed(call)
            time.sleep(0.05)

    threads = [threading.Thread(target=repeat, args=(call,), daemon=True) for call in calls]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=CLIENT_TIMEOUT + 5)


def _measure_while_frozen(
    server: PostgresServer, call: Callable[[], Any], *, load: Sequence[Callable[[], Any]] = ()
) -> Timed:
    """Freeze PostgreSQL (with `load` running into it), then time `call`.

    The freeze ends when `call` returns or after FREEZE_LIMIT seconds, whichever is first; a
    call still waiting then is timed to its end.
    """
    outcome: list[Timed] = []
    measured = threading.Thread(target=lambda: outcome.append(_timed(call)), daemon=True)
    with _background(load):
        frozen_at = time.monotonic()
        with server.frozen():
            if load:
                time.sleep(STUCK_AFTER)
            measured.start()
            measured.join(timeout=FREEZE_LIMIT - (time.monotonic() - frozen_at))
        measured.join(timeout=CLIENT_TIMEOUT + 5)
    assert outcome, "the measured call never returned"
    return outcome[0]


def _health(stack: Stack, path: str) -> requests.Response:
    return requests.get(f"http://127.0.0.1:{stack.health_port}/{path}", timeout=CLIENT_TIMEOUT)


def _connector_root(stack: Stack) -> raw_tls.RawResponse:
    context = raw_tls.tls_context(stack.connector_identity.cert_pem)
    return raw_tls.request(stack.connector_port, CONNECTOR_DOMAIN, context, "GET", "/")


def _connector_load(stack: Stack, clusters: dict[str, MicroCloudClient]) -> list[Callable]:
    """What keeps every connector worker busy on the database: readiness and heartbeats."""
    return [
        lambda: _health(stack, "ready/connector"),
        *(lambda c=clusters[name]: c.heartbeat(BEAT) for name in ("busy-1", "busy-2", "busy-3")),
    ]


def _management_load(stack: Stack) -> list[Callable]:
    """Pebble's readiness check, a Prometheus scrape and operators' API calls."""
    session = stack.management_session()
    return [
        lambda: _health(stack, "ready/management"),
        lambda: requests.get(stack.metrics_url, timeout=CLIENT_TIMEOUT),
        *(
            lambda: session.get(f"{stack.management_url}/1.0/clusters", timeout=CLIENT_TIMEOUT)
            for _ in range(2)
        ),
    ]


def _stored_memory_usage(stack: Stack, cluster: str) -> int | None:
    with psycopg.connect(stack.database_url, connect_timeout=5) as conn:
        row = conn.execute(
            "SELECT memory_usage FROM cluster_details JOIN clusters ON id = cluster_id"
            " WHERE name = %s",
            (cluster,),
        ).fetchone()
    return None if row is None else row[0]


def _probe_repeatedly(call: Callable[[], Any]) -> list[Timed]:
    """`call` PROBES times, a second apart: how each answered and how long it took."""
    answers = []
    for _ in range(PROBES):
        answers.append(_timed(call))
        time.sleep(max(0.0, 1.0 - answers[-1].seconds))
    return answers


def _statuses(answers: list[Timed]) -> list[Any]:
    return [
        answer.error
        or getattr(answer.result, "status", getattr(answer.result, "status_code", None))
        for answer in answers
    ]


def test_connector_liveness_answers_at_once_throughout_a_stall_under_load(
    own_postgres: PostgresServer, stall_stack: Stack, clusters: dict[str, MicroCloudClient]
) -> None:
    timed = _measure_while_frozen(
        own_postgres,
        lambda: _probe_repeatedly(lambda: _health(stall_stack, "health/connector")),
        load=_connector_load(stall_stack, clusters),
    )

    assert _statuses(timed.result) == [200] * PROBES
    assert max(answer.seconds for answer in timed.result) < AT_ONCE


def test_management_liveness_answers_at_once_throughout_a_stall_under_load(
    own_postgres: PostgresServer, stall_stack: Stack
) -> None:
    timed = _measure_while_frozen(
        own_postgres,
        lambda: _probe_repeatedly(lambda: _health(stall_stack, "health/management")),
        load=_management_load(stall_stack),
    )

    assert _statuses(timed.result) == [200] * PROBES
    assert max(answer.seconds for answer in timed.result) < AT_ONCE


def test_connector_root_answers_at_once_throughout_a_stall_under_load(
    own_postgres: PostgresServer, stall_stack: Stack, clusters: dict[str, MicroCloudClient]
) -> None:
    timed = _measure_while_frozen(
        own_postgres,
        lambda: _probe_repeatedly(lambda: _connector_root(stall_stack)),
        load=_connector_load(stall_stack, clusters),
    )

    assert _statuses(timed.result) == [200] * PROBES
    assert max(answer.seconds for answer in timed.result) < AT_ONCE


@pytest.mark.parametrize("app", _APPS)
def test_readiness_is_503_within_seconds_while_the_database_is_frozen(
    own_postgres: PostgresServer, stall_stack: Stack, app: str
) -> None:
    timed = _measure_while_frozen(own_postgres, lambda: _health(stall_stack, f"ready/{app}"))

    assert timed.error is None
    assert timed.result.status_code == 503
    assert timed.result.json()["error_code"] == 503
    assert int(timed.result.headers["Retry-After"]) > 0
    assert timed.seconds < WITHIN_SECONDS


def test_heartbeat_is_503_within_seconds_while_the_database_is_frozen(
    own_postgres: PostgresServer, clusters: dict[str, MicroCloudClient]
) -> None:
    steady = clusters["steady"]

    timed = _measure_while_frozen(own_postgres, lambda: steady.heartbeat(BEAT))

    assert timed.error is None
    assert timed.result.status == 503
    assert timed.result.json["error_code"] == 503
    assert int(timed.result.headers["retry-after"]) > 0
    assert timed.seconds < WITHIN_SECONDS


def test_after_a_stall_heartbeats_succeed_and_the_acknowledged_one_is_kept(
    own_postgres: PostgresServer, stall_stack: Stack, clusters: dict[str, MicroCloudClient]
) -> None:
    steady = clusters["steady"]
    assert _first_success(lambda: steady.heartbeat({**BEAT, "memory_usage": 1})).status == 200

    _measure_while_frozen(
        own_postgres,
        lambda: time.sleep(FREEZE_LIMIT - 1),
        load=_connector_load(stall_stack, clusters),
    )
    kept = _stored_memory_usage(stall_stack, "stall-steady")
    after = _first_success(lambda: steady.heartbeat({**BEAT, "memory_usage": 2}))

    assert kept == 1
    assert after.status == 200
    assert _stored_memory_usage(stall_stack, "stall-steady") == 2


def _first_success(call: Callable[[], Any], timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        response = call()
        if response.status == 200 or time.monotonic() > deadline:
            return response
        time.sleep(0.2)
