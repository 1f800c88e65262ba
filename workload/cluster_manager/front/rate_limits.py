"""The rate-limit option syntax ("60/minute", "10/second;600/hour"), parsed once for everyone.

The charm validates its options with `parse_rate_limits`, and the front renders HAProxy stick
tables from the result (design D8), so a limit means the same thing wherever it is read.
Standard library only: the charm imports this module.
"""

from __future__ import annotations

import dataclasses
import re

MAX_LIMITS = 2
"""Limits per option: each becomes one rate counter of the front's per-key stick tables."""

PERIOD_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
MAX_PERIOD_SECONDS = 30 * 86400
"""HAProxy keeps rate periods in 32-bit milliseconds (about 49 days)."""

_ONE = re.compile(
    r"^\s*(?P<amount>\d+)\s*(?:/|\s+per\s+)\s*(?P<multiple>\d+\s*)?"
    r"(?P<unit>second|minute|hour|day)s?\s*$"
)
_SEPARATORS = re.compile(r"[,;|]")


class RateLimitError(ValueError):
    """A rate-limit option is not in the accepted syntax; the message says what is."""


@dataclasses.dataclass(frozen=True)
class RateLimit:
    """At most `amount` requests per key within any `period_seconds`."""

    amount: int
    period_seconds: int

    @property
    def retry_after_seconds(self) -> int:
        """Seconds a refused client should wait: one request's share of the period, plus one."""
        return self.period_seconds // self.amount + 1

    def __str__(self) -> str:
        return f"{self.amount} per {self.period_seconds}s"


def parse_rate_limits(spec: str) -> tuple[RateLimit, ...]:
    """Return the limits of `spec`, e.g. "10/second;600/hour" or "100 per 5 minutes".

    Raises:
        RateLimitError: `spec` is empty, malformed, has a zero amount or too many limits.
    """
    parts = _SEPARATORS.split(spec)
    if len(parts) > MAX_LIMITS:
        raise RateLimitError(f"{spec!r}: at most {MAX_LIMITS} limits, e.g. 10/second;600/hour")
    limits = []
    for part in parts:
        match = _ONE.match(part)
        if match is None:
            raise RateLimitError(
                f"{spec!r} is not a rate limit like 60/minute or 10/second;600/hour"
            )
        amount = int(match["amount"])
        if amount < 1:
            raise RateLimitError(f"{spec!r}: the number of requests must be at least 1")
        multiple = int(match["multiple"] or 1)
        period = multiple * PERIOD_SECONDS[match["unit"]]
        if not 1 <= period <= MAX_PERIOD_SECONDS:
            raise RateLimitError(f"{spec!r}: the period must be between 1 second and 30 days")
        limits.append(RateLimit(amount, period))
    return tuple(limits)
