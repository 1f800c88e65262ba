"""The TLS front: the HAProxy configuration in front of both gunicorn apps (design D1, D8).

Standard library only: the charm imports this package to write the same file that the local
run, the benchmark and the tests use. HAProxy, not Python or nginx, terminates TLS because the
connector must accept MicroCloud's cluster certificate whatever its extended key usage (it is
an LXD *server* certificate) while the handshake still proves the client holds its key.
"""

from __future__ import annotations

from .config import FrontSettings, render_front_config
from .rate_limits import RateLimit, RateLimitError, parse_rate_limits

__all__ = [
    "FrontSettings",
    "RateLimit",
    "RateLimitError",
    "parse_rate_limits",
    "render_front_config",
]
