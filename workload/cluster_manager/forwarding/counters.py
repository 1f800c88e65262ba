"""The forwarding metrics, shared by the connector workers and the forwarder process.

The workers count what they drop, the forwarder what it sends; both write them to
prometheus_client's multiprocess files, merged at scrape time (`cluster_manager.metrics`).
Light to import on purpose: the forwarder process loads neither Flask nor the database driver.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

REMOTE_WRITE_QUEUE_DEPTH = Gauge(
    "mcm_remote_write_queue_depth",
    "Heartbeats waiting to be forwarded to remote write.",
    multiprocess_mode="livesum",
)
REMOTE_WRITE_SENT = Counter(
    "mcm_remote_write_sent", "Remote-write requests accepted by an endpoint."
)
REMOTE_WRITE_SAMPLES = Counter(
    "mcm_remote_write_samples_sent", "Samples in remote-write requests accepted by an endpoint."
)
REMOTE_WRITE_FAILED = Counter(
    "mcm_remote_write_failed", "Remote-write requests given up after their retries."
)
REMOTE_WRITE_DROPPED = Counter(
    "mcm_remote_write_dropped",
    "Heartbeats whose metrics were not forwarded because a queue was full or the forwarder "
    "was unreachable.",
)
REMOTE_WRITE_BAD_METRICS = Counter(
    "mcm_remote_write_bad_metrics",
    "Members' metrics texts skipped because they are not valid exposition format.",
)
