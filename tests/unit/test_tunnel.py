"""The reverse tunnel's charm side: the shared secret, units still without it, the settings."""

from __future__ import annotations

import dataclasses
import logging
import string

import pytest
import yaml
from ops import pebble, testing

from oidc import NOT_CONFIGURED
from pebble_layer import build_layer, layer_services
from plan import ServiceChanges, service_changes
from tests.unit.builders import (
    CONTAINER,
    WITHOUT_TUNNELS,
    Deployment,
    SigningCA,
    deploy,
    follower,
    peer_address,
    replace_relation,
    tunnel_secrets,
    workload_file,
)
from tests.unit.conftest import PebbleCalls
from workload import parse_env_file

ENV_FILE = "/etc/cluster-manager/cluster-manager.env"


def shared_secret(state: testing.State) -> str:
    (secret,) = tunnel_secrets(state)
    return secret.latest_content["tunnel-secret"]


def env_of(state: testing.State) -> dict[str, str]:
    return parse_env_file(workload_file(state.get_container(CONTAINER), ENV_FILE).read_text())


def without_tunnel_secret(leader: Deployment) -> dict[str, str]:
    """The leader's peer app data without the tunnel secret's ID (not created yet)."""
    data = dict(leader.relation(leader.peers).local_app_data)
    del data["tunnel-secret-id"]
    return data


# The secret


def test_leader_creates_one_app_secret_of_32_random_bytes_and_publishes_its_id(ctx, ca: SigningCA):
    deployment = deploy(ctx, ca)

    (secret,) = tunnel_secrets(deployment.state)
    value = secret.latest_content["tunnel-secret"]
    assert secret.owner == "app"
    assert len(value) == 64 and set(value) <= set(string.hexdigits.lower())
    assert deployment.relation(deployment.peers).local_app_data["tunnel-secret-id"] == secret.id


def test_leader_keeps_the_secret_across_hooks(ctx, ca: SigningCA):
    deployment = deploy(ctx, ca)
    before = shared_secret(deployment.state)

    state = ctx.run(ctx.on.update_status(), deployment.state)
    state = ctx.run(ctx.on.upgrade_charm(), state)
    state = ctx.run(ctx.on.config_changed(), state)

    assert shared_secret(state) == before
    assert env_of(state)["MCM_TUNNEL_SECRET"] == before


def test_new_leader_keeps_the_secret(ctx, ca: SigningCA):
    leader = deploy(ctx, ca)
    peer_data = dict(leader.relation(leader.peers).local_app_data)
    other = follower(ctx, ca, leader)

    out = ctx.run(ctx.on.leader_elected(), dataclasses.replace(other.state, leader=True))

    assert shared_secret(out) == shared_secret(leader.state)
    assert out.get_relation(other.peers.id).local_app_data == peer_data


def test_leader_republishes_its_secret_when_the_id_is_missing_instead_of_replacing_it(
    ctx, ca: SigningCA
):
    deployment = deploy(ctx, ca)
    before = shared_secret(deployment.state)
    peers = dataclasses.replace(
        deployment.relation(deployment.peers), local_app_data=without_tunnel_secret(deployment)
    )

    out = ctx.run(ctx.on.update_status(), replace_relation(deployment.state, peers))

    (secret,) = tunnel_secrets(out)
    assert secret.latest_content["tunnel-secret"] == before
    assert out.get_relation(peers.id).local_app_data["tunnel-secret-id"] == secret.id


def test_layer_without_the_secret_lacks_only_the_tunnel_service_and_its_checks():
    full, without = build_layer(tunnel=True), build_layer(tunnel=False)

    assert without.services == {n: s for n, s in full.services.items() if n != "tunnel"}
    assert without.checks == {
        n: c for n, c in full.checks.items() if n not in ("tunnel-alive", "tunnel-ready")
    }
    assert (without.summary, without.description) == (full.summary, full.description)


def test_non_leader_without_the_secret_serves_everything_but_the_tunnel(ctx, ca: SigningCA):
    leader = deploy(ctx, ca)

    waiting = follower(ctx, ca, leader, peer_app_data=without_tunnel_secret(leader))

    assert waiting.state.unit_status == WITHOUT_TUNNELS
    plan, layer = waiting.container.plan, build_layer(tunnel=False)
    assert (plan.services, plan.checks) == (layer.services, layer.checks)
    statuses = {name: s.value for name, s in waiting.container.service_statuses.items()}
    assert statuses == dict.fromkeys(("haproxy", "management", "connector", "forwarder"), "active")
    env = env_of(waiting.state)
    assert "MCM_TUNNEL_SECRET" not in env
    assert env["MCM_INTERNAL_ADDRESS"] == peer_address(0)
    # Traefik may route to it: it serves the management API and the connector.
    assert waiting.relation(waiting.peers).local_unit_data["address"] == peer_address(0)


def test_non_leader_gains_the_tunnel_once_the_secret_is_published_leaving_haproxy_alone(
    ctx, ca: SigningCA, pebble_calls: PebbleCalls
):
    leader = deploy(ctx, ca)
    waiting = follower(ctx, ca, leader, peer_app_data=without_tunnel_secret(leader))
    published = dataclasses.replace(
        waiting.relation(waiting.peers),
        local_app_data=dict(leader.relation(leader.peers).local_app_data),
        peers_data={1: {"address": peer_address(1)}},
    )
    pebble_calls.calls.clear()

    out = ctx.run(
        ctx.on.relation_changed(published, remote_unit=1),
        replace_relation(waiting.state, published),
    )

    assert env_of(out)["MCM_TUNNEL_SECRET"] == shared_secret(leader.state)
    container = out.get_container(CONTAINER)
    assert container.plan.services == build_layer(tunnel=True).services
    assert container.plan.checks == build_layer(tunnel=True).checks
    assert container.service_statuses["tunnel"] == pebble.ServiceStatus.ACTIVE
    # The apps read the env file that gained the secret (the management app forwards with
    # it); HAProxy's inputs did not change: neither restarted nor reloaded.
    assert pebble_calls.calls == [
        ("restart", ("management", "connector", "forwarder")),
        ("replan", ()),
    ]
    assert out.unit_status == testing.ActiveStatus(NOT_CONFIGURED)
    pebble_calls.calls.clear()

    ctx.run(ctx.on.update_status(), out)

    assert pebble_calls.calls == []


def test_service_changes_start_the_tunnel_only_when_the_layer_has_it():
    running = {"haproxy", "management", "connector", "forwarder"}

    without = service_changes({ENV_FILE}, running, layer_services(tunnel=False))
    gained = service_changes({ENV_FILE}, running, layer_services(tunnel=True))

    apps = ("management", "connector", "forwarder")
    assert without == ServiceChanges(restart=apps)
    assert gained == ServiceChanges(restart=apps, start=("tunnel",))


# The settings and the port


def test_env_file_names_the_address_the_unit_publishes_and_the_internal_port(ctx, ca: SigningCA):
    deployment = deploy(ctx, ca)

    env = env_of(deployment.state)
    published = deployment.relation(deployment.peers).local_unit_data["address"]
    assert env["MCM_INTERNAL_ADDRESS"] == published == peer_address(0)
    assert env["MCM_TUNNEL_PORT"] == "9445"


def test_traefik_route_never_carries_the_tunnel_port(ctx, ca: SigningCA):
    deployment = deploy(ctx, ca, peers={1: {"address": peer_address(1)}, 2: {}})

    text = deployment.relation(deployment.traefik).local_app_data["config"]
    services = yaml.safe_load(text)["tcp"]["services"].values()
    ports = {
        server["address"].rpartition(":")[2]
        for service in services
        for server in service["loadBalancer"]["servers"]
    }
    assert ports == {"8443", "9443"}
    assert "9445" not in text


# Where the secret never goes


def test_secret_is_in_no_relation_databag(ctx, ca: SigningCA):
    metrics = testing.Relation("metrics-endpoint", remote_app_name="prometheus-k8s")
    logging_relation = testing.Relation("logging", remote_app_name="loki-k8s")
    deployment = deploy(ctx, ca, peers={1: {"address": peer_address(1)}})
    state = replace_relation(replace_relation(deployment.state, metrics), logging_relation)

    out = ctx.run(ctx.on.relation_changed(metrics), state)

    value = shared_secret(out)
    for relation in out.relations:
        local = [relation.local_app_data, relation.local_unit_data]
        assert not any(value in text for data in local for text in data.values()), relation


def test_secret_is_never_logged_nor_in_action_results(
    ctx, ca: SigningCA, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.DEBUG)
    deployment = deploy(ctx, ca)

    ctx.run(
        ctx.on.action("rotate-connector-certificate", params={"confirm": True}), deployment.state
    )

    value = shared_secret(deployment.state)
    assert caplog.records
    assert value not in caplog.text
    assert value not in str(ctx.action_results)
