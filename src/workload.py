"""Files the charm writes into the cluster-manager container, and the container operations.

The content of every file is built by a pure function of typed inputs (`render_env`,
`tunnel_env`, `front_settings`); `Workload` pushes a file only when it differs from what the
container holds, and tells the caller which files changed so that it restarts or reloads only
what depends on them. Nothing is remembered between hooks: the container is the record.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import ops
from cluster_manager.front import FrontSettings, render_front_config
from cluster_manager.options import format_env_file as format_env_file  # the env file's writer
from cluster_manager.options import option_env, parse_env_file

from charm_config import CharmConfig
from constants import (
    CA_BUNDLE,
    CONFIG_DIR,
    CONNECTOR_CERT,
    CONNECTOR_PORT,
    ENV_FILE,
    HEALTH_PORT,
    MANAGEMENT_CERT,
    MANAGEMENT_PORT,
    METRICS_PORT,
    PUBLIC_CONNECTOR_PORT,
    RUN_DIR,
    TLS_DIR,
    TUNNEL_PORT,
    WORKLOAD_CLI,
)

logger = logging.getLogger(__name__)


def render_env(
    config: CharmConfig, database_url: str, remote_write_urls: Sequence[str] = ()
) -> dict[str, str]:
    """Return the workload settings (docs/workload-contract.md) for the env file.

    The options' own settings come from the option table; the rest are the charm's.
    """
    return {
        **option_env(config),
        "MCM_DATABASE_URL": database_url,
        "MCM_CONNECTOR_PORT": str(PUBLIC_CONNECTOR_PORT),
        "MCM_CONNECTOR_CERT_FILE": CONNECTOR_CERT,
        "MCM_RUN_DIR": RUN_DIR,
        "MCM_METRICS_PORT": str(METRICS_PORT),
        "MCM_REMOTE_WRITE_URLS": ",".join(remote_write_urls),
        "MCM_CA_BUNDLE_FILE": CA_BUNDLE,
    }


def tunnel_env(secret: str | None, internal_address: str) -> dict[str, str]:
    """Return the tunnel process's settings: the units' shared secret and where they reach us.

    The other units forward requests for the tunnels this unit holds to
    `internal_address:TUNNEL_PORT`, the address this unit publishes in the peer relation.
    Without the secret (None until the leader created it) there is no MCM_TUNNEL_SECRET: the
    tunnel service is not planned, and the management app refuses to forward.
    """
    env = {"MCM_INTERNAL_ADDRESS": internal_address, "MCM_TUNNEL_PORT": str(TUNNEL_PORT)}
    if secret is not None:
        env["MCM_TUNNEL_SECRET"] = secret
    return env


def front_settings(config: CharmConfig, proxy_protocol: bool) -> FrontSettings:
    """Return the front's settings; behind Traefik, expect PROXY headers from trusted-proxies.

    HAProxy runs as root under Pebble, as the gunicorn sockets (mode 0770, root) need.
    """
    return FrontSettings(
        management_port=MANAGEMENT_PORT,
        connector_port=CONNECTOR_PORT,
        health_port=HEALTH_PORT,
        metrics_port=METRICS_PORT,
        management_cert=MANAGEMENT_CERT,
        connector_cert=CONNECTOR_CERT,
        run_dir=RUN_DIR,
        proxy_protocol=proxy_protocol,
        trusted_proxies=config.trusted_proxy_networks if proxy_protocol else (),
        rate_limit_connector=config.rate_limit_connector,
        rate_limit_management=config.rate_limit_management,
        connector_max_body_bytes=config.connector_max_body_size * 1024 * 1024,
    )


def render_front(config: CharmConfig, proxy_protocol: bool) -> str:
    """Return haproxy.cfg, rendered by the workload's own renderer."""
    return render_front_config(front_settings(config, proxy_protocol))


@dataclasses.dataclass(frozen=True)
class WorkloadFile:
    """A file the charm owns in the container."""

    path: str
    content: str | None
    """None: the file must not exist."""
    permissions: int = 0o644


class CommandError(Exception):
    """A workload CLI command failed; `exit_code` as `cluster_manager.exit_codes` lists them.

    `exit_code` is None when it did not run to an exit (Pebble error, timeout) or printed
    invalid JSON.
    """

    def __init__(self, exit_code: int | None, message: str):
        super().__init__(message)
        self.exit_code = exit_code
        self.message = message


class Workload:
    """Operations on the cluster-manager container through Pebble."""

    def __init__(self, container: ops.Container):
        self.container = container

    def prepare_directories(self) -> None:
        """Create the directories the files and the processes need."""
        for path, mode in ((CONFIG_DIR, 0o755), (TLS_DIR, 0o700), (RUN_DIR, 0o755)):
            self.container.make_dir(path, make_parents=True, permissions=mode)

    def sync_files(self, files: Sequence[WorkloadFile]) -> set[str]:
        """Push (or remove) every file that differs from the container's; return their paths."""
        changed: set[str] = set()
        for file in files:
            if self.read(file.path) == file.content:
                continue
            if file.content is None:
                self.container.remove_path(file.path)
            else:
                self.container.push(
                    file.path, file.content, permissions=file.permissions, make_dirs=True
                )
            changed.add(file.path)
        return changed

    def read(self, path: str) -> str | None:
        """Return a file's content, None if it does not exist."""
        try:
            return self.container.pull(path).read()
        except ops.pebble.PathError:
            return None

    def settings(self) -> dict[str, str] | None:
        """Return the settings in the pushed env file, None before it was written."""
        text = self.read(ENV_FILE)
        return parse_env_file(text, ENV_FILE) if text is not None else None

    def run_cli(self, args: Sequence[str], environment: Mapping[str, str]) -> Any:
        """Run `python3 -m cluster_manager <args> --json` and return its decoded output.

        Raises:
            CommandError: the command failed; the message is its stderr.
        """
        command = [*WORKLOAD_CLI, *args, "--json"]
        try:
            process = self.container.exec(command, environment=dict(environment), timeout=120)
            stdout, _ = process.wait_output()
        except ops.pebble.ExecError as error:
            stderr = error.stderr if isinstance(error.stderr, str) else ""
            message = stderr.strip() or f"{args[0]} failed with exit code {error.exit_code}"
            raise CommandError(error.exit_code, message) from None
        except (ops.pebble.ChangeError, ops.pebble.APIError, ops.pebble.TimeoutError) as error:
            raise CommandError(None, f"{args[0]} could not run: {error}") from None
        try:
            return json.loads(stdout)
        except json.JSONDecodeError:
            raise CommandError(None, f"{args[0]} printed invalid JSON: {stdout!r}") from None

    def running_services(self) -> set[str]:
        """Return the names of the services Pebble reports as running."""
        return {name for name, info in self.container.get_services().items() if info.is_running()}
