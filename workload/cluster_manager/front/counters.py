"""Read the front's refusal counters from HAProxy's runtime socket.

The front counts the requests it refuses over a rate limit in the `refusals` stick table,
keyed `<app>:<request>` (see `config`); the unit's /metrics reports them. The counters live
in the HAProxy process and start again at zero when it restarts (as any counter may).
"""

from __future__ import annotations

import re
import socket
from pathlib import Path

from .config import REFUSALS_TABLE

_ENTRY = re.compile(r"\bkey=(?P<key>\S+).*\bgpc0=(?P<count>\d+)")


class FrontUnavailable(OSError):
    """HAProxy's runtime socket did not answer."""


def read_refusals(stats_socket: Path, timeout: float = 1.0) -> dict[tuple[str, str], int]:
    """Rate-limited requests so far, by (app, request kind)."""
    text = _ask(stats_socket, f"show table {REFUSALS_TABLE}", timeout)
    counts: dict[tuple[str, str], int] = {}
    for match in _ENTRY.finditer(text):
        app, _, kind = match["key"].partition(":")
        counts[(app, kind)] = int(match["count"])
    return counts


def _ask(stats_socket: Path, command: str, timeout: float) -> str:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            connection.settimeout(timeout)
            connection.connect(str(stats_socket))
            connection.sendall(command.encode() + b"\n")
            chunks = []
            while chunk := connection.recv(65536):
                chunks.append(chunk)
    except OSError as error:
        raise FrontUnavailable(f"{stats_socket}: {error}") from error
    return b"".join(chunks).decode(errors="replace")
