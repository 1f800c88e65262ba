"""A unit refreshed before the leader created the tunnel secret refuses to forward (D13).

The unit holding the tunnel would refuse an empty secret (and log that the units disagree on
it), so the management app answers 503 itself and sends nothing. The registration is real,
in a real PostgreSQL, as another unit's tunnel process leaves it.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from cluster_manager.db.migrate import migrate
from cluster_manager.db.pool import Database
from cluster_manager.db.tunnels import register
from cluster_manager.envelope import APIError
from cluster_manager.service import tunnel
from cluster_manager.settings import Settings

FINGERPRINT = "ab" * 32


@pytest.fixture
def held_elsewhere(fresh_database_url: str) -> Database:
    """A database whose one cluster's tunnel another unit holds."""
    database = Database(fresh_database_url, max_size=1)
    now = datetime.now(UTC)
    database.run(migrate)
    database.run(
        lambda conn: conn.execute(
            "INSERT INTO clusters (name, certificate, fingerprint, certificate_not_before,"
            " certificate_not_after) VALUES (%s, %s, %s, %s, %s)",
            ("mc-1", "PEM", FINGERPRINT, now - timedelta(days=1), now + timedelta(days=1)),
        )
    )
    assert database.run(lambda conn: register(conn, FINGERPRINT, "unit-1:9445", uuid.uuid4()))
    return database


def test_a_unit_without_the_tunnel_secret_answers_503_and_forwards_nothing(
    held_elsewhere: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_forwarding(fingerprint: str) -> None:
        raise AssertionError("a request was forwarded")

    monkeypatch.setattr(tunnel, "_holders", no_forwarding)
    settings = Settings(database_url="", connector_domain="cc.example.com", tunnel_secret="")

    with pytest.raises(APIError) as refused:
        tunnel.send_through_tunnel(held_elsewhere, settings, "mc-1", "GET", "/1.0/instances")

    assert (refused.value.status, refused.value.message) == (
        503,
        "this unit has no tunnel secret yet",
    )
