"""Forward the LXD metrics of every heartbeat to Prometheus remote-write endpoints.

The heartbeat request only hands the raw metrics text to a bounded queue (`RemoteWriter.submit`,
constant time, never blocking); one background thread per worker process parses it, builds a
remote-write 1.0 request (protobuf `prometheus.WriteRequest`, snappy block compression) and
pushes it to every URL, retrying server errors with back-off. When the queue is full the
heartbeat's metrics are dropped and counted: a slow or absent Prometheus never delays or fails
a heartbeat. Metrics text that does not parse is skipped (per member) and counted.

Each sample keeps its own labels plus `cluster` and `member` (so identical series of two
members or clusters never collide) and upstream's `job` label (the cluster name with `-`
replaced by `_`); these three override labels of the same name in the text. `__name__` is the
sample name, as the Go exporter names it (`..._total` for counters).

The three protobuf messages are encoded by hand (`encode_write_request`): they are tiny and
fixed by the remote-write 1.0 specification, and that keeps a protobuf runtime out of the image.
Snappy comes from `cramjam` (maintained Rust bindings with wheels, no system library).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import queue
import ssl
import struct
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import cramjam
import urllib3
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families

from . import metrics

logger = logging.getLogger(__name__)

HEADERS = {
    "Content-Type": "application/x-protobuf",
    "Content-Encoding": "snappy",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
    "User-Agent": "microcloud-cluster-manager",
}
FORWARDED_SERVICE = "LXD"

Labels = tuple[tuple[str, str], ...]
"""Label pairs sorted by name, `__name__` included (remote write requires the order)."""


class MetricsTextError(ValueError):
    """The metrics text of a member is not valid Prometheus text exposition format."""


@dataclasses.dataclass(frozen=True)
class Series:
    """One sample of one series, ready to encode."""

    labels: Labels
    value: float
    timestamp_ms: int


@dataclasses.dataclass(frozen=True)
class MemberMetrics:
    """The raw metrics text one member of a cluster reported."""

    member: str
    text: str


@dataclasses.dataclass(frozen=True)
class _Heartbeat:
    cluster: str
    timestamp_ms: int
    members: tuple[MemberMetrics, ...]


def job_label(cluster: str) -> str:
    """Upstream's `job` label for a cluster: its name with `-` replaced by `_`."""
    return cluster.replace("-", "_")


def parse_member_metrics(cluster: str, member: str, text: str, timestamp_ms: int) -> list[Series]:
    """Return every sample of `text`, labelled with its cluster, member and job.

    Raises:
        MetricsTextError: the text is not valid exposition format.
    """
    extra = {"cluster": cluster, "member": member, "job": job_label(cluster)}
    result: list[Series] = []
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels = {**sample.labels, **extra, "__name__": sample.name}
                result.append(Series(tuple(sorted(labels.items())), sample.value, timestamp_ms))
    except Exception as error:  # the parser raises ValueError, IndexError, KeyError, ...
        raise MetricsTextError(f"{type(error).__name__}: {error}") from None
    return result


# -- protobuf (remote write 1.0: WriteRequest{1: repeated TimeSeries},
#    TimeSeries{1: repeated Label, 2: repeated Sample}, Label{1: name, 2: value},
#    Sample{1: double value, 2: int64 timestamp}) --------------------------------------------


def _varint(number: int) -> bytes:
    if number < 0:
        number += 1 << 64  # int64 two's complement, as protobuf encodes negative int64
    out = bytearray()
    while number > 0x7F:
        out.append((number & 0x7F) | 0x80)
        number >>= 7
    out.append(number)
    return bytes(out)


def _field(key: int, payload: bytes) -> bytes:
    return bytes((key,)) + _varint(len(payload)) + payload


@functools.lru_cache(maxsize=65536)
def _label(name: str, value: str) -> bytes:
    return _field(0x0A, _field(0x0A, name.encode()) + _field(0x12, value.encode()))


def _sample(value: float, timestamp_ms: int) -> bytes:
    return b"\x09" + struct.pack("<d", value) + b"\x10" + _varint(timestamp_ms)


def encode_write_request(series: Iterable[Series]) -> bytes:
    """Return the serialized `prometheus.WriteRequest` holding `series`, one sample each."""
    parts = []
    for item in series:
        body = b"".join(_label(name, value) for name, value in item.labels)
        body += _field(0x12, _sample(item.value, item.timestamp_ms))
        parts.append(_field(0x0A, body))
    return b"".join(parts)


def compress(body: bytes) -> bytes:
    """Snappy block format (not the framed format), as remote write requires."""
    return bytes(cramjam.snappy.compress_raw(body))


# -- the queue and its sender ---------------------------------------------------------------


def ssl_context(ca_bundle: Path | None) -> ssl.SSLContext:
    """The system's trust store plus the CA certificates in `ca_bundle`, when it has any."""
    context = ssl.create_default_context()
    if ca_bundle is not None and ca_bundle.is_file() and "CERTIFICATE" in ca_bundle.read_text():
        context.load_verify_locations(cafile=str(ca_bundle))
    return context


class RemoteWriter:
    """A bounded queue of heartbeats' metrics and the thread that forwards them."""

    def __init__(
        self,
        urls: Sequence[str],
        *,
        ca_bundle: Path | None = None,
        queue_size: int = 1000,
        max_batch: int = 50,
        retries: int = 3,
        backoff: float = 0.5,
        timeout: float = 5.0,
    ):
        """Describe the writer; its thread starts with the first heartbeat.

        Args:
            urls: remote-write URLs; each request goes to every one of them.
            ca_bundle: extra CA certificates for https URLs.
            queue_size: heartbeats that may wait; more are dropped and counted.
            max_batch: heartbeats combined into one request at most.
            retries: further attempts after a network error, a 5xx or a 429.
            backoff: seconds before the first retry, doubled for each further one.
            timeout: seconds to connect, and to wait for the answer.
        """
        self.urls = tuple(urls)
        self.max_batch = max_batch
        self.retries = retries
        self.backoff = backoff
        self._queue: queue.Queue[_Heartbeat] = queue.Queue(maxsize=queue_size)
        self._http = urllib3.PoolManager(
            num_pools=max(4, len(self.urls)),
            maxsize=1,
            retries=False,
            timeout=urllib3.Timeout(connect=timeout, read=timeout),
            ssl_context=ssl_context(ca_bundle),
        )
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._idle = threading.Condition()
        self._busy = 0

    def submit(self, cluster: str, members: Iterable[MemberMetrics]) -> bool:
        """Queue a heartbeat's metrics without blocking; False when dropped (queue full)."""
        forwarded = tuple(members)
        if not forwarded:
            return True
        self._ensure_thread()
        beat = _Heartbeat(cluster, int(time.time() * 1000), forwarded)
        with self._idle:
            try:
                self._queue.put_nowait(beat)
            except queue.Full:
                metrics.REMOTE_WRITE_DROPPED.inc()
                return False
            self._busy += 1
        metrics.REMOTE_WRITE_QUEUE_DEPTH.set(self._queue.qsize())
        return True

    def wait_idle(self, timeout: float) -> bool:
        """Block until every queued heartbeat was handled (sent, failed or skipped)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._busy == 0, timeout)

    def _ensure_thread(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="remote-write", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            metrics.REMOTE_WRITE_QUEUE_DEPTH.set(self._queue.qsize())
            try:
                self._forward(batch)
            except Exception:  # the thread must survive anything a batch can do
                logger.exception("remote write: unexpected error; %d heartbeats lost", len(batch))
            finally:
                with self._idle:
                    self._busy -= len(batch)
                    self._idle.notify_all()

    def _forward(self, batch: Sequence[_Heartbeat]) -> None:
        series: list[Series] = []
        for beat in batch:
            for member in beat.members:
                try:
                    series += parse_member_metrics(
                        beat.cluster, member.member, member.text, beat.timestamp_ms
                    )
                except MetricsTextError as error:
                    metrics.REMOTE_WRITE_BAD_METRICS.inc()
                    logger.warning(
                        "remote write: skipped unparsable metrics of cluster %s member %s: %s",
                        beat.cluster,
                        member.member,
                        error,
                    )
        if not series:
            return
        body = compress(encode_write_request(series))
        for url in self.urls:
            if self._push(url, body):
                metrics.REMOTE_WRITE_SENT.inc()
                metrics.REMOTE_WRITE_SAMPLES.inc(len(series))
            else:
                metrics.REMOTE_WRITE_FAILED.inc()

    def _push(self, url: str, body: bytes) -> bool:
        """POST `body` to `url`, retrying what may succeed later; whether it was accepted."""
        problem = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                response = self._http.request("POST", url, body=body, headers=HEADERS)
            except urllib3.exceptions.HTTPError as error:
                problem = f"{type(error).__name__}: {error}"
                continue
            if response.status < 300:
                return True
            problem = f"HTTP {response.status}: {response.data[:200]!r}"
            if 400 <= response.status < 500 and response.status != 429:
                break  # the request itself is refused; sending it again cannot help
        logger.warning("remote write to %s failed: %s", _redact(url), problem)
        return False


def _redact(url: str) -> str:
    """The URL without user information, should an operator have put credentials in it."""
    scheme, sep, rest = url.partition("://")
    host, at, path = rest.rpartition("@")
    return f"{scheme}{sep}{path}" if at and "/" not in host else url


EXTENSION = "cluster_manager.remote_write"
"""Key of the app's `RemoteWriter` in `app.extensions` (absent when forwarding is off)."""


def install(app: Flask, urls: Sequence[str], ca_bundle: Path, queue_size: int) -> None:
    """Give `app` a writer for `urls`; without URLs nothing is installed (and nothing parsed)."""
    if urls:
        app.extensions[EXTENSION] = RemoteWriter(urls, ca_bundle=ca_bundle, queue_size=queue_size)


def forward(app: Flask, cluster: str, server_metrics: Iterable[Any]) -> None:
    """Queue the LXD entries of a heartbeat's `server_metrics`, if forwarding is on."""
    writer: RemoteWriter | None = app.extensions.get(EXTENSION)
    if writer is None:
        return
    writer.submit(
        cluster,
        (
            MemberMetrics(entry.member, entry.metrics)
            for entry in server_metrics
            if entry.service == FORWARDED_SERVICE
        ),
    )
