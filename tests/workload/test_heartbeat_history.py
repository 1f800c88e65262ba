"""The compact heartbeat history: one row per cluster per bucket, pruned after the retention.

Pruning is the `prune-history` command's work (the charm's leader runs it on update-status),
never the heartbeat's.
"""

from __future__ import annotations

import json
from pathlib import Path

import cluster_manager
import psycopg
import pytest
from cluster_manager.db import heartbeats
from cluster_manager.db.heartbeats import prune_history
from cluster_manager.db.pool import connect

from tests.support.clusters import KNOWN_HEARTBEAT, enroll
from tools.stack import Stack


def _history(stack: Stack, name: str) -> list[tuple]:
    with psycopg.connect(stack.database_url) as conn:
        return conn.execute(
            "SELECT cpu_load_1, memory_usage, storage_total, member_count, instance_count"
            " FROM heartbeat_history JOIN clusters ON id = cluster_id WHERE name = %s",
            (name,),
        ).fetchall()


def _age_history(stack: Stack, name: str, days: int) -> None:
    with psycopg.connect(stack.database_url) as conn:
        conn.execute(
            "UPDATE heartbeat_history SET bucket = bucket - make_interval(days => %s)"
            " FROM clusters WHERE id = cluster_id AND name = %s",
            (days, name),
        )


def test_heartbeat_adds_a_compact_history_row(stack: Stack) -> None:
    enroll(stack, "history-one", KNOWN_HEARTBEAT)

    rows = _history(stack, "history-one")

    assert rows == [(0.1, 512, 3072, 3, 3)]


def test_heartbeats_in_one_bucket_keep_one_row_with_the_latest_values(stack: Stack) -> None:
    client = enroll(stack, "history-bucket", KNOWN_HEARTBEAT)

    assert client.heartbeat({**KNOWN_HEARTBEAT, "memory_usage": 768}).ok

    assert [row[1] for row in _history(stack, "history-bucket")] == [768]


def test_pruning_drops_history_older_than_the_retention_only(stack: Stack) -> None:
    enroll(stack, "history-old", KNOWN_HEARTBEAT)
    enroll(stack, "history-new", KNOWN_HEARTBEAT)
    _age_history(stack, "history-old", days=31)

    with connect(stack.database_url) as conn:
        removed = prune_history(conn, retention_days=30)

    assert removed >= 1
    assert _history(stack, "history-old") == []
    assert len(_history(stack, "history-new")) == 1


def test_pruning_a_backlog_larger_than_a_batch_removes_all_of_it(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    enroll(stack, "history-backlog", KNOWN_HEARTBEAT)
    with psycopg.connect(stack.database_url) as conn:
        conn.execute(
            "INSERT INTO heartbeat_history SELECT cluster_id, bucket - make_interval(days => n),"
            " cpu_load_1, memory_total, memory_usage, storage_total, storage_usage,"
            " member_count, instance_count"
            " FROM heartbeat_history JOIN clusters ON id = cluster_id, generate_series(31, 37) n"
            " WHERE name = 'history-backlog'"
        )
    monkeypatch.setattr(heartbeats, "PRUNE_BATCH_ROWS", 2)

    with connect(stack.database_url) as conn:
        removed = prune_history(conn, retention_days=30)

    assert removed >= 7
    assert len(_history(stack, "history-backlog")) == 1


def test_prune_history_drops_history_older_than_the_retention_and_keeps_newer(
    stack: Stack,
) -> None:
    enroll(stack, "prune-cli-old", KNOWN_HEARTBEAT)
    enroll(stack, "prune-cli-recent", KNOWN_HEARTBEAT)
    enroll(stack, "prune-cli-new", KNOWN_HEARTBEAT)
    _age_history(stack, "prune-cli-old", days=31)
    _age_history(stack, "prune-cli-recent", days=29)

    result = json.loads(stack.cli("prune-history", "--json").stdout)

    assert result["retention_days"] == 30
    assert result["removed"] >= 1
    assert _history(stack, "prune-cli-old") == []
    assert len(_history(stack, "prune-cli-recent")) == 1
    assert len(_history(stack, "prune-cli-new")) == 1


def test_prune_history_says_what_it_removed(stack: Stack) -> None:
    enroll(stack, "prune-cli-human", KNOWN_HEARTBEAT)
    _age_history(stack, "prune-cli-human", days=40)

    result = stack.cli("prune-history")

    assert result.stdout.startswith("pruned ")
    assert result.stdout.rstrip().endswith(" heartbeat history rows older than 30 days")
    assert _history(stack, "prune-cli-human") == []


def test_a_heartbeat_never_prunes() -> None:
    package = Path(cluster_manager.__file__).parent

    pruners = {
        path.relative_to(package).as_posix()
        for path in package.rglob("*.py")
        if "prune_history" in path.read_text()
    }

    assert pruners == {"db/heartbeats.py", "commands.py"}


def test_removing_a_cluster_removes_its_history(stack: Stack) -> None:
    enroll(stack, "history-removed", KNOWN_HEARTBEAT)

    stack.remove_cluster("history-removed")

    with psycopg.connect(stack.database_url) as conn:
        orphans = conn.execute(
            "SELECT count(*) FROM heartbeat_history"
            " WHERE cluster_id NOT IN (SELECT id FROM clusters)"
        ).fetchone()
    assert orphans == (0,)
