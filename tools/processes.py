"""Stopping the workload's processes (the front, the gunicorn apps), each in its own session."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence


def stop_all(processes: Sequence[subprocess.Popen[bytes]], timeout: float = 15.0) -> None:
    """SIGTERM every process's group at once, then wait; SIGKILL a group still there at `timeout`.

    Each process must lead its own group (`start_new_session=True`), so that a gunicorn's
    workers are stopped with it. All are signalled before any is waited for: a gunicorn takes
    most of a second to stop (its workers' interpreters tear down), and one after another
    those seconds add up on every stack a test run starts.
    """
    for process in processes:
        _signal_group(process, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for process in processes:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _signal_group(process, signal.SIGKILL)
            process.wait()


def _signal_group(process: subprocess.Popen[bytes], signum: signal.Signals) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signum)
