"""Fixtures for the workload tests: a migrated database and the running stack."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.openapi import ValidatedSession, validated_session
from tools.postgres import PostgresServer
from tools.stack import Stack

_stack_numbers = itertools.count(1)


@pytest.fixture(scope="module")
def stack(postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Nginx + both apps on a database of their own, shared by the tests of one module.

    Tests sharing it use names of their own, so they never see each other's clusters.
    """
    number = next(_stack_numbers)
    url = postgres.create_database(f"stack_{number}")
    with Stack(Path(tmp_path_factory.mktemp(f"stack{number}")), url) as running:
        yield running


@pytest.fixture(scope="module")
def management_api(stack: Stack) -> ValidatedSession:
    """An admin API-token session whose every response is checked against both documents."""
    return validated_session(stack.management_session())


@pytest.fixture(scope="module")
def anonymous_api(stack: Stack) -> ValidatedSession:
    """A session without credentials, validated like `management_api`."""
    anonymous = stack.management_session(token="unused")
    del anonymous.headers["Authorization"]
    return validated_session(anonymous)
