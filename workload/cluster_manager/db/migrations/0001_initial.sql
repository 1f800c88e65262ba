-- Enrolled clusters, their latest heartbeat, a compact history, join and API tokens.
-- Every timestamp is timestamptz (design D6); every secret is stored as a SHA-256 hash.

CREATE TABLE clusters (
    id                     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name                   text NOT NULL UNIQUE,
    description            text NOT NULL DEFAULT '',
    status                 text NOT NULL DEFAULT 'ACTIVE' CHECK (status IN ('ACTIVE')),
    certificate            text NOT NULL,
    fingerprint            text NOT NULL UNIQUE CHECK (fingerprint ~ '^[0-9a-f]{64}$'),
    certificate_not_before timestamptz NOT NULL,
    certificate_not_after  timestamptz NOT NULL,
    disk_threshold         smallint NOT NULL DEFAULT 80 CHECK (disk_threshold BETWEEN 0 AND 100),
    memory_threshold       smallint NOT NULL DEFAULT 80 CHECK (memory_threshold BETWEEN 0 AND 100),
    joined_at              timestamptz NOT NULL DEFAULT now(),
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now()
);

-- The latest heartbeat of each cluster, overwritten in place.
CREATE TABLE cluster_details (
    cluster_id          bigint PRIMARY KEY REFERENCES clusters (id) ON DELETE CASCADE,
    ceph_count          integer NOT NULL DEFAULT 0,
    ceph_statuses       jsonb NOT NULL DEFAULT '[]',
    cpu_total_count     bigint NOT NULL DEFAULT 0,
    cpu_load_1          text NOT NULL DEFAULT '0',
    cpu_load_5          text NOT NULL DEFAULT '0',
    cpu_load_15         text NOT NULL DEFAULT '0',
    memory_total_amount bigint NOT NULL DEFAULT 0,
    memory_usage        bigint NOT NULL DEFAULT 0,
    instance_count      integer NOT NULL DEFAULT 0,
    instance_statuses   jsonb NOT NULL DEFAULT '[]',
    member_count        integer NOT NULL DEFAULT 0,
    member_statuses     jsonb NOT NULL DEFAULT '[]',
    storage_pool_usages jsonb NOT NULL DEFAULT '[]',
    ui_url              text NOT NULL DEFAULT '',
    last_heartbeat_at   timestamptz
);

-- One row per cluster per ten-minute bucket, the last heartbeat in the bucket winning:
-- enough for trend charts, small enough for 10,000 clusters.
CREATE TABLE heartbeat_history (
    cluster_id     bigint NOT NULL REFERENCES clusters (id) ON DELETE CASCADE,
    bucket         timestamptz NOT NULL,
    cpu_load_1     double precision NOT NULL,
    memory_total   bigint NOT NULL,
    memory_usage   bigint NOT NULL,
    storage_total  bigint NOT NULL,
    storage_usage  bigint NOT NULL,
    member_count   integer NOT NULL,
    instance_count integer NOT NULL,
    PRIMARY KEY (cluster_id, bucket)
);
CREATE INDEX heartbeat_history_bucket ON heartbeat_history (bucket);

CREATE TABLE join_tokens (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    cluster_name text NOT NULL UNIQUE,
    token_hash   bytea NOT NULL UNIQUE,
    description  text NOT NULL DEFAULT '',
    expires_at   timestamptz NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_tokens (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         text NOT NULL UNIQUE,
    token_hash   bytea NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz
);
