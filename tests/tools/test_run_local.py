"""README command 1: the local run mode, started and stopped as a user does."""

from __future__ import annotations

import dataclasses
import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tools.ports import free_port

ANNOUNCED = "Press Ctrl-C to stop."


class LocalRun:
    """`python -m tools.run_local` in the background, with its output collected."""

    def __init__(self, state: Path):
        self.state = state
        self.ports = (free_port(), free_port(), free_port())
        self.output = state.parent / f"run-{time.monotonic_ns()}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 90.0) -> str:
        """Start and wait for the announcement; return everything printed so far."""
        management, connector, health = self.ports
        command = [
            sys.executable, "-m", "tools.run_local", "--state-dir", str(self.state),
            "--clusters", "2", "--interval", "1", "--tunnel-interval", "0.5",
            "--management-port", str(management),
            "--connector-port", str(connector), "--health-port", str(health),
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command, stdout=self.output.open("wb"), stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.text()
            if ANNOUNCED in text:
                return text
            if self.process.poll() is not None:
                raise RuntimeError(f"run_local exited early:\n{text}")
            time.sleep(0.2)
        raise TimeoutError(f"no announcement after {timeout}s:\n{self.text()}")

    def text(self) -> str:
        """Everything printed so far."""
        return self.output.read_text(errors="replace")

    def interrupt(self, timeout: float = 60.0) -> int:
        """Press Ctrl-C; return the exit code."""
        assert self.process is not None
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=timeout)

    def clusters(self, token: str) -> list[dict]:
        """The clusters the management API lists."""
        response = requests.get(
            f"https://localhost:{self.ports[0]}/1.0/remote-cluster",
            headers={"Authorization": f"Bearer {token}"},
            verify=str(self.state / "tls" / "management.crt"),
            timeout=10,
        )
        response.raise_for_status()
        return response.json()["metadata"]


@pytest.fixture(scope="module")
def local_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRun]:
    run = LocalRun(tmp_path_factory.mktemp("local") / "state")
    yield run
    if run.process is not None and run.process.poll() is None:
        run.process.kill()
        run.process.wait()


@dataclasses.dataclass(frozen=True)
class FirstRun:
    """What the first run in a new state directory announced, listed and printed on Ctrl-C."""

    announcement: str
    clusters: list[dict]
    exit_code: int
    output: str


@pytest.fixture(scope="module")
def first_run(local_run: LocalRun) -> FirstRun:
    """The first run, shared: the second-run test starts from the state it left."""
    announcement = local_run.start()
    clusters = _wait_for_online(local_run, _api_token(announcement), 2)
    exit_code = local_run.interrupt()
    return FirstRun(announcement, clusters, exit_code, local_run.text())


def _api_token(announcement: str) -> str:
    match = re.search(r"API token\s+(\S+)", announcement)
    assert match, announcement
    return match[1]


def _wait_for_online(run: LocalRun, token: str, count: int) -> list[dict]:
    """Every cluster online and reporting, and the first half holding its tunnel."""
    deadline = time.monotonic() + 30
    clusters: list[dict] = []
    while time.monotonic() < deadline:
        clusters = run.clusters(token)
        online = [c for c in clusters if c["connection_status"] == "online"]
        tunnels = [c["tunnel_registered"] for c in clusters]
        expected = [index < (count + 1) // 2 for index in range(count)]
        if (
            len(online) == count
            and all(c["member_count"] > 0 for c in online)
            and tunnels == expected
        ):
            return clusters
        time.sleep(0.5)
    raise AssertionError(f"fleet not online: {json.dumps(clusters)[:500]}")


def test_local_run_serves_a_heartbeating_fleet_and_stops_on_ctrl_c(first_run: FirstRun) -> None:
    assert [c["name"] for c in first_run.clusters] == ["mc-01", "mc-02"]
    assert [c["tunnel_registered"] for c in first_run.clusters] == [True, False]
    assert "mc-01 also hold a reverse tunnel" in first_run.announcement
    assert first_run.exit_code == 0
    assert "stopped; data kept in" in first_run.output


def test_second_local_run_reuses_the_data_and_the_clusters(
    local_run: LocalRun, first_run: FirstRun
) -> None:
    token = _api_token(first_run.announcement)

    second = local_run.start()
    clusters = _wait_for_online(local_run, token, 2)
    local_run.interrupt()

    assert _api_token(second) == token
    assert "reusing enrolled cluster" in local_run.text()
    assert [c["name"] for c in clusters] == ["mc-01", "mc-02"]
