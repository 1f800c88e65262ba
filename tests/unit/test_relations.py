"""Relation data in both directions: database, certificates, receive-ca-cert, traefik-route."""

from __future__ import annotations

import dataclasses
import json

import pytest
import yaml
from charms.microcloud_cluster_manager_k8s.v0.postgresql_client import DatabaseCredentials
from ops import testing

from tests.unit.builders import (
    APP,
    CONFIG,
    DB_ENDPOINT,
    MODEL,
    Deployment,
    SigningCA,
    database_relation,
    database_tls_secret,
    deploy,
    follower,
    peer_address,
    replace_relation,
    workload_container,
    workload_file,
)
from tests.unit.conftest import PebbleCalls

ENV_FILE = "/etc/cluster-manager/cluster-manager.env"
DATABASE_CA = "/etc/cluster-manager/tls/database-ca.crt"
PREFIX = f"juju-{MODEL}-{APP}"


def route(deployment_state: testing.State, relation: testing.Relation) -> dict:
    return yaml.safe_load(deployment_state.get_relation(relation.id).local_app_data["config"])


def servers(config: dict, role: str) -> list[str]:
    service = config["tcp"]["services"][f"{PREFIX}-{role}"]
    return [server["address"] for server in service["loadBalancer"]["servers"]]


# database


def test_leader_requests_the_database_with_secret_credentials(ctx):
    database, _ = database_relation(ready=False)
    state = testing.State(
        leader=True, config=CONFIG, relations={database}, containers={workload_container()}
    )

    out = ctx.run(ctx.on.relation_created(database), state)

    assert out.get_relation(database.id).local_app_data == {
        "database": "cluster_manager",
        "requested-secrets": json.dumps(["username", "password", "tls", "tls-ca", "uris"]),
    }


def test_non_leader_does_not_write_the_database_request(ctx):
    database, _ = database_relation(ready=False)
    state = testing.State(
        leader=False, config=CONFIG, relations={database}, containers={workload_container()}
    )

    out = ctx.run(ctx.on.relation_created(database), state)

    assert out.get_relation(database.id).local_app_data == {}


def test_password_rotation_rewrites_the_env_and_restarts_the_apps(
    ctx, ca: SigningCA, pebble_calls: PebbleCalls
):
    deployment = deploy(ctx, ca)
    rotated = dataclasses.replace(
        deployment.database_secret,
        tracked_content={"username": "relation_id_5", "password": "n3w"},
        latest_content={"username": "relation_id_5", "password": "n3w"},
    )
    state = dataclasses.replace(
        deployment.state,
        secrets={*(s for s in deployment.state.secrets if s.id != rotated.id), rotated},
    )
    pebble_calls.calls.clear()

    out = ctx.run(ctx.on.secret_changed(rotated), state)

    env = workload_file(out.get_container("cluster-manager"), ENV_FILE).read_text()
    assert ":n3w@postgresql-k8s-primary" in env
    assert pebble_calls.calls == [("restart", ("management", "connector", "forwarder", "tunnel"))]


def with_database_tls(
    deployment: Deployment, secret: testing.Secret, endpoint: str = DB_ENDPOINT
) -> tuple[testing.State, testing.Relation]:
    """Return the state where the provider published `secret` as `secret-tls`, and the relation."""
    database = deployment.relation(deployment.database)
    tls = dataclasses.replace(
        database,
        remote_app_data={
            **database.remote_app_data,
            "endpoints": endpoint,
            "secret-tls": secret.id,
        },
    )
    state = replace_relation(deployment.state, tls)
    others = {s for s in state.secrets if s.id != secret.id}
    return dataclasses.replace(state, secrets={*others, secret}), tls


def test_tls_database_url_verifies_the_server_name_against_the_published_ca(ctx, ca: SigningCA):
    deployment = deploy(ctx, ca)
    database_ca = str(SigningCA().certificate)
    state, tls = with_database_tls(deployment, database_tls_secret(database_ca))

    out = ctx.run(ctx.on.relation_changed(tls), state)

    container = out.get_container("cluster-manager")
    env = workload_file(container, ENV_FILE).read_text()
    assert (
        f"MCM_DATABASE_URL=postgresql://relation_id_5:s3cret@{DB_ENDPOINT}/cluster_manager"
        f"?sslmode=verify-full&sslrootcert={DATABASE_CA}\n"
    ) in env
    assert workload_file(container, DATABASE_CA).read_text() == database_ca.strip() + "\n"


def test_tls_database_reached_by_ip_address_verifies_the_ca_only(ctx, ca: SigningCA):
    deployment = deploy(ctx, ca)
    secret = database_tls_secret(str(SigningCA().certificate))
    state, tls = with_database_tls(deployment, secret, endpoint="10.152.183.7:5432")

    out = ctx.run(ctx.on.relation_changed(tls), state)

    env = workload_file(out.get_container("cluster-manager"), ENV_FILE).read_text()
    assert (
        f"@10.152.183.7:5432/cluster_manager?sslmode=verify-ca&sslrootcert={DATABASE_CA}\n" in env
    )


@pytest.mark.parametrize(
    ("endpoint", "sslmode"),
    [
        ("postgresql-k8s-primary.mcm.svc.cluster.local:5432", "verify-full"),
        ("postgresql-k8s-primary:5432", "verify-full"),
        ("10.1.0.12:5432", "verify-ca"),
        ("[fd00::12]:5432", "verify-ca"),
        ("10.1.0.12", "verify-ca"),
    ],
)
def test_sslmode_follows_whether_the_endpoint_host_is_a_name(endpoint: str, sslmode: str):
    credentials = DatabaseCredentials(
        database="db", endpoints=(endpoint,), username="u", password="p", tls=True, tls_ca="CA"
    )

    assert credentials.sslmode == sslmode


def test_database_ca_rotation_rewrites_the_ca_and_restarts_the_apps(
    ctx, ca: SigningCA, pebble_calls: PebbleCalls
):
    deployment = deploy(ctx, ca)
    secret = database_tls_secret(str(SigningCA().certificate))
    state, tls = with_database_tls(deployment, secret)
    state = ctx.run(ctx.on.relation_changed(tls), state)
    new_ca = str(SigningCA().certificate)
    rotated = dataclasses.replace(
        secret, tracked_content={"tls": "True", "tls-ca": new_ca}, latest_content=None
    )
    state = dataclasses.replace(
        state, secrets={*(s for s in state.secrets if s.id != secret.id), rotated}
    )
    pebble_calls.calls.clear()

    out = ctx.run(ctx.on.secret_changed(rotated), state)

    container = out.get_container("cluster-manager")
    assert workload_file(container, DATABASE_CA).read_text() == new_ca.strip() + "\n"
    assert pebble_calls.calls == [("restart", ("management", "connector", "forwarder", "tunnel"))]


def test_tls_off_has_no_sslmode_and_no_ca_file(ctx, ca: SigningCA):
    deployment = deploy(ctx, ca)
    state, tls = with_database_tls(deployment, database_tls_secret(tls="False"))

    out = ctx.run(ctx.on.relation_changed(tls), state)

    container = out.get_container("cluster-manager")
    env = workload_file(container, ENV_FILE).read_text()
    assert f"@{DB_ENDPOINT}/cluster_manager\n" in env
    assert "sslmode" not in env
    assert not workload_file(container, DATABASE_CA).exists()


def test_tls_turned_off_removes_the_ca_file(ctx, ca: SigningCA):
    deployment = deploy(ctx, ca)
    secret = database_tls_secret(str(SigningCA().certificate))
    state, tls = with_database_tls(deployment, secret)
    state = ctx.run(ctx.on.relation_changed(tls), state)
    off = dataclasses.replace(secret, tracked_content={"tls": "False"}, latest_content=None)
    state = dataclasses.replace(
        state, secrets={*(s for s in state.secrets if s.id != secret.id), off}
    )

    out = ctx.run(ctx.on.secret_changed(off), state)

    container = out.get_container("cluster-manager")
    assert "sslmode" not in workload_file(container, ENV_FILE).read_text()
    assert not workload_file(container, DATABASE_CA).exists()


def test_tls_without_a_ca_waits_for_the_provider_instead_of_going_unverified(
    ctx, ca: SigningCA, pebble_calls: PebbleCalls
):
    deployment = deploy(ctx, ca)
    state, tls = with_database_tls(deployment, database_tls_secret(ca_pem=""))
    pebble_calls.calls.clear()

    out = ctx.run(ctx.on.relation_changed(tls), state)

    assert out.unit_status == testing.WaitingStatus(
        "waiting for postgresql-k8s to publish the CA of its TLS certificate (tls-ca)"
        " (juju status postgresql-k8s)"
    )
    container = out.get_container("cluster-manager")
    assert "sslmode" not in workload_file(container, ENV_FILE).read_text()
    assert not workload_file(container, DATABASE_CA).exists()
    assert pebble_calls.calls == []


def test_unreadable_tls_secret_waits_for_the_database(ctx, ca: SigningCA):
    deployment = deploy(ctx, ca)
    database = deployment.relation(deployment.database)
    granted_later = database_tls_secret(str(SigningCA().certificate))
    tls = dataclasses.replace(
        database, remote_app_data={**database.remote_app_data, "secret-tls": granted_later.id}
    )

    out = ctx.run(ctx.on.relation_changed(tls), replace_relation(deployment.state, tls))

    assert out.unit_status == testing.WaitingStatus(
        "waiting for a database from postgresql-k8s (juju status postgresql-k8s)"
    )


def test_removed_database_blocks(ctx, ca: SigningCA):
    deployment = deploy(ctx, ca)
    database = deployment.relation(deployment.database)

    out = ctx.run(ctx.on.relation_broken(database), deployment.state)

    assert out.unit_status == testing.BlockedStatus(
        f"integrate with PostgreSQL (juju integrate {APP}:database postgresql-k8s)"
    )


# certificates


def test_unit_requests_a_certificate_for_the_management_domain(ctx, ca: SigningCA):
    deployment = deploy(ctx, ca)

    certificates = deployment.relation(deployment.certificates)
    [request] = json.loads(certificates.local_unit_data["certificate_signing_requests"])
    assert "CN=cm.example.com" in _subject(request["certificate_signing_request"])


def test_certificate_renewal_reloads_the_front_without_restarting(
    ctx, ca: SigningCA, pebble_calls: PebbleCalls
):
    deployment = deploy(ctx, ca)
    renewed = ca.sign_all(deployment.state, deployment.certificates)
    state = replace_relation(deployment.state, renewed)
    before = workload_file(deployment.container, "tls/management.crt").read_text()
    pebble_calls.calls.clear()

    out = ctx.run(ctx.on.relation_changed(renewed), state)

    after = workload_file(out.get_container("cluster-manager"), "tls/management.crt").read_text()
    assert after != before
    assert pebble_calls.calls == [("SIGUSR2", ("haproxy",))]


def test_received_ca_certificates_become_the_trust_bundle(ctx, ca: SigningCA):
    deployment = deploy(ctx, ca)
    ca_pem = str(ca.certificate).strip()
    transfer = testing.Relation(
        "receive-ca-cert",
        remote_app_name="self-signed-certificates",
        remote_app_data={"certificates": json.dumps([ca_pem]), "version": "1"},
    )
    state = dataclasses.replace(
        deployment.state, relations={*deployment.state.relations, transfer}
    )

    out = ctx.run(ctx.on.relation_changed(transfer), state)

    bundle = workload_file(out.get_container("cluster-manager"), "tls/ca-bundle.crt")
    assert bundle.read_text() == ca_pem + "\n"


# traefik-route


def test_leader_routes_both_domains_by_sni_with_tls_passthrough(ctx, ca: SigningCA):
    deployment = deploy(ctx, ca)

    config = route(deployment.state, deployment.traefik)
    assert config["tcp"]["routers"] == {
        f"{PREFIX}-management": {
            "entryPoints": ["websecure"],
            "rule": "HostSNI(`cm.example.com`)",
            "service": f"{PREFIX}-management",
            "tls": {"passthrough": True},
        },
        f"{PREFIX}-connector": {
            "entryPoints": ["websecure"],
            "rule": "HostSNI(`cc.example.com`)",
            "service": f"{PREFIX}-connector",
            "tls": {"passthrough": True},
        },
    }
    assert deployment.relation(deployment.traefik).local_app_data["raw"] == "True"


def test_route_sends_proxy_protocol_v2_to_the_unit(ctx, ca: SigningCA):
    deployment = deploy(ctx, ca)

    config = route(deployment.state, deployment.traefik)
    assert config["tcp"]["services"][f"{PREFIX}-connector"]["loadBalancer"] == {
        "servers": [{"address": f"{peer_address(0)}:9443"}],
        "proxyProtocol": {"version": 2},
    }
    assert servers(config, "management") == [f"{peer_address(0)}:8443"]


def test_scale_out_adds_the_new_units_to_the_route(ctx, ca: SigningCA):
    deployment = deploy(ctx, ca)
    peers = dataclasses.replace(
        deployment.relation(deployment.peers),
        peers_data={1: {"address": peer_address(1)}, 2: {"address": peer_address(2)}},
    )

    out = ctx.run(
        ctx.on.relation_changed(peers, remote_unit=2), replace_relation(deployment.state, peers)
    )

    config = route(out, deployment.traefik)
    assert servers(config, "connector") == [f"{peer_address(i)}:9443" for i in range(3)]


def test_units_that_do_not_serve_yet_get_no_traffic(ctx, ca: SigningCA):
    deployment = deploy(ctx, ca)
    peers = dataclasses.replace(deployment.relation(deployment.peers), peers_data={1: {}})

    out = ctx.run(
        ctx.on.relation_joined(peers, remote_unit=1), replace_relation(deployment.state, peers)
    )

    assert servers(route(out, deployment.traefik), "management") == [f"{peer_address(0)}:8443"]


def test_scale_in_removes_the_departed_unit_from_the_route(ctx, ca: SigningCA):
    deployment = deploy(ctx, ca, peers={1: {"address": peer_address(1)}})
    # Juju no longer lists the departing unit in the relation during relation-departed.
    peers = dataclasses.replace(deployment.relation(deployment.peers), peers_data={})

    out = ctx.run(
        ctx.on.relation_departed(peers, remote_unit=1, departing_unit=1),
        replace_relation(deployment.state, peers),
    )

    assert servers(route(out, deployment.traefik), "connector") == [f"{peer_address(0)}:9443"]


def test_domain_change_rewrites_the_routes(ctx, ca: SigningCA):
    deployment = deploy(ctx, ca)
    state = dataclasses.replace(
        deployment.state, config={**CONFIG, "management-api-domain": "manager.example.org"}
    )

    out = ctx.run(ctx.on.config_changed(), state)

    router = route(out, deployment.traefik)["tcp"]["routers"][f"{PREFIX}-management"]
    assert router["rule"] == "HostSNI(`manager.example.org`)"


def test_non_leader_publishes_its_address_but_not_the_route(ctx, ca: SigningCA):
    leader = deploy(ctx, ca)

    other = follower(ctx, ca, leader)

    assert other.relation(other.traefik).local_app_data == {}
    assert other.relation(other.peers).local_unit_data["address"] == peer_address(0)


def _subject(csr_pem: str) -> str:
    from cryptography import x509

    return x509.load_pem_x509_csr(csr_pem.encode()).subject.rfc4514_string()
