"""Run one app under gunicorn on its unix socket (nginx is the only client)."""

from __future__ import annotations

import logging.config
from typing import Any

from gunicorn.app.base import BaseApplication

from .logs import logging_config
from .settings import Settings

APPS = ("management", "connector")


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
            "worker_class": "gthread",
            "threads": self._settings.db_pool_size,
            "keepalive": 75,
            "umask": 0o007,
            "proc_name": f"cluster-manager-{self._app_name}",
            "logconfig_dict": logging_config(self._settings.log_level),
            "accesslog": None,
            "graceful_timeout": 10,
            "timeout": 60,
            # gunicorn's control socket defaults to one per home directory, shared by every
            # gunicorn on the host; we never use it.
            "control_socket_disable": True,
        }
        for key, value in options.items():
            self.cfg.set(key, value)  # type: ignore[union-attr]

    def load(self) -> Any:
        from . import app

        factory = getattr(app, f"create_{self._app_name}_app")
        return factory(self._settings)


def serve(app_name: str, settings: Settings) -> None:
    """Block serving `app_name` until gunicorn is told to stop."""
    if app_name not in APPS:
        raise ValueError(f"unknown app {app_name!r}; expected one of {', '.join(APPS)}")
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    logging.config.dictConfig(logging_config(settings.log_level))
    _Server(app_name, settings).run()
