"""A trivial TLS 1.3 HTTP/1.1 server answering every request with a fixed 200 (benchmark only).

It frames requests by ``Content-Length`` and never looks at the content, so it costs as little
as a Python server can; the load generator's self-test uses it to show the client's own ceiling.
"""

from __future__ import annotations

import asyncio
import multiprocessing.connection
import ssl
import tempfile
from pathlib import Path

from tools.pki import CertKey

RESPONSE_BODY = (
    b'{"type":"sync","status":"Success","status_code":200,"operation":"","error_code":0,'
    b'"error":"","metadata":{"next_update_in_seconds":"60"}}\n'
)
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    + f"Content-Length: {len(RESPONSE_BODY)}\r\n\r\n".encode()
    + RESPONSE_BODY
)


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)  # noqa: S101 - stream transport
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = bytes(self.buffer[:head_end]).lower()
            marker = head.find(b"\r\ncontent-length:")
            length = 0
            if marker >= 0:
                value_end = head.find(b"\r\n", marker + 2)
                length = int(head[marker + 17 : value_end if value_end >= 0 else None])
            end = head_end + 4 + length
            if len(self.buffer) < end:
                return
            del self.buffer[:end]
            assert self.transport is not None  # noqa: S101
            self.transport.write(RESPONSE)


def server_context(cert: CertKey) -> ssl.SSLContext:
    """TLS 1.3 server context that does not request client certificates.

    Args:
        cert: server certificate and key.

    Returns:
        The context.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    with tempfile.TemporaryDirectory() as tmp:
        context.load_cert_chain(*cert.write(Path(tmp), "server"))
    return context


async def _serve(cert: CertKey, report: multiprocessing.connection.Connection) -> None:
    server = await asyncio.get_running_loop().create_server(
        _Protocol, "127.0.0.1", 0, ssl=server_context(cert), backlog=1024
    )
    report.send(server.sockets[0].getsockname()[1])
    async with server:
        await server.serve_forever()


def serve_forever(cert: CertKey, report: multiprocessing.connection.Connection) -> None:
    """Serve until killed; send the port through ``report`` once listening.

    Args:
        cert: server certificate and key.
        report: pipe end receiving the port number.
    """
    asyncio.run(_serve(cert, report))
