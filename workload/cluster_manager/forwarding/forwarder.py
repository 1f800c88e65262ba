"""Parse, encode and push heartbeats' LXD metrics: the work of the forwarder process.

One encoder thread and `pushers` pusher threads. The encoder takes heartbeats from a bounded
queue (full: the heartbeat is dropped and counted, never waited for), encodes every member's
text (`exposition.MemberEncoder`; a malformed text is skipped and counted, its member's
neighbours still go), cuts the series into requests of at most `max_request_bytes` and
compresses them into an outbox bounded in bytes. Compressed, a request is about a fifth of
the text it came from, so the outbox rides out a receiver that is slow for a while (Prometheus
creating a fleet's series on first sight) in little memory; only when it is full does the
encoder wait, the heartbeat queue fill and heartbeats drop. The pushers send from the outbox
(`sender.Sender`), several at a time so that a receiver that ingests each request on one
core may use more. Requests in flight together never hold two samples of one series unless
a whole heartbeat interval's worth of them waits, as each series has one sample per heartbeat.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import queue
import threading

from ..memory import release_free_memory
from . import counters
from .exposition import MemberEncoder, MetricsTextError
from .sender import Sender, compress
from .wire import Heartbeat

logger = logging.getLogger(__name__)


def job_label(cluster: str) -> str:
    """Upstream's `job` label for a cluster: its name with `-` replaced by `_`."""
    return cluster.replace("-", "_")


def member_labels(cluster: str, member: str) -> dict[str, str]:
    """The labels every sample of a member gets, replacing any of the same name in its text.

    `cluster` and `member` keep identical series of two members or clusters apart; `job` is
    what upstream's forwarder sets.
    """
    return {"cluster": cluster, "job": job_label(cluster), "member": member}


@dataclasses.dataclass
class _Request:
    series: list[bytes] = dataclasses.field(default_factory=list)
    size: int = 0
    heartbeats: int = 0
    """Heartbeats whose last series are in this request: done once it is sent."""


@dataclasses.dataclass(frozen=True)
class _Ready:
    body: bytes
    """The snappy-compressed WriteRequest."""
    samples: int
    heartbeats: int


class _Outbox:
    """Compressed requests waiting for a pusher, at most `capacity` bytes of them (or one)."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self._ready: collections.deque[_Ready] = collections.deque()
        self._bytes = 0
        self._changed = threading.Condition()

    def put(self, ready: _Ready) -> None:
        """Add `ready`, waiting while that would exceed the capacity."""
        with self._changed:
            self._changed.wait_for(
                lambda: not self._ready or self._bytes + len(ready.body) <= self.capacity
            )
            self._ready.append(ready)
            self._bytes += len(ready.body)
            self._changed.notify_all()

    def get(self) -> _Ready:
        """The oldest request, waiting for one."""
        with self._changed:
            self._changed.wait_for(lambda: bool(self._ready))
            ready = self._ready.popleft()
            self._bytes -= len(ready.body)
            self._changed.notify_all()
            return ready


class Forwarder:
    """A bounded queue of heartbeats, and the threads that forward them."""

    def __init__(
        self,
        sender: Sender,
        *,
        queue_size: int = 16,
        max_request_bytes: int = 1 << 20,
        outbox_bytes: int = 32 << 20,
        pushers: int = 2,
    ):
        """Describe the forwarder; `start()` starts its threads.

        Args:
            sender: pushes the requests.
            queue_size: heartbeats that may wait; more are dropped and counted.
            max_request_bytes: most bytes of encoded series in one request (before snappy).
            outbox_bytes: most bytes of compressed requests waiting to be sent.
            pushers: requests sent at the same time.
        """
        self.sender = sender
        self.max_request_bytes = max_request_bytes
        self._beats: queue.Queue[Heartbeat] = queue.Queue(maxsize=queue_size)
        self._outbox = _Outbox(outbox_bytes)
        self._threads = [
            threading.Thread(target=self._encode_forever, name="encode", daemon=True),
            *(
                threading.Thread(target=self._push_forever, name=f"push-{n}", daemon=True)
                for n in range(pushers)
            ),
        ]
        self._idle = threading.Condition()
        self._busy = 0

    def start(self) -> Forwarder:
        """Start every thread."""
        for thread in self._threads:
            thread.start()
        return self

    def healthy(self) -> bool:
        """Whether every thread runs."""
        return all(thread.is_alive() for thread in self._threads)

    def submit(self, beat: Heartbeat) -> bool:
        """Queue `beat` without waiting; False when dropped (queue full)."""
        with self._idle:
            try:
                self._beats.put_nowait(beat)
            except queue.Full:
                counters.REMOTE_WRITE_DROPPED.inc()
                return False
            self._busy += 1
        counters.REMOTE_WRITE_QUEUE_DEPTH.set(self._beats.qsize())
        return True

    def wait_idle(self, timeout: float) -> bool:
        """Block until every queued heartbeat was handled (sent, failed or skipped)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._busy == 0, timeout)

    def _encode_forever(self) -> None:
        pending = _Request()
        while True:
            beat = self._beats.get()
            counters.REMOTE_WRITE_QUEUE_DEPTH.set(self._beats.qsize())
            try:
                pending = self._encode(beat, pending)
            except Exception:  # the thread must survive anything a heartbeat can do
                logger.exception("remote write: unexpected error on cluster %s", beat.cluster)
            pending.heartbeats += 1
            if self._beats.empty() or pending.size >= self.max_request_bytes:
                self._ship(pending)
                pending = _Request()
            if self._beats.empty():
                release_free_memory()  # the text and its encoding were megabytes

    def _encode(self, beat: Heartbeat, pending: _Request) -> _Request:
        for member in beat.members:
            encoder = MemberEncoder(member_labels(beat.cluster, member.member))
            try:
                series = encoder.encode(member.text, beat.timestamp_ms)
            except MetricsTextError as error:
                counters.REMOTE_WRITE_BAD_METRICS.inc()
                logger.warning(
                    "remote write: skipped unparsable metrics of cluster %s member %s: %s",
                    beat.cluster,
                    member.member,
                    error,
                )
                continue
            for item in series:
                if pending.size + len(item) > self.max_request_bytes and pending.series:
                    self._ship(pending)
                    pending = _Request()
                pending.series.append(item)
                pending.size += len(item)
        return pending

    def _ship(self, request: _Request) -> None:
        """Compress `request` into the outbox (waiting while it is full)."""
        body = compress(b"".join(request.series)) if request.series else b""
        self._outbox.put(_Ready(body, len(request.series), request.heartbeats))

    def _push_forever(self) -> None:
        while True:
            ready = self._outbox.get()
            try:
                if ready.samples:
                    self.sender.send(ready.body, ready.samples)
            except Exception:  # the thread must survive anything a request can do
                logger.exception("remote write: unexpected error; %d samples lost", ready.samples)
            finally:
                with self._idle:
                    self._busy -= ready.heartbeats
                    self._idle.notify_all()
