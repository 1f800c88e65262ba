"""Parse, encode and push heartbeats' LXD metrics: the work of the forwarder process.

One encoder thread and `pushers` pusher threads. The encoder takes heartbeats from a bounded
queue (full: the heartbeat is dropped and counted, never waited for), encodes every member's
text (`exposition.MemberEncoder`; a malformed text is skipped and counted, its member's
neighbours still go) and cuts the series into requests of at most `max_request_bytes`. The
pushers compress and send them (`sender.Sender`) while the encoder goes on with the next
ones; more than one, so that a receiver that ingests each request on one core (Prometheus)
may use several. At most two requests wait between them, so a slow endpoint backs the
heartbeat queue up, where the dropping happens. Requests in flight together never hold two
samples of one series unless a whole heartbeat interval's worth of them waits, as each
series has one sample per heartbeat.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading

from . import counters
from .exposition import MemberEncoder, MetricsTextError
from .sender import Sender
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


class Forwarder:
    """A bounded queue of heartbeats, and the two threads that forward them."""

    def __init__(
        self,
        sender: Sender,
        *,
        queue_size: int = 64,
        max_request_bytes: int = 1 << 20,
        pushers: int = 2,
    ):
        """Describe the forwarder; `start()` starts its threads.

        Args:
            sender: pushes the requests.
            queue_size: heartbeats that may wait; more are dropped and counted.
            max_request_bytes: most bytes of encoded series in one request (before snappy).
            pushers: requests sent at the same time.
        """
        self.sender = sender
        self.max_request_bytes = max_request_bytes
        self._beats: queue.Queue[Heartbeat] = queue.Queue(maxsize=queue_size)
        self._requests: queue.Queue[_Request] = queue.Queue(maxsize=2)
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
        """Start both threads."""
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
                self._requests.put(pending)  # waits while two requests are being sent
                pending = _Request()

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
                    self._requests.put(pending)
                    pending = _Request()
                pending.series.append(item)
                pending.size += len(item)
        return pending

    def _push_forever(self) -> None:
        while True:
            request = self._requests.get()
            try:
                if request.series:
                    self.sender.send(b"".join(request.series), len(request.series))
            except Exception:  # the thread must survive anything a request can do
                logger.exception("remote write: unexpected error; %d series lost", request.size)
            finally:
                with self._idle:
                    self._busy -= request.heartbeats
                    self._idle.notify_all()
