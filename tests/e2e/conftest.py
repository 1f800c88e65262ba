"""The deployment every e2e test looks at: rendered once, run once per module."""

from __future__ import annotations

import itertools
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.deployment import Deployment, ProvidedDatabase, traefik_binary
from tests.unit.builders import SigningCA, pod_host_names, private_keys_parsed_once
from tools.postgres import PostgresServer

_deployments = itertools.count(7)
"""Numbers the database and role of each module's deployment (one PostgreSQL per session)."""


@pytest.fixture(scope="session", autouse=True)
def _pods_resolve_their_own_host_names() -> Iterator[None]:
    with pod_host_names():
        yield


@pytest.fixture(scope="session", autouse=True)
def _private_keys_parsed_once() -> Iterator[None]:
    with private_keys_parsed_once():
        yield


@pytest.fixture(scope="module")
def ca() -> SigningCA:
    """The CA behind the `certificates` relation (what self-signed-certificates would be)."""
    return SigningCA()


@pytest.fixture(scope="module")
def deployment(postgres: PostgresServer, ca: SigningCA) -> Iterator[Deployment]:
    """Two units rendered by the charm and running for real behind real Traefik."""
    if shutil.which("haproxy") is None:
        pytest.fail("haproxy is not installed: run scripts/bootstrap test")
    if traefik_binary() is None:
        pytest.fail("traefik is not installed: run scripts/bootstrap test")
    root = Path(tempfile.mkdtemp(prefix="mcm-e2e-"))
    number = next(_deployments)
    database = ProvidedDatabase.create(
        postgres, f"cluster_manager_e2e_{number}", f"relation_id_{number}"
    )
    deployment = Deployment(root, database, ca)
    try:
        deployment.deploy()
        deployment.start()
        yield deployment
    finally:
        deployment.stop()
        shutil.rmtree(root, ignore_errors=True)
