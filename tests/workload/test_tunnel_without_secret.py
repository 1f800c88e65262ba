"""A unit refreshed before the leader created the tunnel secret refuses to forward (D13).

The unit holding the tunnel would refuse an empty secret (and log that the units disagree on
it), so the management app answers 503 itself and sends nothing.
"""

from __future__ import annotations

from typing import Any, cast

import pytest
from cluster_manager.db.pool import Database
from cluster_manager.db.tunnels import TunnelRoute
from cluster_manager.envelope import APIError
from cluster_manager.service import tunnel
from cluster_manager.settings import Settings


class HeldElsewhere:
    """A database whose one cluster's tunnel is held by another unit."""

    def run(self, work: Any, *, idempotent: bool = False) -> TunnelRoute:
        return TunnelRoute(cluster_id=1, holder="unit-1.example:9445", connected_at=None)


def test_a_unit_without_the_tunnel_secret_answers_503_and_forwards_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_forwarding(fingerprint: str) -> None:
        raise AssertionError("a request was forwarded")

    monkeypatch.setattr(tunnel, "_holders", no_forwarding)
    settings = Settings(database_url="", connector_domain="cc.example.com", tunnel_secret="")

    with pytest.raises(APIError) as refused:
        tunnel.send_through_tunnel(
            cast(Database, HeldElsewhere()), settings, "mc-1", "GET", "/1.0/instances"
        )

    assert (refused.value.status, refused.value.message) == (
        503,
        "this unit has no tunnel secret yet",
    )
