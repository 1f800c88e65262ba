"""Waiting for a stack to work again after its database was stopped or frozen."""

from __future__ import annotations

import time
from collections.abc import Callable

import requests

from tools.stack import Stack

IN_A_ROW = 5
"""Each worker process learns by itself that the database answers again, so one success does
not say that every worker has: several in a row do."""


def wait_until_settled(
    stack: Stack, also: Callable[[], bool] = lambda: True, timeout: float = 30.0
) -> None:
    """Block until every app reports ready (and `also` holds) IN_A_ROW times in a row."""
    deadline = time.monotonic() + timeout
    in_a_row = 0
    while in_a_row < IN_A_ROW:
        ready = [_readiness(stack, app) for app in stack.apps]
        if all(status == 200 for status in ready) and also():
            in_a_row += 1
            continue
        in_a_row = 0
        assert time.monotonic() < deadline, f"the stack did not recover: {ready}"
        time.sleep(0.2)


def _readiness(stack: Stack, app: str) -> int:
    url = f"http://127.0.0.1:{stack.health_port}/ready/{app}"
    return requests.get(url, timeout=20).status_code
