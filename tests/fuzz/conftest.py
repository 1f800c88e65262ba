"""The bounded fuzz stage: schemathesis on the management API, hypothesis on the connector.

Both run against a real stack (HAProxy, both apps, PostgreSQL) with budgets small enough for
about two minutes on two cores. The stage prints what it did: operations, cases, failures.
"""

from __future__ import annotations

import dataclasses
import hashlib

import psycopg
import pytest
from hypothesis import HealthCheck, settings

from tools.stack import Stack

RELAXED_HEALTH_CHECKS = (
    HealthCheck.function_scoped_fixture,
    HealthCheck.too_slow,
    HealthCheck.data_too_large,
)
"""Each example is a real request to a real stack: slow by hypothesis' measure, and meant so."""


def budget(examples: int) -> settings:
    """The stage's hypothesis settings: `examples` cases, the same ones on every run."""
    return settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=RELAXED_HEALTH_CHECKS,
        derandomize=True,
    )


WATCHED_TABLES = ("clusters", "cluster_details", "heartbeat_history", "join_tokens")
"""What a refused request must leave as it was (sessions and API-token use are bookkeeping)."""


@dataclasses.dataclass
class FuzzTally:
    """What the fuzz stage sent, kept across its tests for the closing summary."""

    operations: set[str] = dataclasses.field(default_factory=set)
    cases: int = 0
    failures: int = 0

    def record(self, operation: str) -> None:
        self.operations.add(operation)
        self.cases += 1


TALLY = FuzzTally()


@pytest.fixture(scope="session")
def tally() -> FuzzTally:
    return TALLY


def database_state(stack: Stack) -> str:
    """A digest of every watched table's rows, to prove a refused request changed nothing."""
    digest = hashlib.sha256()
    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        for table in WATCHED_TABLES:
            query = f"SELECT t::text FROM {table} AS t ORDER BY 1"  # noqa: S608 (our names)
            rows = conn.execute(query.encode()).fetchall()
            digest.update(repr((table, rows)).encode())
    return digest.hexdigest()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed and "tests/fuzz" in str(item.path):
        TALLY.failures += 1


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if TALLY.cases:
        terminalreporter.write_line(
            f"fuzz: {len(TALLY.operations)} operations, {TALLY.cases} cases,"
            f" {TALLY.failures} failing tests"
        )
