"""Rate limiting per client address, on a stack with a tight limit."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.openapi import ValidatedSession
from tools.postgres import PostgresServer
from tools.stack import Stack

ALLOWED_PER_MINUTE = 5


@pytest.fixture(scope="module")
def stack(postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One worker, so one limiter counts every request."""
    env = {
        "MCM_RATE_LIMIT_MANAGEMENT": f"{ALLOWED_PER_MINUTE}/minute",
        "MCM_WORKERS": "1",
    }
    url = postgres.create_database("management_limits")
    with Stack(Path(tmp_path_factory.mktemp("limits")), url, env=env) as running:
        yield running


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
