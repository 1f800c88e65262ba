"""Scenario (ops.testing) building blocks for the charm's unit tests.

ops.testing does not load config.yaml and actions.yaml on its own (design D12), so every
context is built from the three files at the top of the repository.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import os
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
from ops import pebble, testing

from charm import ClusterManagerCharm

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
SERVICES = ("haproxy", "management", "connector")


def load_yaml(name: str) -> dict:
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
    """Return the database relation and the provider's user secret."""
    secret = testing.Secret({"username": "relation_id_5", "password": password})
    data = (
        {"database": "cluster_manager", "endpoints": DB_ENDPOINT, "secret-user": secret.id}
        if ready
        else {}
    )
    relation = testing.Relation("database", remote_app_name="postgresql-k8s", remote_app_data=data)
    return relation, secret


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
