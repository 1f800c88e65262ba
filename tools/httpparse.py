"""Minimal incremental HTTP/1.1 response framing for the load generator."""

from __future__ import annotations

from dataclasses import dataclass


class FramingError(ValueError):
    """The bytes are not an HTTP/1.1 response."""


@dataclass(frozen=True)
class Framed:
    """One complete response found at the start of a buffer."""

    status: int
    length: int
    close: bool


def _chunked_end(buffer: bytes | bytearray, start: int) -> int | None:
    position = start
    while True:
        line_end = buffer.find(b"\r\n", position)
        if line_end < 0:
            return None
        size_text = bytes(buffer[position:line_end]).split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError as exc:
            raise FramingError(f"bad chunk size {size_text!r}") from exc
        if size == 0:
            trailer_end = buffer.find(b"\r\n\r\n", line_end)
            if buffer[line_end : line_end + 4] == b"\r\n\r\n":
                return line_end + 4
            return None if trailer_end < 0 else trailer_end + 4
        position = line_end + 2 + size + 2
        if position > len(buffer):
            return None


def frame_response(buffer: bytes | bytearray) -> Framed | None:
    """Find the first complete response in ``buffer``.

    Args:
        buffer: received bytes.

    Returns:
        Its status, total length in bytes and whether the server closes afterwards; None when
        the response is not complete yet.

    Raises:
        FramingError: when the bytes are not a response.
    """
    head_end = buffer.find(b"\r\n\r\n")
    if head_end < 0:
        return None
    head = bytes(buffer[:head_end]).lower()
    if not head.startswith(b"http/1."):
        raise FramingError(f"not an HTTP response: {head[:40]!r}")
    try:
        status = int(head[9:12])
    except ValueError as exc:
        raise FramingError(f"bad status line: {head[:40]!r}") from exc
    close = b"\r\nconnection: close" in head or head.startswith(b"http/1.0")
    body_start = head_end + 4
    if b"\r\ntransfer-encoding: chunked" in head:
        end = _chunked_end(buffer, body_start)
        return None if end is None else Framed(status, end, close)
    marker = head.find(b"\r\ncontent-length:")
    if marker < 0:
        if status in (204, 304) or 100 <= status < 200:
            return Framed(status, body_start, close)
        raise FramingError("response without Content-Length or chunked body")
    value_end = head.find(b"\r\n", marker + 2)
    length = int(head[marker + 17 : value_end if value_end >= 0 else len(head)].strip())
    end = body_start + length
    return None if end > len(buffer) else Framed(status, end, close)
