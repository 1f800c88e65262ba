"""stop_all: every process group gets SIGTERM at once, and SIGKILL if it outlives the timeout."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tools.processes import stop_all

# Prints its child's pid, then waits; the child waits too (like a gunicorn and its worker).
PARENT_AND_CHILD = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
print(child.pid, flush=True)
time.sleep(60)
"""
IGNORES_SIGTERM = """
import signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("ready", flush=True)
time.sleep(60)
"""


def _start(code: str) -> tuple[subprocess.Popen[bytes], str]:
    process = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, start_new_session=True
    )
    assert process.stdout is not None
    return process, process.stdout.readline().decode().strip()


def _alive(pid: int) -> bool:
    status = Path(f"/proc/{pid}/stat")
    # A child whose parent died is reaped by init; until then it may linger as a zombie.
    return status.exists() and status.read_text().split()[2] != "Z"


def test_every_process_and_its_children_are_stopped() -> None:
    started = [_start(PARENT_AND_CHILD) for _ in range(2)]

    stop_all([process for process, _ in started])

    assert [process.returncode for process, _ in started] == [-15, -15]
    assert not any(_alive(int(child)) for _, child in started)


def test_a_process_that_ignores_sigterm_is_killed_after_the_timeout() -> None:
    process, _ = _start(IGNORES_SIGTERM)

    stop_all([process], timeout=0.5)

    assert process.returncode == -9


def test_a_process_that_already_exited_is_left_as_it_is() -> None:
    process = subprocess.Popen([sys.executable, "-c", "pass"], start_new_session=True)
    process.wait()

    stop_all([process])

    assert process.returncode == 0
