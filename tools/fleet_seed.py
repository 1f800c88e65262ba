"""A synthetic fleet straight into the database, for the fleet-query tests and benchmark.

Cluster i: every 7th never reported, every 5th has memory over 80 %, every 3rd a full pool,
every 11th a member offline, every 13th an instance in error, every 17th a Ceph member down.
"""

from __future__ import annotations

from cluster_manager.db.clusters import REPORTED_COLUMNS
from cluster_manager.db.pool import DbConnection

# What cluster i reported, one SQL expression per column of `clusters.Reported`; the columns
# left out keep their defaults, as before a first heartbeat.
_REPORTED = {
    "memory_total_amount": "1000",
    "memory_usage": "CASE WHEN i %% 5 = 0 THEN 900 ELSE 100 END",
    "member_count": "3",
    "member_statuses": """CASE WHEN i %% 11 = 0
        THEN '[{"status":"Online","count":2},{"status":"Offline","count":1}]'
        ELSE '[{"status":"Online","count":3}]' END::jsonb""",
    "instance_count": "4",
    "instance_statuses": """CASE WHEN i %% 13 = 0
        THEN '[{"status":"Running","count":3},{"status":"Error","count":1}]'
        ELSE '[{"status":"Running","count":3},{"status":"Stopped","count":1}]' END::jsonb""",
    "ceph_statuses": """CASE WHEN i %% 17 = 0
        THEN '[{"status":"online","count":2},{"status":"down","count":1}]'
        ELSE '[{"status":"ONLINE","count":3}]' END::jsonb""",
    "storage_pool_usages": """format('[{"name":"local","member":"m1","total":100,"usage":%%s}]',
        CASE WHEN i %% 3 = 0 THEN 95 ELSE 10 END)::jsonb""",
}
_CLUSTERS = """
INSERT INTO clusters
    (name, certificate, fingerprint, certificate_not_before, certificate_not_after)
SELECT format('cluster-%%s', lpad(i::text, 5, '0')), 'pem', encode(sha256(i::text::bytea), 'hex'),
    now() - interval '1 day', now() + interval '1 year'
FROM generate_series(1, %(n)s) AS i
"""
_DETAILS = f"""
INSERT INTO cluster_details (cluster_id, last_heartbeat_at, {", ".join(_REPORTED)})
SELECT c.id, CASE WHEN i %% 7 = 0 THEN NULL ELSE now() END, {", ".join(_REPORTED.values())}
FROM clusters AS c JOIN generate_series(1, %(n)s) AS i
    ON c.name = format('cluster-%%s', lpad(i::text, 5, '0'))
"""  # noqa: S608 - assembled from the constants above


def seed_fleet(conn: DbConnection, size: int) -> None:
    """Insert `size` clusters with details into a migrated, empty database, then ANALYZE."""
    unknown = set(_REPORTED) - set(REPORTED_COLUMNS)
    if unknown:
        raise ValueError(f"not columns a heartbeat writes: {', '.join(sorted(unknown))}")
    for statement in (_CLUSTERS, _DETAILS):
        conn.execute(statement.encode(), {"n": size})
    conn.execute("ANALYZE")
