"""Scenario (ops.testing) building blocks for the charm's unit tests.

ops.testing does not load config.yaml and actions.yaml on its own (design D12), so every
context is built from the three files at the top of the repository.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import datetime
import functools
import json
import os
import secrets
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from charmlibs.interfaces.tls_certificates import (
    Certificate,
    CertificateRequestAttributes,
    CertificateSigningRequest,
    PrivateKey,
)
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from ops import pebble, testing

from charm import ClusterManagerCharm
from connector_identity import ConnectorIdentity, generate_identity

ROOT = Path(__file__).resolve().parents[2]
APP = "microcloud-cluster-manager-k8s"
MODEL = "mcm"
CONTAINER = "cluster-manager"
PEERS = "cluster-manager-peers"
MANAGEMENT_DOMAIN = "cm.example.com"
CONNECTOR_DOMAIN = "cc.example.com"
CONFIG = {"management-api-domain": MANAGEMENT_DOMAIN, "cluster-connector-domain": CONNECTOR_DOMAIN}
CLUSTER_DOMAIN = "k8s.example.net"
"""Not Kubernetes' default `cluster.local`, so that nothing may assume the default."""
DB_ENDPOINT = f"postgresql-k8s-primary.mcm.svc.{CLUSTER_DOMAIN}:5432"
MIGRATE_OUTPUT = json.dumps({"version": 3, "applied": [1, 2, 3]})
SERVICES = ("haproxy", "management", "connector", "forwarder", "tunnel")
APP_SECRET_LABELS = ("connector-identity", "tunnel-secret")
"""The application secrets the leader creates and every unit reads."""
WITHOUT_TUNNELS = testing.WaitingStatus(
    "waiting for the leader to create the tunnel secret; serving without reverse tunnels"
    f" (juju status {APP})"
)
"""The status of a unit that serves all but the tunnel, for want of its secret."""


def load_yaml(name: str) -> dict:
    """A repository YAML file, parsed once per run (every test builds a context from three)."""
    return copy.deepcopy(_parsed_yaml(name))


@functools.cache
def _parsed_yaml(name: str) -> dict:
    return yaml.safe_load((ROOT / name).read_text())


def make_context() -> testing.Context[ClusterManagerCharm]:
    """Return a context for our charm, with metadata, config and actions from the repository."""
    return testing.Context(
        ClusterManagerCharm,
        meta=load_yaml("charmcraft.yaml"),
        config=load_yaml("config.yaml"),
        actions=load_yaml("actions.yaml"),
        app_name=APP,
    )


def cli(*args: str) -> list[str]:
    return ["python3", "-m", "cluster_manager", *args]


def migrate_exec(return_code: int = 0, stderr: str = "") -> testing.Exec:
    stdout = MIGRATE_OUTPUT if return_code == 0 else ""
    return testing.Exec(cli("migrate"), return_code=return_code, stdout=stdout, stderr=stderr)


def prune_exec(return_code: int = 0, stderr: str = "", removed: int = 0) -> testing.Exec:
    stdout = json.dumps({"removed": removed, "retention_days": 30}) if return_code == 0 else ""
    return testing.Exec(
        cli("prune-history"), return_code=return_code, stdout=stdout, stderr=stderr
    )


def workload_container(*execs: testing.Exec, can_connect: bool = True) -> testing.Container:
    """Return the workload container; /etc/cluster-manager keeps its files from run to run."""
    config_dir = Path(tempfile.mkdtemp(prefix="mcm-unit-etc-"))
    return testing.Container(
        CONTAINER,
        can_connect=can_connect,
        execs={migrate_exec(), *execs},
        mounts={"config": testing.Mount(location="/etc/cluster-manager", source=config_dir)},
    )


def workload_file(container: testing.Container, path: str) -> Path:
    """Return the local path of a file the charm wrote under /etc/cluster-manager."""
    return Path(container.mounts["config"].source) / path.removeprefix("/etc/cluster-manager/")


def database_relation(
    ready: bool = True,
    password: str = "s3cret",  # noqa: S107 (test data)
) -> tuple[testing.Relation, testing.Secret]:
    """Return the database relation and the provider's user secret.

    The databag is what postgresql-k8s 16 writes once the database exists (its
    `src/relations/postgresql_provider.py`, through data_interfaces): no plain-text
    credentials, the user in `secret-user`; test_relations adds `secret-tls` where TLS matters.
    """
    secret = testing.Secret({"username": "relation_id_5", "password": password})
    data = (
        {
            "database": "cluster_manager",
            "endpoints": DB_ENDPOINT,
            "read-only-endpoints": DB_ENDPOINT.replace("-primary.", "-replicas."),
            "version": "16.9",
            "secret-user": secret.id,
        }
        if ready
        else {}
    )
    relation = testing.Relation("database", remote_app_name="postgresql-k8s", remote_app_data=data)
    return relation, secret


def database_tls_secret(ca_pem: str = "", tls: str = "True") -> testing.Secret:
    """Return the provider's `secret-tls`: the TLS flag and, unless empty, the CA (`tls-ca`)."""
    return testing.Secret({"tls": tls, "tls-ca": ca_pem} if ca_pem else {"tls": tls})


def certificates_relation() -> testing.Relation:
    return testing.Relation("certificates", remote_app_name="self-signed-certificates")


def traefik_relation() -> testing.Relation:
    return testing.Relation(
        "traefik-route",
        remote_app_name="traefik-k8s",
        remote_app_data={"external_host": "10.1.2.3", "scheme": "http"},
    )


def peer_relation(peers: dict[int, dict[str, str]] | None = None) -> testing.PeerRelation:
    return testing.PeerRelation(PEERS, peers_data=peers or {})


def peer_address(unit_id: int) -> str:
    """The host name a unit's pod resolves for itself: Juju's headless service name."""
    return f"{APP}-{unit_id}.{APP}-endpoints.{MODEL}.svc.{CLUSTER_DOMAIN}"


@contextlib.contextmanager
def pod_host_names() -> Iterator[None]:
    """Make `socket.getfqdn()` answer, inside a charm run, what the running unit's pod would.

    Scenario sets JUJU_UNIT_NAME for the run; outside a run the host's own answer stays.
    """
    original = socket.getfqdn

    def getfqdn(name: str = "") -> str:
        unit = os.environ.get("JUJU_UNIT_NAME")
        if name or unit is None:
            return original(name)
        return peer_address(int(unit.rpartition("/")[2]))

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket, "getfqdn", getfqdn)
        yield


@contextlib.contextmanager
def private_keys_parsed_once() -> Iterator[None]:
    """Make cryptography parse each PEM private key once, however often it is loaded.

    The tls_certificates library loads the unit's RSA key from its secret in every hook (and
    the CA's for every signature), and cryptography checks an RSA key's primes on each load:
    about 40 ms a time, a third of the charm tests' time. A key object cannot change, so
    handing the same one back for the same PEM changes nothing else.
    """
    load = serialization.load_pem_private_key
    parsed: dict[tuple[bytes, bytes | None, bool], PrivateKeyTypes] = {}

    def load_once(
        data: bytes,
        password: bytes | None = None,
        backend: Any = None,
        *,
        unsafe_skip_rsa_key_validation: bool = False,
    ) -> PrivateKeyTypes:
        key = (bytes(data), password, unsafe_skip_rsa_key_validation)
        if key not in parsed:
            parsed[key] = load(
                data,
                password,
                backend,
                unsafe_skip_rsa_key_validation=unsafe_skip_rsa_key_validation,
            )
        return parsed[key]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(serialization, "load_pem_private_key", load_once)
        yield


@dataclasses.dataclass
class SigningCA:
    """A CA that signs the charm's certificate requests like self-signed-certificates does."""

    key: PrivateKey = dataclasses.field(default_factory=PrivateKey.generate)

    def __post_init__(self) -> None:
        self.certificate = Certificate.generate_self_signed_ca(
            CertificateRequestAttributes(common_name="test-ca"),
            self.key,
            datetime.timedelta(days=365),
        )

    def sign_all(self, state: testing.State, relation: testing.Relation) -> testing.Relation:
        """Return `relation` (from `state`) with every CSR of our unit signed by this CA."""
        current: Any = state.get_relation(relation.id)
        requests = json.loads(current.local_unit_data.get("certificate_signing_requests", "[]"))
        issued = []
        for request in requests:
            csr = CertificateSigningRequest.from_string(request["certificate_signing_request"])
            cert = Certificate.generate(csr, self.certificate, self.key, datetime.timedelta(90))
            issued.append(
                {
                    "ca": str(self.certificate),
                    "certificate_signing_request": str(csr),
                    "certificate": str(cert),
                    "chain": [str(cert), str(self.certificate)],
                }
            )
        return dataclasses.replace(current, remote_app_data={"certificates": json.dumps(issued)})


@dataclasses.dataclass
class Deployment:
    """A fully integrated unit's state and the relations in it, ready for one more event."""

    state: testing.State
    database: testing.Relation
    database_secret: testing.Secret
    certificates: testing.Relation
    traefik: testing.Relation
    peers: testing.PeerRelation

    def relation(self, relation: testing.Relation | testing.PeerRelation) -> Any:
        """Return the current version of `relation` (a Relation or PeerRelation)."""
        return self.state.get_relation(relation.id)

    @property
    def container(self) -> testing.Container:
        return self.state.get_container(CONTAINER)


def deploy(
    ctx: testing.Context[ClusterManagerCharm],
    ca: SigningCA,
    leader: bool = True,
    peers: dict[int, dict[str, str]] | None = None,
    peer_app_data: dict[str, str] | None = None,
    secrets: tuple[testing.Secret, ...] = (),
) -> Deployment:
    """Run the hooks of a complete deployment: relations created, certificate issued.

    Returns the state after the certificate arrived, with the secrets carried forward.
    """
    database, database_secret = database_relation()
    certificates = certificates_relation()
    traefik = traefik_relation()
    peer = dataclasses.replace(peer_relation(peers), local_app_data=peer_app_data or {})
    state = testing.State(
        leader=leader,
        config=CONFIG,
        model=testing.Model(name=MODEL),
        containers={workload_container()},
        relations={database, certificates, traefik, peer},
        secrets={database_secret, *secrets},
    )
    state = ctx.run(ctx.on.relation_created(certificates), state)
    signed = ca.sign_all(state, certificates)
    state = dataclasses.replace(
        state, relations={*(r for r in state.relations if r.id != certificates.id), signed}
    )
    state = ctx.run(ctx.on.relation_changed(signed), state)
    return Deployment(state, database, database_secret, signed, traefik, peer)


def app_secrets(state: testing.State) -> tuple[testing.Secret, ...]:
    """Return the application secrets the leader created in `state`."""
    return tuple(s for s in state.secrets if s.label in APP_SECRET_LABELS)


def follower(
    ctx: testing.Context[ClusterManagerCharm],
    ca: SigningCA,
    leader: Deployment,
    peer_app_data: dict[str, str] | None = None,
) -> Deployment:
    """Deploy a non-leader unit that sees what `leader` published.

    That is the leader's app secrets and its peer app data (or `peer_app_data` instead).
    """
    if peer_app_data is None:
        peer_app_data = dict(leader.relation(leader.peers).local_app_data)
    return deploy(
        ctx, ca, leader=False, peer_app_data=peer_app_data, secrets=app_secrets(leader.state)
    )


def running(container: testing.Container) -> testing.Container:
    """Return `container` with every service reported as running."""
    return dataclasses.replace(
        container, service_statuses=dict.fromkeys(SERVICES, pebble.ServiceStatus.ACTIVE)
    )


def replace_relation(state: testing.State, relation: testing.RelationBase) -> testing.State:
    """Return `state` with the relation of the same id replaced by `relation`."""
    others = {r for r in state.relations if r.id != relation.id}
    return dataclasses.replace(state, relations={*others, relation})


def replace_container(state: testing.State, container: testing.Container) -> testing.State:
    return dataclasses.replace(state, containers={container})


# -- what an older revision leaves behind for `juju refresh` ---------------------------------

PREVIOUS_SERVICES = ("nginx", "management", "connector")
"""The services of the revision before HAProxy: nginx was the TLS front."""
PREVIOUS_SCHEMA_VERSION = "2"
"""The schema version the older revision's image migrated to (MIGRATE_OUTPUT ships 3)."""
ADDED_SINCE = (
    "MCM_OFFLINE_AFTER",
    "MCM_CONNECTOR_MAX_BODY_MIB",
    "MCM_TUNNEL_SECRET",
    "MCM_INTERNAL_ADDRESS",
    "MCM_TUNNEL_PORT",
)
"""Env file settings the older revision did not write yet."""


def previous_layer() -> pebble.Layer:
    """Return the Pebble layer of the revision before HAProxy, with nginx as the TLS front.

    As `git show 5fffb43:src/pebble_layer.py` builds it, with the constants of that revision.
    """

    def check(level: str, path: str) -> pebble.CheckDict:
        return {
            "override": "replace",
            "level": level,
            "period": "10s",
            "timeout": "3s",
            "threshold": 3,
            "http": {"url": f"http://127.0.0.1:8081{path}"},
        }

    def app(name: str) -> pebble.ServiceDict:
        return {
            "override": "replace",
            "summary": f"cluster manager {name} (gunicorn on a unix socket)",
            "command": f"python3 -m cluster_manager serve {name}",
            "startup": "enabled",
            "after": ["nginx"],
            "environment": {"MCM_ENV_FILE": "/etc/cluster-manager/cluster-manager.env"},
            "on-check-failure": {f"{name}-alive": "restart"},
        }

    layer: pebble.LayerDict = {
        "summary": "MicroCloud Cluster Manager",
        "description": "nginx in front of the management and connector applications",
        "services": {
            "nginx": {
                "override": "replace",
                "summary": "nginx: TLS for the management API and the cluster connector",
                "command": "nginx -e stderr -p /run/cluster-manager/nginx"
                ' -c /etc/cluster-manager/nginx.conf -g "daemon off;"',
                "startup": "enabled",
                "on-check-failure": {"nginx-alive": "restart"},
            },
            "management": app("management"),
            "connector": app("connector"),
        },
        "checks": {
            "nginx-alive": check("alive", "/health/nginx"),
            "management-alive": check("alive", "/health/management"),
            "management-ready": check("ready", "/ready/management"),
            "connector-alive": check("alive", "/health/connector"),
            "connector-ready": check("ready", "/ready/connector"),
        },
    }
    return pebble.Layer(layer)


def connector_identity_secret() -> testing.Secret:
    """Return the connector identity's app secret, as the leader of any revision created it."""
    identity = generate_identity(CONNECTOR_DOMAIN)
    return testing.Secret(
        {"certificate": identity.certificate, "private-key": identity.private_key},
        owner="app",
        label="connector-identity",
    )


def tunnel_secrets(state: testing.State) -> list[testing.Secret]:
    """The tunnel secrets in `state` (the leader creates exactly one)."""
    return [s for s in state.secrets if s.label == "tunnel-secret"]


def tunnel_secret() -> testing.Secret:
    """Return the tunnel secret's app secret, as the leader creates it."""
    return testing.Secret(
        {"tunnel-secret": secrets.token_hex(32)}, owner="app", label="tunnel-secret"
    )


def older_revision(
    ctx: testing.Context[ClusterManagerCharm],
    ca: SigningCA,
    leader: bool = True,
    pod_replaced: bool = False,
    old_services_running: bool = True,
    tunnel_secret_created: bool | None = None,
) -> Deployment:
    """Return the state a unit of the older revision (nginx front) leaves for `upgrade-charm`.

    What Juju keeps across `juju refresh` is that revision's: the relations and their data,
    the connector identity's app secret and, in the peer app databag, its id, fingerprint
    and the schema version and database the leader migrated. (Only the front changed since,
    so the relation data is built by running today's charm, then the peer app data and the
    container are put back as the older revision left them.)

    Args:
        ctx: the context of the unit.
        ca: the CA of the `certificates` relation.
        leader: whether the unit is the leader.
        pod_replaced: what `juju refresh` does on Kubernetes: the pod is re-created from the
            new image, so Pebble starts with an empty plan and the container's files are gone.
            Otherwise the container is the older revision's: its Pebble plan
            (`previous_layer()`), its services and the files it pushed (the env file without
            the settings added since, nginx.conf instead of haproxy.cfg).
        old_services_running: whether that container's services still run.
        tunnel_secret_created: whether the new revision's leader has already created the
            tunnel secret (the older revision had none). By default, a non-leader finds it:
            its upgrade came after the leader's.
    """
    if tunnel_secret_created is None:
        tunnel_secret_created = not leader
    secret = connector_identity_secret()
    tunnel = tunnel_secret()
    identity = ConnectorIdentity(
        secret.tracked_content["certificate"], secret.tracked_content["private-key"]
    )
    app_data = {
        "connector-secret-id": secret.id,
        "connector-fingerprint": identity.fingerprint,
        "schema-version": PREVIOUS_SCHEMA_VERSION,
        "schema-database": f"cluster_manager@{DB_ENDPOINT}",
    }
    # Today's charm writes the files the older container is made of, so it needs the tunnel
    # secret; the state keeps it only if it was created.
    tunnel_data = {"tunnel-secret-id": tunnel.id}
    deployed = deploy(
        ctx,
        ca,
        leader=leader,
        peers={1: {"address": peer_address(1)}},
        peer_app_data={**app_data, **tunnel_data},
        secrets=(secret, tunnel),
    )
    if tunnel_secret_created:
        app_data.update(tunnel_data)
    peers = dataclasses.replace(deployed.relation(deployed.peers), local_app_data=app_data)
    state = replace_relation(deployed.state, peers)
    if not tunnel_secret_created:
        state = dataclasses.replace(state, secrets={s for s in state.secrets if s.id != tunnel.id})
    if pod_replaced:
        container = workload_container()
    else:
        container = previous_container(deployed.container, old_services_running)
    return dataclasses.replace(deployed, state=replace_container(state, container), peers=peers)


def previous_container(today: testing.Container, services_running: bool) -> testing.Container:
    """Return the container as the older revision left it, from the files today's charm wrote."""
    old_dir = Path(tempfile.mkdtemp(prefix="mcm-unit-etc-"))
    shutil.copytree(today.mounts["config"].source, old_dir, dirs_exist_ok=True)
    (old_dir / "haproxy.cfg").unlink()
    (old_dir / "nginx.conf").write_text("# nginx.conf of the older revision\n")
    env = old_dir / "cluster-manager.env"
    lines = env.read_text().splitlines(keepends=True)
    env.write_text("".join(line for line in lines if line.split("=")[0] not in ADDED_SINCE))
    status = pebble.ServiceStatus.ACTIVE if services_running else pebble.ServiceStatus.INACTIVE
    checks = previous_layer().checks
    return testing.Container(
        CONTAINER,
        can_connect=True,
        layers={"cluster-manager": previous_layer()},
        service_statuses=dict.fromkeys(PREVIOUS_SERVICES, status),
        check_infos={
            testing.CheckInfo(name, level=check.level, status=pebble.CheckStatus.UP)
            for name, check in checks.items()
        }
        if services_running
        else frozenset(),
        execs={migrate_exec()},
        mounts={"config": testing.Mount(location="/etc/cluster-manager", source=old_dir)},
    )
