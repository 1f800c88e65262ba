"""The heartbeat history the cluster pages chart: kept for the configured retention only."""

from __future__ import annotations

from ..db.heartbeats import prune_history as _prune
from ..db.pool import DbConnection
from ..settings import Settings


def prune_history(conn: DbConnection, settings: Settings) -> int:
    """Drop history older than `MCM_HISTORY_RETENTION_DAYS`; the number of rows removed."""
    return _prune(conn, settings.history_retention_days)
