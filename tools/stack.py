"""The workload as it runs in the container: the HAProxy front before the apps and the tunnel.

Everything lives under one directory (certificates, env file, haproxy.cfg, sockets), laid out
like the charm lays it out in the container. The tests, the local run mode and the benchmark
all start the workload through this one class.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import requests
from cluster_manager import service
from cluster_manager.db.migrate import migrate
from cluster_manager.db.pool import STATEMENT_TIMEOUT_SECONDS, DbConnection, connect
from cluster_manager.front import FrontSettings, render_front_config
from cluster_manager.options import format_env_file
from cluster_manager.settings import Settings

from tools import pki
from tools.ports import free_port, wait_for_port
from tools.processes import stop_all

CONNECTOR_DOMAIN = "cc.mcm.test"
MANAGEMENT_DOMAIN = "cm.mcm.test"
MODULES = {
    "management": ("cluster_manager", "serve", "management"),
    "connector": ("cluster_manager", "serve", "connector"),
    "tunnel": ("cluster_manager.tunnel",),
    "forwarder": ("cluster_manager.forwarding",),
}
"""`python -m` arguments of each workload process, as the charm's Pebble layer runs them."""
APPS = ("management", "connector", "tunnel")
"""The processes a stack runs by default (the forwarder comes with the connector)."""

T = TypeVar("T")


class Stack:
    """The front + management + connector + tunnel against one database, on loopback ports."""

    def __init__(
        self,
        root: Path,
        database_url: str,
        *,
        env: Mapping[str, str] | None = None,
        proxy_protocol: bool = False,
        connector_identity: pki.CertKey | None = None,
        management_identity: pki.CertKey | None = None,
        connector_domain: str = CONNECTOR_DOMAIN,
        ports: tuple[int, int, int] | None = None,
        apps: tuple[str, ...] = APPS,
        front_options: Mapping[str, Any] | None = None,
    ):
        """Describe a stack; nothing starts before `start()`.

        Args:
            root: directory for every file and socket of this stack.
            database_url: the PostgreSQL database to use (migrated on start).
            env: extra `MCM_*` settings.
            proxy_protocol: expect PROXY protocol headers (as behind Traefik).
            connector_identity: the connector certificate; a new one if omitted.
            management_identity: the management certificate; a new one if omitted.
            connector_domain: the connector host name put in join tokens.
            ports: management, connector and health ports; free ones if omitted.
            apps: which of `APPS` to run.
            front_options: FrontSettings fields to override (timeouts, body limits).
        """
        self.root = root
        self.database_url = database_url
        self.connector_domain = connector_domain
        self.management_port, self.connector_port, self.health_port = ports or (
            free_port(),
            free_port(),
            free_port(),
        )
        self.metrics_port = free_port()
        self.tunnel_port = free_port()
        self.tls_dir = root / "tls"
        self.run_dir = root / "run"
        self.env_file = root / "cluster-manager.env"
        self.front_config = root / "haproxy.cfg"
        self.logs_dir = root / "logs"
        self.proxy_protocol = proxy_protocol
        self.apps = apps
        self.connector_identity = connector_identity or pki.self_signed(
            connector_domain, dns_names=[connector_domain]
        )
        self.management_identity = management_identity or pki.self_signed(
            MANAGEMENT_DOMAIN,
            dns_names=[MANAGEMENT_DOMAIN, "localhost"],
            ip_addresses=["127.0.0.1"],
        )
        self.env = {
            "MCM_DATABASE_URL": database_url,
            "MCM_CONNECTOR_DOMAIN": connector_domain,
            "MCM_CONNECTOR_PORT": str(self.connector_port),
            "MCM_CONNECTOR_CERT_FILE": str(self.tls_dir / "connector.crt"),
            "MCM_RUN_DIR": str(self.run_dir),
            "MCM_LOG_LEVEL": "info",
            "MCM_WORKERS": "2",
            "MCM_METRICS_PORT": str(self.metrics_port),
            "MCM_TUNNEL_SECRET": secrets.token_hex(32),
            "MCM_TUNNEL_PORT": str(self.tunnel_port),
            "MCM_INTERNAL_ADDRESS": "127.0.0.1",
            **(env or {}),
        }
        self.front_options = dict(front_options or {})
        self._processes: dict[str, subprocess.Popen[bytes]] = {}

    # -- addresses ---------------------------------------------------------------------------

    @property
    def connector_address(self) -> str:
        """The address put in join tokens (e.g. `cc.mcm.test:<port>`)."""
        return f"{self.connector_domain}:{self.connector_port}"

    @property
    def resolve(self) -> dict[str, tuple[str, int]]:
        """How a MicroCloud emulator reaches the connector address on loopback."""
        return {self.connector_address: ("127.0.0.1", self.connector_port)}

    @property
    def management_url(self) -> str:
        """Base URL of the management API through the front."""
        return f"https://127.0.0.1:{self.management_port}"

    @property
    def metrics_url(self) -> str:
        """This stack's own metrics, on the front's plain-HTTP metrics listener."""
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    @property
    def management_ca(self) -> str:
        """Path of the certificate that verifies the management listener."""
        return str(self.tls_dir / "management.crt")

    # -- lifecycle ---------------------------------------------------------------------------

    def write_files(self) -> None:
        """Certificates, env file and haproxy.cfg, as the charm writes them."""
        for directory in (self.tls_dir, self.run_dir, self.logs_dir):
            directory.mkdir(parents=True, exist_ok=True)
        self.connector_identity.write(self.tls_dir, "connector")
        self.management_identity.write(self.tls_dir, "management")
        self.env_file.write_text(format_env_file(self.env))
        self.env_file.chmod(0o600)
        self.front_config.write_text(render_front_config(self.front_settings()))

    def front_settings(self) -> FrontSettings:
        """The front's settings for this stack: limits as the env file has them (as the charm)."""
        settings = Settings.from_env(self.env)
        return FrontSettings(
            management_cert=str(self.tls_dir / "management.crt"),
            connector_cert=str(self.tls_dir / "connector.crt"),
            run_dir=str(self.run_dir),
            management_port=self.management_port,
            connector_port=self.connector_port,
            health_port=self.health_port,
            metrics_port=self.metrics_port,
            proxy_protocol=self.proxy_protocol,
            trusted_proxies=("127.0.0.1/32",) if self.proxy_protocol else (),
            rate_limit_connector=settings.rate_limit_connector,
            rate_limit_management=settings.rate_limit_management,
            connector_max_body_bytes=settings.connector_max_body_bytes,
            **self.front_options,
        )

    def start(self) -> Stack:
        """Migrate, then start the processes and the front; wait until all are ready."""
        self.write_files()
        self.in_database(migrate, statement_timeout=None)
        for app in self.apps:
            self.start_app(app)
        if "connector" in self.apps:
            self.start_app("forwarder")
        self.start_front()
        for name in self._processes:
            if name != "haproxy":
                self.wait_ready(name)
        return self

    def __enter__(self) -> Stack:
        """Start the stack (stopping whatever did start if that fails); stop it on leaving."""
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start_app(self, app: str) -> None:
        """Start one workload process of `MODULES` (a gunicorn app, the tunnel, the forwarder)."""
        self._spawn(app, [sys.executable, "-m", *MODULES[app]])

    def start_front(self) -> None:
        """Start HAProxy in the foreground as master and worker (as Pebble does)."""
        self._spawn("haproxy", ["haproxy", "-W", "-db", "-f", str(self.front_config)])
        wait_for_port(self.health_port)

    def restart_front(self) -> None:
        """Replace the front by a new one, logging to a new file; the apps keep running.

        Nothing of the old front survives (its rate-limit counts, what it knew of the apps),
        so a test gets what a new stack would give it without the apps' start, which is what
        a new stack costs. The old log is kept beside the new one.
        """
        self.stop_process("haproxy")
        log = self.logs_dir / "haproxy.log"
        log.rename(log.with_name(f"haproxy-{time.monotonic_ns()}.log"))
        self.start_front()

    def reload_front(self) -> None:
        """Reload the front's configuration and certificates without dropping connections."""
        self._processes["haproxy"].send_signal(signal.SIGUSR2)

    def stop_process(self, name: str) -> None:
        """Stop one process gracefully (SIGTERM), then wait for it."""
        stop_all([self._processes.pop(name)])

    def kill_process(self, name: str) -> None:
        """Kill one process at once (SIGKILL: a crash, nothing cleaned up), then wait for it."""
        process = self._processes.pop(name)
        process.kill()
        process.wait()

    def stop(self) -> None:
        """Stop everything that is still running, all at once."""
        processes = list(self._processes.values())
        self._processes.clear()
        stop_all(processes)

    def wait_ready(self, app: str, timeout: float = 30.0) -> None:
        """Block until the front reports the app (or the forwarder) alive."""
        deadline = time.monotonic() + timeout
        url = f"http://127.0.0.1:{self.health_port}/health/{app}"
        while time.monotonic() < deadline:
            process = self._processes.get(app)
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"{app} exited: {self.log(app)[-3000:]}")
            try:
                if requests.get(url, timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{app} not alive after {timeout}s: {self.log(app)[-3000:]}")

    def pids(self) -> dict[str, int]:
        """The process id of every running service (gunicorn's and HAProxy's masters)."""
        return {name: process.pid for name, process in self._processes.items()}

    def log(self, name: str) -> str:
        """Everything a process printed so far."""
        path = self.logs_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # -- tools -------------------------------------------------------------------------------

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run the workload CLI with this stack's settings."""
        result = subprocess.run(
            [sys.executable, "-m", "cluster_manager", *args],
            env={**os.environ, "MCM_ENV_FILE": str(self.env_file)},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"cli {args} failed ({result.returncode}): {result.stderr}")
        return result

    # The helpers below call the domain layer the CLI and the API call, in this process: a CLI
    # run starts an interpreter (half a second or more on a busy machine), which tests that
    # mint a token per case would pay hundreds of times. Tests of the CLI itself use `cli`.

    def in_database(
        self,
        work: Callable[[DbConnection], T],
        *,
        statement_timeout: float | None = STATEMENT_TIMEOUT_SECONDS,
    ) -> T:
        """Run `work` on a connection of this stack's database, as a CLI command does."""
        with connect(self.database_url, statement_timeout=statement_timeout) as conn:
            return work(conn)

    def mint_token(self, cluster: str, *, expires_in: float | None = None) -> str:
        """A join token for `cluster`, minted as the operator's CLI mints it."""
        settings = Settings.from_env(self.env)
        expires_at = (
            None if expires_in is None else datetime.now(UTC) + timedelta(seconds=expires_in)
        )
        return self.in_database(
            lambda conn: service.create_join_token(conn, settings, cluster, expires_at=expires_at)
        ).token

    def create_api_token(self, name: str) -> str:
        """A new admin API token called `name`, minted as the operator's CLI mints it."""
        return self.in_database(lambda conn: service.create_api_token(conn, name))

    def remove_cluster(self, name: str) -> None:
        """Forget an enrolled cluster, as the operator's CLI does."""
        self.in_database(lambda conn: service.remove_cluster(conn, name))

    def management_session(self, token: str | None = None) -> requests.Session:
        """An HTTP session to the management API, authenticated by an API token.

        Without `token`, a new admin token is minted for it.
        """
        session = requests.Session()
        # Otherwise REQUESTS_CA_BUNDLE from the environment overrides `verify` (requests #3829).
        session.trust_env = False
        session.verify = self.management_ca
        if token is None:
            token = self.create_api_token(f"tests-{time.monotonic_ns()}")
        session.headers["Authorization"] = f"Bearer {token}"
        return session

    def _spawn(self, name: str, command: list[str]) -> None:
        log = (self.logs_dir / f"{name}.log").open("ab")
        self._processes[name] = subprocess.Popen(
            command,
            env={**os.environ, "MCM_ENV_FILE": str(self.env_file)},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
