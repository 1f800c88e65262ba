"""Per-client rate limits on every endpoint (design D8), with the `limits` library.

Counts live in this process's memory: a unit runs `MCM_WORKERS` processes per app, so the
effective ceiling per unit is the configured rate times that number. That keeps the hot path
free of any shared-state round trip; the limit exists to stop floods, not to meter.
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from limits.strategies import SlidingWindowCounterRateLimiter


class RateLimiter:
    """Admit or refuse one request per call for a client key."""

    def __init__(self, spec: str):
        self._items: list[RateLimitItem] = parse_many(spec)
        # A sliding window counter costs O(1) per hit whatever the limit, unlike a moving window.
        self._limiter = SlidingWindowCounterRateLimiter(MemoryStorage())

    def hit(self, key: str) -> int | None:
        """Count a request; return None when admitted, else seconds until a retry may pass."""
        retry_after = None
        for item in self._items:
            if not self._limiter.hit(item, key):
                stats = self._limiter.get_window_stats(item, key)
                wait = max(1, math.ceil(stats.reset_time - time.time()))
                retry_after = max(retry_after or 0, wait)
        return retry_after
