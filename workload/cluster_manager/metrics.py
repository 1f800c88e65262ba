"""The manager's own metrics, served on each unit's plain-HTTP metrics port (front → `/metrics`).

Counters and histograms are updated where things happen (request hooks, the remote-write
thread). Both apps run several gunicorn worker processes, so `serve` puts them in
prometheus_client's multiprocess mode: every process writes its values to files under
`$MCM_RUN_DIR/metrics/<app>/` (emptied when the app starts) and a scrape merges the files of
both apps. Gauges derived from the database (enrolled clusters, online/offline, join tokens,
the last heartbeat of each cluster) are computed at scrape time with one query, never on the
heartbeat path. Requests the front refused over a rate limit never reach an app: they are
read from the front's counters at scrape time.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from flask import Flask, Response, g, request
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector

from .db import fleet
from .db.pool import Database, DatabaseUnavailable
from .forwarding.counters import (  # noqa: F401 (defined there for the forwarder process)
    REMOTE_WRITE_BAD_METRICS,
    REMOTE_WRITE_DROPPED,
    REMOTE_WRITE_FAILED,
    REMOTE_WRITE_QUEUE_DEPTH,
    REMOTE_WRITE_SAMPLES,
    REMOTE_WRITE_SENT,
)
from .front.config import STATS_SOCKET
from .front.counters import FrontUnavailable, read_refusals

logger = logging.getLogger(__name__)

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"

HTTP_REQUESTS = Counter(
    "mcm_http_requests",
    "HTTP requests answered by the apps, by app, endpoint, method and status code.",
    ["app", "endpoint", "method", "status"],
)
HTTP_LATENCY = Histogram(
    "mcm_http_request_duration_seconds",
    "Time the apps took to answer a request, by app and endpoint.",
    ["app", "endpoint"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
HEARTBEATS = Counter(
    "mcm_heartbeats",
    "Heartbeats the connector answered, by result (ok, invalid, forbidden, unavailable, error).",
    ["result"],
)
JOINS = Counter(
    "mcm_joins",
    "Join requests answered by the connector, by result (ok, invalid, forbidden, refused, ...).",
    ["result"],
)
_RESULTS = {
    200: "ok",
    400: "invalid",
    403: "forbidden",
    404: "not_found",
    409: "refused",
    410: "refused",
    413: "too_large",
    503: "unavailable",
}
_COUNTED_ENDPOINTS = {"connector.heartbeat": HEARTBEATS, "connector.join": JOINS}


def result_of(status: int) -> str:
    """The `result` label of a heartbeat or join answered with `status`."""
    if status in _RESULTS:
        return _RESULTS[status]
    return "error" if status >= 500 else "refused"


# -- multiprocess mode ----------------------------------------------------------------------


def worker_exited(pid: int) -> None:
    """Forget the live gauges of a worker that exited (gunicorn `child_exit` hook)."""
    if os.environ.get(MULTIPROCESS_ENV):
        multiprocess.mark_process_dead(pid)


class _MergedFiles(Collector):
    """The metric files of every app under `run_dir/metrics`, merged as one process's."""

    def __init__(self, root: Path):
        self._root = root

    def collect(self) -> Iterable[Any]:
        files = [str(path) for path in sorted(self._root.glob("*/*.db"))]
        return multiprocess.MultiProcessCollector.merge(files, accumulate=True)


# -- scrape-time database gauges ------------------------------------------------------------


class _DatabaseGauges(Collector):
    """Fleet gauges read from PostgreSQL with one query per scrape."""

    def __init__(self, db: Database, heartbeat_interval: int, offline_after: int):
        self._db = db
        self._interval = heartbeat_interval
        self._offline_after = offline_after

    def collect(self) -> Iterator[GaugeMetricFamily]:
        interval = GaugeMetricFamily(
            "mcm_heartbeat_interval_seconds",
            "Seconds between heartbeats suggested to clusters (advisory: MicroCloud ignores it).",
        )
        interval.add_metric([], self._interval)
        yield interval
        offline_after = GaugeMetricFamily(
            "mcm_offline_after_seconds",
            "Seconds without a heartbeat after which a cluster counts as offline.",
        )
        offline_after.add_metric([], self._offline_after)
        yield offline_after
        up = GaugeMetricFamily(
            "mcm_database_up", "Whether the last scrape could read the database (1) or not (0)."
        )
        try:
            gauges = self._db.run(
                lambda conn: fleet.fleet_gauges(conn, self._offline_after), idempotent=True
            )
        except DatabaseUnavailable as error:
            logger.warning("metrics: database unavailable: %s", error)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from self._fleet_families(gauges)

    def _fleet_families(self, gauges: fleet.FleetGauges) -> Iterator[GaugeMetricFamily]:
        enrolled = GaugeMetricFamily("mcm_clusters_enrolled", "Clusters enrolled.")
        enrolled.add_metric([], gauges.clusters)
        by_status = GaugeMetricFamily(
            "mcm_clusters",
            "Enrolled clusters by status (offline: no heartbeat for mcm_offline_after_seconds,"
            " or none yet).",
            labels=["status"],
        )
        by_status.add_metric(["online"], gauges.online)
        by_status.add_metric(["offline"], gauges.clusters - gauges.online)
        tokens = GaugeMetricFamily(
            "mcm_join_tokens", "Join tokens not used yet, by state.", labels=["state"]
        )
        tokens.add_metric(["valid"], gauges.valid_tokens)
        tokens.add_metric(["expired"], gauges.expired_tokens)
        last = GaugeMetricFamily(
            "mcm_cluster_last_heartbeat_timestamp_seconds",
            "Unix time of each cluster's last heartbeat (its enrollment before the first one).",
            labels=["cluster"],
        )
        for name, seen in zip(gauges.names, gauges.last_seen, strict=True):
            last.add_metric([name], seen)
        tunnels = GaugeMetricFamily(
            "mcm_clusters_with_tunnel", "Clusters holding a reverse tunnel to one of the units."
        )
        tunnels.add_metric([], gauges.tunnels)
        yield from (enrolled, by_status, tokens, last, tunnels)


class _FrontRefusals(Collector):
    """Requests the front refused over a rate limit, from its runtime socket."""

    def __init__(self, stats_socket: Path):
        self._socket = stats_socket

    def collect(self) -> Iterator[CounterMetricFamily]:
        refused = CounterMetricFamily(
            "mcm_rate_limited_requests",
            "Requests the front refused with 429 over a rate limit, by app and request"
            " (join, heartbeat, leave, other).",
            labels=["app", "request"],
        )
        try:
            counts = read_refusals(self._socket)
        except FrontUnavailable as error:
            logger.warning("metrics: the front's counters are unavailable: %s", error)
            counts = {}
        for (app, kind), count in sorted(counts.items()):
            refused.add_metric([app, kind], count)
        yield refused


# -- Flask wiring ---------------------------------------------------------------------------


def install_request_metrics(app: Flask, app_label: str) -> None:
    """Time and count every request of `app`; count heartbeats and joins by result."""

    def start_timer() -> None:
        g.mcm_started = time.perf_counter()

    def observe(response: Response) -> Response:
        started = g.pop("mcm_started", None)
        endpoint = request.endpoint or "none"
        status = response.status_code
        if started is not None:
            HTTP_LATENCY.labels(app_label, endpoint).observe(time.perf_counter() - started)
        HTTP_REQUESTS.labels(app_label, endpoint, request.method, str(status)).inc()
        counter = _COUNTED_ENDPOINTS.get(endpoint)
        if counter is not None:
            counter.labels(result_of(status)).inc()
        return response

    app.before_request_funcs.setdefault(None, []).insert(0, start_timer)
    app.after_request(observe)


def metrics_response(db: Database, run_dir: Path, heartbeat_interval: int, offline_after: int):
    """The text exposition of every metric of this unit (both apps, all their processes)."""
    registry = CollectorRegistry()
    if os.environ.get(MULTIPROCESS_ENV):
        registry.register(_MergedFiles(run_dir / "metrics"))
        registry.register(_DatabaseGauges(db, heartbeat_interval, offline_after))
        registry.register(_FrontRefusals(run_dir / STATS_SOCKET))
        body = generate_latest(registry)
    else:  # a single process (tests, local runs without gunicorn): its own registry
        registry.register(_DatabaseGauges(db, heartbeat_interval, offline_after))
        registry.register(_FrontRefusals(run_dir / STATS_SOCKET))
        body = generate_latest(REGISTRY) + generate_latest(registry)
    # The classic text format that every Prometheus 2.x parses (the body is exactly that).
    return Response(body, content_type=CONTENT_TYPE_PLAIN_0_0_4)
