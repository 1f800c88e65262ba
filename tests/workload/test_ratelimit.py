"""The per-client rate limiter (reference §11.3 adapted to the `limits` syntax)."""

from __future__ import annotations

import time

import pytest
from cluster_manager.ratelimit import RateLimiter


def test_requests_within_the_limit_are_admitted() -> None:
    limiter = RateLimiter("20/second")

    results = [limiter.hit("10.0.0.1") for _ in range(20)]

    assert results == [None] * 20


def test_request_over_the_limit_gets_a_retry_delay() -> None:
    limiter = RateLimiter("3/minute")
    for _ in range(3):
        limiter.hit("10.0.0.1")

    retry_after = limiter.hit("10.0.0.1")

    assert retry_after is not None
    assert 1 <= retry_after <= 60


def test_clients_are_counted_separately() -> None:
    limiter = RateLimiter("1/minute")
    limiter.hit("10.0.0.1")

    other = limiter.hit("10.0.0.2")

    assert other is None


def test_client_is_admitted_again_once_the_window_passes() -> None:
    limiter = RateLimiter("2/second")
    limiter.hit("10.0.0.1")
    limiter.hit("10.0.0.1")
    assert limiter.hit("10.0.0.1") is not None

    time.sleep(2.1)

    assert limiter.hit("10.0.0.1") is None


def test_every_limit_of_a_combined_spec_applies() -> None:
    limiter = RateLimiter("100/second;3/minute")
    for _ in range(3):
        limiter.hit("10.0.0.1")

    retry_after = limiter.hit("10.0.0.1")

    # Four requests within a second pass 100/second, so only the minute limit can refuse.
    assert retry_after is not None


def test_an_invalid_spec_is_refused() -> None:
    with pytest.raises(ValueError, match="couldn't parse"):
        RateLimiter("lots")
