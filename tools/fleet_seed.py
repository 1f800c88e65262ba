"""A synthetic fleet straight into the database, for the fleet-query tests and benchmark.

Cluster i: every 7th never reported, every 5th has memory over 80 %, every 3rd a full pool,
every 11th a member offline, every 13th an instance in error, every 17th a Ceph member down.
"""

from __future__ import annotations

from cluster_manager.db.pool import DbConnection

_SEED = """
INSERT INTO clusters
    (name, certificate, fingerprint, certificate_not_before, certificate_not_after)
SELECT format('cluster-%%s', lpad(i::text, 5, '0')), 'pem', encode(sha256(i::text::bytea), 'hex'),
    now() - interval '1 day', now() + interval '1 year'
FROM generate_series(1, %(n)s) AS i;
INSERT INTO cluster_details (cluster_id, memory_total_amount, memory_usage, member_count,
    member_statuses, instance_count, instance_statuses, ceph_statuses, storage_pool_usages,
    last_heartbeat_at)
SELECT c.id, 1000, CASE WHEN i %% 5 = 0 THEN 900 ELSE 100 END, 3,
    CASE WHEN i %% 11 = 0 THEN '[{"status":"Online","count":2},{"status":"Offline","count":1}]'
         ELSE '[{"status":"Online","count":3}]' END::jsonb,
    4,
    CASE WHEN i %% 13 = 0 THEN '[{"status":"Running","count":3},{"status":"Error","count":1}]'
         ELSE '[{"status":"Running","count":3},{"status":"Stopped","count":1}]' END::jsonb,
    CASE WHEN i %% 17 = 0 THEN '[{"status":"online","count":2},{"status":"down","count":1}]'
         ELSE '[{"status":"ONLINE","count":3}]' END::jsonb,
    format('[{"name":"local","member":"m1","total":100,"usage":%%s}]',
        CASE WHEN i %% 3 = 0 THEN 95 ELSE 10 END)::jsonb,
    CASE WHEN i %% 7 = 0 THEN NULL ELSE now() END
FROM clusters AS c JOIN generate_series(1, %(n)s) AS i
    ON c.name = format('cluster-%%s', lpad(i::text, 5, '0'));
"""


def seed_fleet(conn: DbConnection, size: int) -> None:
    """Insert `size` clusters with details into a migrated, empty database, then ANALYZE."""
    for statement in _SEED.split(";\n"):
        if statement.strip():
            conn.execute(statement.encode(), {"n": size})
    conn.execute("ANALYZE")
