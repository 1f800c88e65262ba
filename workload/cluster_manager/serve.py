"""Run one app under gunicorn on its unix socket (the HAProxy front is the only client)."""

from __future__ import annotations

import gc
import logging.config
from typing import Any

from gunicorn.app.base import BaseApplication

from .logs import logging_config
from .metric_files import enable_metric_files
from .settings import Settings

APPS = ("management", "connector")


# The connector serves short requests, so plain synchronous workers fit it best: measured on
# 2 cores they carry about a third more heartbeats than threaded ones, at half the p99
# (tools/bench.py). HAProxy passes a body on as it arrives (it buffers 16 KiB, not whole
# bodies as nginx did), so a client that trickles a large body holds a worker while it does.
# The management app makes outgoing calls (OIDC) that may wait on the network, so it keeps
# threads.
_WORKER_MODEL: dict[str, dict[str, Any]] = {
    "connector": {"worker_class": "sync", "keepalive": 0},
    "management": {"worker_class": "gthread", "threads": 4, "keepalive": 75},
}


class _Server(BaseApplication):
    def __init__(self, app_name: str, settings: Settings):
        self._app_name = app_name
        self._settings = settings
        super().__init__()

    def load_config(self) -> None:
        socket = self._settings.run_dir / f"{self._app_name}.sock"
        options: dict[str, Any] = {
            "bind": f"unix:{socket}",
            "workers": self._settings.workers,
            **_WORKER_MODEL[self._app_name],
            "umask": 0o007,
            "proc_name": f"cluster-manager-{self._app_name}",
            "logconfig_dict": logging_config(self._settings.log_level),
            "accesslog": None,
            "graceful_timeout": 10,
            "timeout": 60,
            # gunicorn's control socket defaults to one per home directory, shared by every
            # gunicorn on the host; we never use it.
            "control_socket_disable": True,
            "child_exit": _child_exit,
        }
        for key, value in options.items():
            self.cfg.set(key, value)  # type: ignore[union-attr]

    def load(self) -> Any:
        from . import factories

        factory = getattr(factories, f"create_{self._app_name}_app")
        return factory(self._settings)


def _child_exit(_server: Any, worker: Any) -> None:
    from .metrics import worker_exited

    worker_exited(worker.pid)


def serve(app_name: str, settings: Settings) -> None:
    """Block serving `app_name` until gunicorn is told to stop."""
    if app_name not in APPS:
        raise ValueError(f"unknown app {app_name!r}; expected one of {', '.join(APPS)}")
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    enable_metric_files(settings.run_dir, app_name)
    logging.config.dictConfig(logging_config(settings.log_level))
    # Import the apps' modules (Flask, pydantic, psycopg, …) here, in the master, but create
    # no app (no pool, no thread): forked workers then share those pages instead of each
    # importing its own copy, and gc.freeze() keeps the collector from dirtying them.
    from . import factories  # noqa: F401

    gc.freeze()
    _Server(app_name, settings).run()
