"""PostgreSQL going away: the apps answer 503, then recover by themselves (design D6)."""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import psycopg
import pytest

from tests.support.recovery import wait_until_settled
from tools.microcloud import MicroCloudClient
from tools.postgres import PostgresServer
from tools.stack import Stack

BEAT = {"cpu_load_1": "0.5", "member_statuses": [{"status": "Online", "count": 1}]}


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server these tests may stop and start."""
    server = PostgresServer(Path(tempfile.mkdtemp(prefix="mcm-outage-")), durable=True)
    server.init()
    server.start()
    yield server
    with contextlib.suppress(RuntimeError):  # a test may have left it stopped
        server.stop()


# With a login configured, a page asks the database who is calling (no provider is reached).
UI_LOGIN = {"MCM_OIDC_ISSUER": "https://idp.invalid", "MCM_OIDC_CLIENT_ID": "cluster-manager"}


@pytest.fixture(scope="module")
def outage_apps(
    own_postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    url = own_postgres.create_database("outage")
    with Stack(tmp_path_factory.mktemp("outage"), url, env=UI_LOGIN) as running:
        yield running


@pytest.fixture
def outage_stack(own_postgres: PostgresServer, outage_apps: Stack) -> Stack:
    """The module's stack, its database running and every app ready again after the last test.

    The tests' clusters have names of their own.
    """
    if not _accepts_connections(own_postgres):  # a failed test may have left it stopped
        own_postgres.start()
    wait_until_settled(outage_apps)
    return outage_apps


def _accepts_connections(server: PostgresServer) -> bool:
    try:
        psycopg.connect(server.admin_url, connect_timeout=5).close()
    except psycopg.OperationalError:
        return False
    return True


def _stored_memory_usage(stack: Stack, names: Iterable[str]) -> dict[str, int]:
    with psycopg.connect(stack.database_url) as conn:
        rows = conn.execute(
            "SELECT name, memory_usage FROM cluster_details JOIN clusters ON id = cluster_id"
            " WHERE name = ANY(%s)",
            (list(names),),
        ).fetchall()
    return dict(rows)


def test_heartbeats_get_503_while_postgres_is_down_and_succeed_after_restart(
    own_postgres: PostgresServer, outage_stack: Stack
) -> None:
    client = MicroCloudClient(outage_stack.mint_token("outage-1"), resolve=outage_stack.resolve)
    assert client.join().ok
    assert client.heartbeat(BEAT).ok

    own_postgres.stop()
    during = [client.heartbeat(BEAT) for _ in range(3)]
    own_postgres.start()
    after = _first_success(client, deadline=time.monotonic() + 20)

    assert [r.status for r in during] == [503, 503, 503]
    assert all(int(r.headers["retry-after"]) > 0 for r in during)
    assert after.status == 200


def test_every_acknowledged_heartbeat_survives_a_postgres_crash(
    own_postgres: PostgresServer, outage_stack: Stack
) -> None:
    clients = {}
    for name in ("crash-a", "crash-b", "crash-c"):
        clients[name] = MicroCloudClient(
            outage_stack.mint_token(name), resolve=outage_stack.resolve
        )
        assert clients[name].join().ok
    acknowledged: dict[str, int] = {}
    for sequence in range(1, 6):
        for name, client in clients.items():
            if client.heartbeat({**BEAT, "memory_usage": sequence}).ok:
                acknowledged[name] = sequence

    own_postgres.stop()
    own_postgres.start()

    assert acknowledged == dict.fromkeys(clients, 5)
    assert _stored_memory_usage(outage_stack, clients) == acknowledged


def test_join_during_outage_is_503_and_the_token_still_works_afterwards(
    own_postgres: PostgresServer, outage_stack: Stack
) -> None:
    token = outage_stack.mint_token("outage-join")
    client = MicroCloudClient(token, resolve=outage_stack.resolve)

    own_postgres.stop()
    during = client.join()
    own_postgres.start()
    after = _first_success(client, deadline=time.monotonic() + 20, join=True)

    assert during.status == 503
    assert after.status == 200


def test_a_page_during_the_outage_is_an_html_503_and_the_api_keeps_its_envelope(
    own_postgres: PostgresServer, outage_stack: Stack
) -> None:
    session = outage_stack.management_session()  # an API token: the pages take it too
    assert session.get(f"{outage_stack.management_url}/ui/", timeout=10).status_code == 200

    own_postgres.stop()
    page = session.get(f"{outage_stack.management_url}/ui/clusters", timeout=10)
    api = session.get(f"{outage_stack.management_url}/1.0/remote-cluster", timeout=10)
    own_postgres.start()

    assert page.status_code == 503
    assert page.headers["Content-Type"].startswith("text/html")
    assert int(page.headers["Retry-After"]) > 0
    assert 'class="p-navigation is-dark"' in page.text
    assert "database is unavailable" in page.text
    assert "Retry shortly" in page.text
    assert "Traceback" not in page.text
    assert page.headers["Cache-Control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert api.status_code == 503
    assert api.headers["Content-Type"] == "application/json"
    assert api.json()["error_code"] == 503
    assert int(api.headers["Retry-After"]) > 0


def _first_success(client: MicroCloudClient, deadline: float, join: bool = False):
    while True:
        response = client.join() if join else client.heartbeat(BEAT)
        if response.status == 200 or time.monotonic() > deadline:
            return response
        time.sleep(0.2)
