"""stop_all: every process group gets SIGTERM at once, and SIGKILL if it outlives the timeout."""

from __future__ import annotations

import subprocess
import sys
import time
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


def _ends(pid: int, timeout: float = 10.0) -> bool:
    """Whether process `pid` is gone (or a zombie) within `timeout`: its signal may land late."""
    deadline = time.monotonic() + timeout
    status = Path(f"/proc/{pid}/stat")
    while time.monotonic() < deadline:
        if not status.exists() or status.read_text().split()[2] == "Z":
            return True
        time.sleep(0.05)
    return False


def test_every_process_and_its_children_are_stopped() -> None:
    started = [_start(PARENT_AND_CHILD) for _ in range(2)]

    stop_all([process for process, _ in started])

    assert [process.returncode for process, _ in started] == [-15, -15]
    assert all(_ends(int(child)) for _, child in started)


def test_a_process_that_ignores_sigterm_is_killed_after_the_timeout() -> None:
    process, _ = _start(IGNORES_SIGTERM)

    stop_all([process], timeout=0.5)

    assert process.returncode == -9


def test_a_process_that_already_exited_is_left_as_it_is() -> None:
    process = subprocess.Popen([sys.executable, "-c", "pass"], start_new_session=True)
    process.wait()

    stop_all([process])

    assert process.returncode == 0
