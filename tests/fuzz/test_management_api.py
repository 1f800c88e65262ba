"""schemathesis on every operation of our OpenAPI document, with an API token, all checks.

Properties on top of schemathesis' own checks (status codes, content types, schemas as
documented; no server error): a refused request (4xx) changes nothing in the database.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
import schemathesis
from cluster_manager.protocol.tunnel import lxd_path_problem
from schemathesis import checks

from tests.fuzz.conftest import FuzzTally, budget, database_state
from tests.support.clusters import KNOWN_HEARTBEAT, enroll
from tools.postgres import PostgresServer
from tools.stack import Stack

OPENAPI = Path(__file__).parents[2] / "workload/cluster_manager/management/openapi.yaml"
CASES_PER_OPERATION = 40

schema = schemathesis.openapi.from_path(OPENAPI)


@pytest.fixture(scope="module")
def fuzzed(postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack with two enrolled clusters and a pending token, and no management rate limit."""
    url = postgres.create_database("fuzz_management")
    env = {"MCM_RATE_LIMIT_MANAGEMENT": "1000000/minute"}
    with Stack(Path(tmp_path_factory.mktemp("fuzz-api")), url, env=env) as running:
        for name in ("fuzz-a", "fuzz-b"):
            enroll(running, name, KNOWN_HEARTBEAT)
        running.mint_token("fuzz-pending")
        yield running


@pytest.fixture(scope="module")
def api(fuzzed: Stack) -> requests.Session:
    return fuzzed.management_session()


def _semantic_refusals(case: schemathesis.Case) -> list:
    """Checks a schema-valid request may fail for a rule no schema can state.

    A join token's `expiry` must lie in the future: a past one is a documented 400. An LXD
    path through a tunnel must not hold empty, `.` or `..` segments: a documented 400.
    """
    body = case.body if isinstance(case.body, dict) else {}
    expiry = body.get("expiry")
    if isinstance(expiry, str) and _in_the_past(expiry):
        return [checks.positive_data_acceptance]
    lxd_path = (case.path_parameters or {}).get("lxdPath")
    if isinstance(lxd_path, str) and lxd_path_problem("/" + lxd_path) is not None:
        return [checks.positive_data_acceptance]
    return []


def _in_the_past(moment: str) -> bool:
    try:
        parsed = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    except ValueError:
        return False
    return parsed.tzinfo is not None and parsed <= datetime.now(UTC)


@schema.parametrize()
@budget(CASES_PER_OPERATION)
def test_every_operation_holds_its_contract(
    case: schemathesis.Case, fuzzed: Stack, api: requests.Session, tally: FuzzTally
) -> None:
    tally.record(case.operation.label)
    before = database_state(fuzzed)

    response = case.call_and_validate(
        base_url=fuzzed.management_url,
        session=api,
        verify=fuzzed.management_ca,
        excluded_checks=_semantic_refusals(case),
    )

    if 400 <= response.status_code < 500:
        assert database_state(fuzzed) == before, f"{case.method} {case.path} changed data"
