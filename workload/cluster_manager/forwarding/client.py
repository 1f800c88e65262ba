"""The connector workers' side: hand heartbeats' LXD metrics to the forwarder process.

The heartbeat request only puts the texts in a small bounded queue (`submit`: constant time,
never blocking, never failing); a background thread per worker writes them to the forwarder's
socket. A full queue, or a forwarder that is down, drops the heartbeat's metrics and counts
it: the heartbeat itself is answered as if nothing happened.
"""

from __future__ import annotations

import logging
import queue
import socket
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from flask import Flask

from . import counters, wire
from .wire import Heartbeat, MemberMetrics

logger = logging.getLogger(__name__)

FORWARDED_SERVICE = "LXD"
EXTENSION = "cluster_manager.forwarding"
"""Key of the app's `ForwarderClient` in `app.extensions` (absent when forwarding is off)."""


class ForwarderClient:
    """A small queue of heartbeats, and the thread that writes them to the forwarder."""

    def __init__(self, socket_path: Path, *, queue_size: int = 8, timeout: float = 10.0):
        """Describe the client; its thread starts with the first heartbeat.

        Args:
            socket_path: the forwarder's unix socket.
            queue_size: heartbeats that may wait in this worker; more are dropped, counted.
            timeout: seconds one frame may take to write before the connection is dropped.
        """
        self.socket_path = socket_path
        self.timeout = timeout
        self._queue: queue.Queue[Heartbeat] = queue.Queue(maxsize=queue_size)
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._connection: socket.socket | None = None
        self._idle = threading.Condition()
        self._busy = 0
        self._warned = 0.0

    def submit(self, cluster: str, members: Iterable[MemberMetrics]) -> bool:
        """Queue a heartbeat's metrics without blocking; False when dropped (queue full)."""
        forwarded = tuple(members)
        if not forwarded:
            return True
        self._ensure_thread()
        beat = Heartbeat(cluster, int(time.time() * 1000), forwarded)
        with self._idle:
            try:
                self._queue.put_nowait(beat)
            except queue.Full:
                counters.REMOTE_WRITE_DROPPED.inc()
                return False
            self._busy += 1
        return True

    def wait_idle(self, timeout: float) -> bool:
        """Block until every queued heartbeat was written to the forwarder (or dropped)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._busy == 0, timeout)

    def _ensure_thread(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="forward", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            beat = self._queue.get()
            try:
                self._write(wire.encode_frame(beat))
            except OSError as error:
                counters.REMOTE_WRITE_DROPPED.inc()
                self._disconnect()
                self._warn(error)
            except Exception:  # the thread must survive anything a heartbeat can do
                counters.REMOTE_WRITE_DROPPED.inc()
                logger.exception("forwarding: unexpected error on cluster %s", beat.cluster)
            finally:
                with self._idle:
                    self._busy -= 1
                    self._idle.notify_all()

    def _write(self, frame: bytes) -> None:
        if self._connection is None:
            connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            connection.settimeout(self.timeout)
            try:
                connection.connect(str(self.socket_path))
            except OSError:
                connection.close()
                raise
            self._connection = connection
        self._connection.sendall(frame)

    def _disconnect(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _warn(self, error: OSError) -> None:
        now = time.monotonic()
        if now - self._warned > 60:  # once a minute: a stopped forwarder must not flood logs
            self._warned = now
            logger.warning("forwarding: metrics dropped, forwarder unreachable: %s", error)


def install(app: Flask, socket_path: Path, enabled: bool) -> None:
    """Give `app` a client of the forwarder at `socket_path`, when forwarding is on."""
    if enabled:
        app.extensions[EXTENSION] = ForwarderClient(socket_path)


def forward(app: Flask, cluster: str, server_metrics: Iterable[Any]) -> None:
    """Queue the LXD entries of a heartbeat's `server_metrics`, if forwarding is on."""
    client: ForwarderClient | None = app.extensions.get(EXTENSION)
    if client is None:
        return
    client.submit(
        cluster,
        (
            MemberMetrics(entry.member, entry.metrics)
            for entry in server_metrics
            if entry.service == FORWARDED_SERVICE
        ),
    )
