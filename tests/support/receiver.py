"""An HTTP server that records remote-write requests and answers with scripted statuses.

It stands for a remote-write endpoint that misbehaves in ways a real Prometheus cannot be made
to (answer 503 once, refuse with 400, hang); the request bodies are decoded with an
independent reading of the remote-write 1.0 protobuf schema.
"""

from __future__ import annotations

import dataclasses
import struct
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cramjam


@dataclasses.dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    def series(self) -> list[tuple[dict[str, str], float, int]]:
        """(labels, value, timestamp) of every time series in the snappy-compressed body."""
        return decode_write_request(bytes(cramjam.snappy.decompress_raw(self.body)))


class RecordingReceiver:
    """Listens on a loopback port; `statuses` are answered in turn, then `default_status`."""

    def __init__(self, default_status: int = 200, delay: float = 0.0):
        self.requests: list[Received] = []
        self.statuses: list[int] = []
        self.default_status = default_status
        self.delay = delay
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.requests.append(Received(dict(self.headers.items()), body))
                time.sleep(receiver.delay)
                status = receiver.statuses.pop(0) if receiver.statuses else receiver.default_status
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/api/v1/write"

    def __enter__(self) -> RecordingReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return result, pos


def _fields(data: bytes) -> Iterator[tuple[int, int, bytes | int]]:
    """(field number, wire type, value) of every field of one protobuf message."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
            yield number, wire, value
        elif wire == 1:
            yield number, wire, data[pos : pos + 8]
            pos += 8
        elif wire == 2:
            length, pos = _varint(data, pos)
            yield number, wire, data[pos : pos + length]
            pos += length
        else:
            raise ValueError(f"unexpected wire type {wire}")


def decode_write_request(data: bytes) -> list[tuple[dict[str, str], float, int]]:
    result = []
    for number, _, timeseries in _fields(data):
        assert number == 1 and isinstance(timeseries, bytes)
        labels: dict[str, str] = {}
        value, timestamp = float("nan"), 0
        for field, _, content in _fields(timeseries):
            assert isinstance(content, bytes)
            parts = {n: v for n, _, v in _fields(content)}
            if field == 1:
                labels[bytes(parts[1]).decode()] = bytes(parts.get(2, b"")).decode()  # type: ignore[arg-type]
            elif field == 2:
                value = struct.unpack("<d", parts[1])[0]  # type: ignore[arg-type]
                timestamp = int(parts.get(2, 0))  # type: ignore[arg-type]
        result.append((labels, value, timestamp))
    return result
