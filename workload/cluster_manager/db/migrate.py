"""Forward-only numbered SQL migrations, applied under a PostgreSQL advisory lock (design D6).

Any number of processes may call `migrate` at once: they queue on the lock, and each one
after the first finds nothing left to do. All pending files apply in one transaction, so a
failure leaves the schema exactly as it was.
"""

from __future__ import annotations

import dataclasses
import re
from importlib import resources

from .pool import DbConnection

# An arbitrary constant that names "schema migration" among advisory locks.
MIGRATION_LOCK_ID = 0x4D434D_0001
_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclasses.dataclass(frozen=True)
class Migration:
    """One SQL file of `migrations/`."""

    version: int
    name: str
    sql: str


@dataclasses.dataclass(frozen=True)
class MigrationResult:
    """What `migrate` found and did."""

    version: int
    applied: tuple[int, ...]


def available_migrations() -> list[Migration]:
    """All shipped migrations in order; numbers must run 1, 2, 3 … without gaps."""
    migrations = []
    for entry in resources.files("cluster_manager.db").joinpath("migrations").iterdir():
        match = _FILE_NAME.match(entry.name)
        if match:
            migrations.append(Migration(int(match[1]), match[2], entry.read_text()))
    migrations.sort(key=lambda m: m.version)
    for expected, migration in enumerate(migrations, start=1):
        if migration.version != expected:
            raise RuntimeError(f"migration {expected:04d} is missing")
    return migrations


def migrate(conn: DbConnection, migrations: list[Migration] | None = None) -> MigrationResult:
    """Apply every migration the database does not have yet."""
    migrations = available_migrations() if migrations is None else migrations
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_ID,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY,"
            " name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        rows = conn.execute("SELECT version FROM schema_migrations").fetchall()
        done = {int(row["version"]) for row in rows}
        applied = []
        for migration in migrations:
            if migration.version in done:
                continue
            conn.execute(migration.sql.encode())
            conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                (migration.version, migration.name),
            )
            applied.append(migration.version)
    version = max(done | set(applied), default=0)
    return MigrationResult(version=version, applied=tuple(applied))
