"""The forwarder process: `python3 -m cluster_manager.forwarding` (Pebble service `forwarder`).

It listens on `forwarder.sock` in the run directory for the connector workers' frames
(`wire`) and hands each heartbeat to a `Forwarder`. It loads neither Flask nor the database
driver: its memory is the queue, the requests in flight and the interpreter. A health probe
on the same socket is answered 200 while all forwarding threads run, else 503.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from pathlib import Path

from . import wire
from .forwarder import Forwarder

logger = logging.getLogger(__name__)


class ForwarderServer:
    """Accepts the connector workers' connections, one reader thread each."""

    def __init__(self, path: Path, forwarder: Forwarder):
        """Describe the server; `start()` binds `path` (replacing a stale socket file)."""
        self.path = path
        self.forwarder = forwarder
        self._listener: socket.socket | None = None

    def start(self) -> ForwarderServer:
        """Bind and listen, then accept in a background thread."""
        self.path.unlink(missing_ok=True)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(self.path))
        os.chmod(self.path, 0o660)
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept_forever, name="accept", daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop accepting; connections already open end with the process."""
        if self._listener is not None:
            self._listener.close()
        self.path.unlink(missing_ok=True)

    def _accept_forever(self) -> None:
        listener = self._listener
        while listener is not None:
            try:
                connection, _ = listener.accept()
            except OSError:
                return  # closed by stop()
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        with connection:
            try:
                prefix = _read_exactly(connection, 4)
                if prefix == wire.HEALTH_PROBE:
                    self._answer_health(connection)
                    return
                while prefix:
                    body = _read_exactly(connection, wire.frame_length(prefix))
                    self.forwarder.submit(wire.decode_frame(body))
                    prefix = _read_exactly(connection, 4)
            except (OSError, wire.FrameError) as error:
                logger.warning("forwarder: connection closed: %s", error)

    def _answer_health(self, connection: socket.socket) -> None:
        connection.settimeout(5)
        request = b""
        while b"\r\n\r\n" not in request and len(request) < 8192:
            chunk = connection.recv(4096)
            if not chunk:
                break
            request += chunk
        status = "200 OK" if self.forwarder.healthy() else "503 Service Unavailable"
        body = b"ok\n" if self.forwarder.healthy() else b"forwarding threads stopped\n"
        head = f"HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}"
        connection.sendall(head.encode() + b"\r\nConnection: close\r\n\r\n" + body)


def _read_exactly(connection: socket.socket, size: int) -> bytes:
    """`size` bytes, or b"" when the peer closed the connection between frames."""
    buffer = bytearray(size)
    view = memoryview(buffer)
    done = 0
    while done < size:
        received = connection.recv_into(view[done:])
        if not received:
            if done:
                raise wire.FrameError("connection closed inside a frame")
            return b""
        done += received
    return bytes(buffer)
