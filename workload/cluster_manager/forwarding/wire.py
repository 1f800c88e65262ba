"""How a connector worker hands a heartbeat's LXD metrics to the forwarder process.

A unix stream socket in the run directory (`forwarder.sock`), one connection per worker,
carrying frames: a 4-byte big-endian length, then that many bytes: a JSON header line
`{"cluster", "timestamp_ms", "members": [[name, byte length], ...]}` and the members' texts
(UTF-8) one after the other. A connection that starts with `GET ` instead is an HTTP health
probe (the front's health listener routes `/health/forwarder` here); no frame can start so,
as that length would exceed `MAX_FRAME`.
"""

from __future__ import annotations

import dataclasses
import json
import struct
from collections.abc import Sequence

SOCKET_NAME = "forwarder.sock"
MAX_FRAME = 256 * 1024 * 1024
"""Bigger than any heartbeat the connector accepts (its body limit is 64 MiB at most)."""
_LENGTH = struct.Struct(">I")
HEALTH_PROBE = b"GET "


class FrameError(ValueError):
    """A frame that does not follow this protocol."""


@dataclasses.dataclass(frozen=True)
class MemberMetrics:
    """The raw metrics text one member of a cluster reported."""

    member: str
    text: str


@dataclasses.dataclass(frozen=True)
class Heartbeat:
    """The LXD metrics texts of one heartbeat, stamped with the time it arrived."""

    cluster: str
    timestamp_ms: int
    members: tuple[MemberMetrics, ...]

    @property
    def size(self) -> int:
        """Characters of metrics text it carries (what it costs to queue)."""
        return sum(len(member.text) for member in self.members)


def encode_frame(beat: Heartbeat) -> bytes:
    """The frame (length prefix included) that carries `beat`."""
    texts = [member.text.encode() for member in beat.members]
    header = {
        "cluster": beat.cluster,
        "timestamp_ms": beat.timestamp_ms,
        "members": [[m.member, len(t)] for m, t in zip(beat.members, texts, strict=True)],
    }
    body = b"".join([json.dumps(header).encode(), b"\n", *texts])
    return _LENGTH.pack(len(body)) + body


def frame_length(prefix: bytes) -> int:
    """The body length a frame's 4-byte prefix announces."""
    (length,) = _LENGTH.unpack(prefix)
    if length > MAX_FRAME:
        raise FrameError(f"frame of {length} bytes exceeds {MAX_FRAME}")
    return length


def decode_frame(body: bytes) -> Heartbeat:
    """The heartbeat a frame body (after its length prefix) carries."""
    end = body.find(b"\n")
    try:
        header = json.loads(body[:end])
        position = end + 1
        members: list[MemberMetrics] = []
        lengths: Sequence[tuple[str, int]] = header["members"]
        for name, length in lengths:
            members.append(MemberMetrics(str(name), body[position : position + length].decode()))
            position += length
        if end < 0 or position != len(body):
            raise FrameError("frame length does not match its members")
        return Heartbeat(str(header["cluster"]), int(header["timestamp_ms"]), tuple(members))
    except (ValueError, KeyError, TypeError) as error:
        raise FrameError(f"malformed frame: {error}") from None
