"""Fixtures of the charm's unit tests; the building blocks are in builders.py."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import ops
import pytest
from ops import testing

from charm import ClusterManagerCharm
from tests.unit.builders import SigningCA, make_context, pod_host_names, private_keys_parsed_once


@pytest.fixture(scope="session", autouse=True)
def _pods_resolve_their_own_host_names() -> Iterator[None]:
    with pod_host_names():
        yield


@pytest.fixture(scope="session", autouse=True)
def _private_keys_parsed_once() -> Iterator[None]:
    with private_keys_parsed_once():
        yield


@pytest.fixture
def ctx() -> testing.Context[ClusterManagerCharm]:
    return make_context()


@pytest.fixture(scope="session")
def ca() -> SigningCA:
    return SigningCA()


@dataclasses.dataclass
class PebbleCalls:
    """Service operations the charm asked Pebble for: (operation or signal, services)."""

    calls: list[tuple[str, tuple[str, ...]]] = dataclasses.field(default_factory=list)

    def of(self, operation: str) -> list[tuple[str, ...]]:
        return [services for op, services in self.calls if op == operation]


@pytest.fixture
def pebble_calls(monkeypatch: pytest.MonkeyPatch) -> PebbleCalls:
    """Record restarts, starts, replans and signals; ops.testing keeps no history of them.

    The calls still go through to the ops.testing Pebble, so service statuses stay real.
    """
    record = PebbleCalls()

    def spy(operation: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(self: ops.Container, *args: Any) -> Any:
            if operation == "send_signal":  # send_signal(signal, *services)
                record.calls.append((str(args[0]), tuple(args[1:])))
            else:
                record.calls.append((operation, tuple(args)))
            return original(self, *args)

        return wrapper

    for operation in ("restart", "start", "replan", "send_signal"):
        monkeypatch.setattr(
            ops.Container, operation, spy(operation, getattr(ops.Container, operation))
        )
    return record
