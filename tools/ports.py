"""Free ports (on every address, never the same twice), and waiting for a server to listen."""

from __future__ import annotations

import socket
import time

_handed_out: set[int] = set()


def free_port() -> int:
    """A TCP port free on every address, IPv4 and IPv6, that this process never handed out.

    Free on every address because the front binds `0.0.0.0` and `:::` (and the e2e units
    their remapped ports likewise); on a host without IPv6, free on every IPv4 address. The
    probing socket is closed before the caller binds, so the kernel may offer the same port
    again to the next call; remembering what was handed out keeps the ports of one stack (or
    of two units side by side) distinct.
    """
    while True:
        port = _unused_port()
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def _unused_port() -> int:
    try:
        sock = socket.socket(socket.AF_INET6)
    except OSError:  # no IPv6 on this host
        sock = socket.socket(socket.AF_INET)
        address: tuple[str, int] = ("0.0.0.0", 0)  # noqa: S104 - a probe, never listened on
    else:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        address = ("::", 0)
    with sock:
        sock.bind(address)
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 15.0, host: str = "127.0.0.1") -> None:
    """Block until something accepts connections on `port`, or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s")
