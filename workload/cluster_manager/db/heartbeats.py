"""Storing heartbeats and leaving: authentication and write in one statement (design D4).

The caller is looked up by certificate fingerprint inside the statement that stores its
heartbeat, so a cluster enrolled through any unit is known at once, a removed one is refused
at once, and no process keeps a cache that could disagree with the database.
"""

from __future__ import annotations

import time

from pydantic_core import to_json

from ..protocol.connector import Heartbeat
from .clusters import REPORTED_COLUMNS
from .pool import DbConnection

HISTORY_BUCKET = "10 minutes"
PRUNE_BATCH_ROWS = 10_000
"""History rows one pruning statement deletes at most, far inside the statement timeout."""
PRUNE_BUDGET_SECONDS = 1.5
"""Pruning starts no new batch after this long, so one `prune-history` run stays short; what
is left goes at the next run."""

# The reported columns as `clusters.py` defines them, each set from the parameter named so.
_SET_REPORTED = ",\n        ".join(f"{column} = %({column})s" for column in REPORTED_COLUMNS)
_STORE_HEARTBEAT = f"""
WITH caller AS (
    SELECT id FROM clusters
    WHERE fingerprint = %(fingerprint)s
      AND certificate_not_before <= now() AND certificate_not_after > now()
), details AS (
    UPDATE cluster_details AS d SET
        {_SET_REPORTED},
        last_heartbeat_at = now()
    FROM caller WHERE d.cluster_id = caller.id
    RETURNING d.cluster_id
), history AS (
    INSERT INTO heartbeat_history AS h (cluster_id, bucket, cpu_load_1, memory_total,
        memory_usage, storage_total, storage_usage, member_count, instance_count)
    SELECT id, date_bin(%(bucket)s::interval, now(), TIMESTAMPTZ '2000-01-01'),
        %(load)s, %(memory_total_amount)s, %(memory_usage)s, %(storage_total)s,
        %(storage_usage)s, %(member_count)s, %(instance_count)s
    FROM caller
    ON CONFLICT (cluster_id, bucket) DO UPDATE SET
        cpu_load_1 = EXCLUDED.cpu_load_1, memory_total = EXCLUDED.memory_total,
        memory_usage = EXCLUDED.memory_usage, storage_total = EXCLUDED.storage_total,
        storage_usage = EXCLUDED.storage_usage, member_count = EXCLUDED.member_count,
        instance_count = EXCLUDED.instance_count
)
SELECT caller.id, clusters.name FROM caller JOIN clusters USING (id)
"""  # noqa: S608 - assembled from constants


def store_heartbeat(conn: DbConnection, fingerprint: str, beat: Heartbeat) -> str | None:
    """Record `beat` for the cluster holding `fingerprint`; its name, or None if unknown."""
    row = conn.execute(_STORE_HEARTBEAT.encode(), _parameters(fingerprint, beat)).fetchone()
    return None if row is None else str(row["name"])


def remove_caller(conn: DbConnection, fingerprint: str) -> str | None:
    """Delete the calling cluster (it is leaving); its name, or None if unknown."""
    row = conn.execute(
        "DELETE FROM clusters WHERE fingerprint = %s"
        " AND certificate_not_before <= now() AND certificate_not_after > now()"
        " RETURNING name",
        (fingerprint,),
    ).fetchone()
    return None if row is None else str(row["name"])


def prune_history(conn: DbConnection, retention_days: int) -> int:
    """Drop history older than the retention; the number of rows removed.

    In batches of short statements, so that even a backlog (the manager was down for days)
    stays within the statement timeout; a backlog left when the budget is spent goes next time.
    """
    removed = 0
    stop_at = time.monotonic() + PRUNE_BUDGET_SECONDS
    while True:
        cursor = conn.execute(
            "DELETE FROM heartbeat_history WHERE (cluster_id, bucket) IN ("
            " SELECT cluster_id, bucket FROM heartbeat_history"
            " WHERE bucket < now() - make_interval(days => %s) LIMIT %s)",
            (retention_days, PRUNE_BATCH_ROWS),
        )
        removed += cursor.rowcount
        if cursor.rowcount < PRUNE_BATCH_ROWS or time.monotonic() >= stop_at:
            return removed


def _parameters(fingerprint: str, beat: Heartbeat) -> dict[str, object]:
    def dump(items: list) -> str:
        # pydantic's serializer writes compact JSON straight from the models (hot path).
        return to_json(items).decode()

    return {
        "fingerprint": fingerprint,
        "bucket": HISTORY_BUCKET,
        "ceph_count": sum(s.count for s in beat.ceph_statuses),
        "ceph_statuses": dump(beat.ceph_statuses),
        "cpu_total_count": beat.cpu_total_count,
        "cpu_load_1": beat.cpu_load_1,
        "cpu_load_5": beat.cpu_load_5,
        "cpu_load_15": beat.cpu_load_15,
        "load": float(beat.cpu_load_1),  # the model admits only decimal numbers
        "memory_total_amount": beat.memory_total_amount,
        "memory_usage": beat.memory_usage,
        "instance_count": sum(s.count for s in beat.instance_statuses),
        "instance_statuses": dump(beat.instance_statuses),
        "member_count": sum(s.count for s in beat.member_statuses),
        "member_statuses": dump(beat.member_statuses),
        "storage_pool_usages": dump(beat.storage_pool_usages),
        "storage_total": sum(p.total for p in beat.storage_pool_usages),
        "storage_usage": sum(p.usage for p in beat.storage_pool_usages),
        "ui_url": beat.lxd_ui_url,
    }
