"""Enrolling with a join token in the database: each refusal is named, and writes nothing.

`db.enrollment` names why a join is refused; the connector alone decides the HTTP answer.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from cluster_manager.connector.routes import _JOIN_REFUSALS
from cluster_manager.db.enrollment import EnrollmentRefusal, NewCluster, enroll
from cluster_manager.db.migrate import migrate
from cluster_manager.db.pool import connect
from cluster_manager.join_token import token_hash

from tools.postgres import PostgresServer

_fingerprints = itertools.count()


@pytest.fixture(scope="module")
def database_url(postgres: PostgresServer) -> str:
    url = postgres.create_database("enrollment")
    with connect(url, statement_timeout=None) as conn:
        migrate(conn)
    return url


def _cluster(name: str) -> NewCluster:
    now = datetime.now(UTC)
    return NewCluster(
        name=name,
        certificate_pem=f"PEM of {name}",
        fingerprint=f"{next(_fingerprints):064x}",
        not_before=now - timedelta(days=1),
        not_after=now + timedelta(days=1),
    )


def _token(name: str) -> str:
    return f"join token for {name}"


def _mint(url: str, name: str, expires_in: timedelta = timedelta(hours=1)) -> None:
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO join_tokens (cluster_name, token_hash, description, expires_at)"
            " VALUES (%s, %s, '', now() + %s)",
            (name, token_hash(_token(name)), expires_in),
        )


def _enroll(url: str, cluster: NewCluster, token: str | None = None) -> EnrollmentRefusal | None:
    with connect(url) as conn:
        return enroll(conn, cluster, token_hash(token or _token(cluster.name)))


def _state(url: str) -> tuple[list, list]:
    with psycopg.connect(url) as conn:
        clusters = conn.execute("SELECT name, fingerprint FROM clusters ORDER BY name").fetchall()
        tokens = conn.execute("SELECT cluster_name FROM join_tokens ORDER BY 1").fetchall()
    return clusters, tokens


def test_a_join_with_its_token_creates_the_cluster_and_consumes_the_token(
    database_url: str,
) -> None:
    _mint(database_url, "enroll-ok")

    assert _enroll(database_url, _cluster("enroll-ok")) is None

    clusters, tokens = _state(database_url)
    assert "enroll-ok" in [name for name, _ in clusters]
    assert ("enroll-ok",) not in tokens


def test_a_join_without_a_token_is_refused_as_no_token(database_url: str) -> None:
    before = _state(database_url)

    assert _enroll(database_url, _cluster("enroll-none")) is EnrollmentRefusal.NO_TOKEN
    assert _state(database_url) == before


def test_a_join_with_another_token_is_refused_as_wrong_token(database_url: str) -> None:
    _mint(database_url, "enroll-wrong")
    before = _state(database_url)

    refusal = _enroll(database_url, _cluster("enroll-wrong"), token="another")

    assert refusal is EnrollmentRefusal.WRONG_TOKEN
    assert _state(database_url) == before


def test_a_join_with_an_expired_token_is_refused_as_expired(database_url: str) -> None:
    _mint(database_url, "enroll-expired", expires_in=timedelta(hours=-1))
    before = _state(database_url)

    refusal = _enroll(database_url, _cluster("enroll-expired"))

    assert refusal is EnrollmentRefusal.TOKEN_EXPIRED
    assert _state(database_url) == before


def test_a_join_with_an_enrolled_certificate_is_refused_and_keeps_the_token(
    database_url: str,
) -> None:
    _mint(database_url, "enroll-cert-first")
    first = _cluster("enroll-cert-first")
    assert _enroll(database_url, first) is None
    _mint(database_url, "enroll-cert-second")
    before = _state(database_url)
    second = NewCluster(
        **{**vars(_cluster("enroll-cert-second")), "fingerprint": first.fingerprint}
    )

    assert _enroll(database_url, second) is EnrollmentRefusal.CERTIFICATE_ENROLLED
    assert _state(database_url) == before


def test_a_join_under_an_enrolled_name_is_refused_and_keeps_the_token(database_url: str) -> None:
    _mint(database_url, "enroll-name")
    assert _enroll(database_url, _cluster("enroll-name")) is None
    _mint(database_url, "enroll-name")  # only a race could leave one: the CLI refuses it
    before = _state(database_url)

    assert _enroll(database_url, _cluster("enroll-name")) is EnrollmentRefusal.CLUSTER_ENROLLED
    assert _state(database_url) == before


def test_the_connector_answers_every_refusal_with_an_error_status() -> None:
    assert set(_JOIN_REFUSALS) == set(EnrollmentRefusal)
    assert all(400 <= status < 500 and message for status, message in _JOIN_REFUSALS.values())
