"""Rate limiting per client address, and offline detection, on a stack with tight settings."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.clusters import KNOWN_HEARTBEAT, enroll
from tests.support.openapi import ValidatedSession
from tools.postgres import PostgresServer
from tools.stack import Stack

HEARTBEAT_INTERVAL = 1
ALLOWED_PER_MINUTE = 5


@pytest.fixture(scope="module")
def stack(postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One worker (so one limiter counts every request) and one-second heartbeats."""
    env = {
        "MCM_RATE_LIMIT_MANAGEMENT": f"{ALLOWED_PER_MINUTE}/minute",
        "MCM_HEARTBEAT_INTERVAL": str(HEARTBEAT_INTERVAL),
        "MCM_WORKERS": "1",
    }
    url = postgres.create_database("management_limits")
    running = Stack(Path(tmp_path_factory.mktemp("limits")), url, env=env).start()
    try:
        yield running
    finally:
        running.stop()


def test_cluster_turns_offline_after_three_missed_heartbeats(stack: Stack) -> None:
    enroll(stack, "goes-quiet", KNOWN_HEARTBEAT)

    time.sleep(3 * HEARTBEAT_INTERVAL + 1)

    # Read through the CLI: the API's budget belongs to the rate limit test.
    listing = stack.cli("list-clusters").stdout
    assert "goes-quiet" in listing
    assert "offline" in listing.splitlines()[1]


def test_requests_over_the_limit_get_429_with_retry_after(
    anonymous_api: ValidatedSession, stack: Stack
) -> None:
    statuses = [
        anonymous_api.get(f"{stack.management_url}/1.0/status").status_code
        for _ in range(ALLOWED_PER_MINUTE)
    ]

    refused = anonymous_api.get(f"{stack.management_url}/1.0/status")

    assert statuses == [200] * ALLOWED_PER_MINUTE
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.json()["error_code"] == 429
