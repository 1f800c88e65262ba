"""Every branch of the unit status: what the operator sees at each step of a deployment.

Every failing readiness check adds its status and Juju shows the most severe one, so what
the operator must do (Blocked) comes before what a related application is doing (Waiting).
"""

from __future__ import annotations

import dataclasses

from ops import pebble, testing

from oidc import NOT_CONFIGURED
from tests.unit.builders import (
    APP,
    CONFIG,
    CONNECTOR_DOMAIN,
    MODEL,
    SigningCA,
    certificates_relation,
    database_relation,
    deploy,
    follower,
    migrate_exec,
    peer_relation,
    replace_container,
    replace_relation,
    running,
    traefik_relation,
    workload_container,
)

UNIT = f"{APP}/0"


def bare_state(**changes) -> testing.State:
    """A leader with valid config, its container and peer relation, and nothing integrated."""
    state = testing.State(
        leader=True,
        config=CONFIG,
        model=testing.Model(name=MODEL),
        containers={workload_container()},
        relations={peer_relation()},
    )
    return dataclasses.replace(state, **changes)


def test_missing_domains_block_with_the_option_to_set(ctx):
    out = ctx.run(ctx.on.config_changed(), bare_state(config={}))

    assert out.unit_status == testing.BlockedStatus(
        "invalid config: management-api-domain is not set"
        f" (juju config {APP} management-api-domain=<host name>)"
    )


def test_unreachable_container_waits_for_it(ctx, ca: SigningCA):
    deployment = deploy(ctx, ca)
    container = dataclasses.replace(deployment.container, can_connect=False)

    out = ctx.run(ctx.on.update_status(), replace_container(deployment.state, container))

    assert out.unit_status == testing.WaitingStatus(
        f"waiting for the cluster-manager container to start (juju debug-log --include {UNIT})"
    )


def test_without_database_blocks_asking_for_postgresql(ctx):
    out = ctx.run(ctx.on.update_status(), bare_state())

    assert out.unit_status == testing.BlockedStatus(
        f"integrate with PostgreSQL (juju integrate {APP}:database postgresql-k8s)"
    )


def test_database_not_created_yet_waits_for_the_provider(ctx):
    database, secret = database_relation(ready=False)
    related = {peer_relation(), database, certificates_relation(), traefik_relation()}
    state = bare_state(relations=related, secrets={secret})

    out = ctx.run(ctx.on.relation_created(database), state)

    assert out.unit_status == testing.WaitingStatus(
        "waiting for a database from postgresql-k8s (juju status postgresql-k8s)"
    )


def test_without_certificates_blocks_asking_for_a_tls_provider(ctx):
    database, secret = database_relation()
    state = bare_state(relations={peer_relation(), database}, secrets={secret})

    out = ctx.run(ctx.on.relation_changed(database), state)

    assert out.unit_status == testing.BlockedStatus(
        "integrate with a TLS certificates provider"
        f" (juju integrate {APP}:certificates self-signed-certificates)"
    )


def test_requested_certificate_waits_naming_the_provider(ctx):
    database, secret = database_relation()
    certificates = certificates_relation()
    related = {peer_relation(), database, certificates, traefik_relation()}
    state = bare_state(relations=related, secrets={secret})

    out = ctx.run(ctx.on.relation_created(certificates), state)

    assert out.unit_status == testing.WaitingStatus(
        "certificate requested from self-signed-certificates"
        " (juju status self-signed-certificates)"
    )


def test_non_leader_without_connector_identity_waits_for_the_leader(ctx, ca: SigningCA):
    deployment = deploy(ctx, ca, leader=False)

    assert deployment.state.unit_status == testing.WaitingStatus(
        f"waiting for the leader to create the connector identity (juju status {APP})"
    )


def test_non_leader_waits_for_the_leader_to_migrate(ctx, ca: SigningCA):
    leader = deploy(ctx, ca)
    peer = leader.relation(leader.peers)
    unmigrated = {k: v for k, v in peer.local_app_data.items() if not k.startswith("schema")}

    other = follower(ctx, ca, leader, peer_app_data=unmigrated)

    assert other.state.unit_status == testing.WaitingStatus(
        f"waiting for the leader to migrate the database schema (juju status {APP})"
    )


def test_failed_migration_blocks_with_the_error(ctx, ca: SigningCA):
    deployment = deploy(ctx, ca)
    error = "migration 0004_heartbeats.sql failed: permission denied for schema public"
    container = dataclasses.replace(
        workload_container(), execs={migrate_exec(return_code=1, stderr=error)}
    )
    peers = dataclasses.replace(deployment.relation(deployment.peers), local_app_data={})
    state = replace_relation(replace_container(deployment.state, container), peers)

    out = ctx.run(ctx.on.update_status(), state)

    assert out.unit_status == testing.BlockedStatus(
        f"database migration failed: {error} (juju debug-log --include {UNIT})"
    )


def test_without_traefik_blocks_naming_both_domains(ctx, ca: SigningCA):
    deployment = deploy(ctx, ca)
    state = dataclasses.replace(
        deployment.state,
        relations={r for r in deployment.state.relations if r.endpoint != "traefik-route"},
    )

    out = ctx.run(ctx.on.update_status(), state)

    assert out.unit_status == testing.BlockedStatus(
        "integrate with traefik-k8s to expose cm.example.com and cc.example.com"
        f" (juju integrate {APP}:traefik-route traefik-k8s)"
    )


def test_failing_ready_check_waits_naming_the_check(ctx, ca: SigningCA):
    deployment = deploy(ctx, ca)
    down = testing.CheckInfo(
        "management-ready", level=pebble.CheckLevel.READY, status=pebble.CheckStatus.DOWN
    )
    container = dataclasses.replace(running(deployment.container), check_infos={down})

    out = ctx.run(
        ctx.on.pebble_check_failed(container, down), replace_container(deployment.state, container)
    )

    assert out.unit_status == testing.WaitingStatus(
        f"failing health checks: management-ready (juju debug-log --include {UNIT})"
    )


def test_connector_domain_differing_from_the_certificate_blocks_with_the_fix(ctx, ca: SigningCA):
    deployment = deploy(ctx, ca)
    state = dataclasses.replace(
        deployment.state, config={**CONFIG, "cluster-connector-domain": "new.example.com"}
    )

    out = ctx.run(ctx.on.config_changed(), state)

    assert out.unit_status == testing.BlockedStatus(
        f"cluster-connector-domain new.example.com differs from the connector certificate "
        f"({CONNECTOR_DOMAIN}) (juju run {APP}/leader rotate-connector-certificate confirm=true)"
    )


def test_fully_integrated_leader_is_active(ctx, ca: SigningCA):
    deployment = deploy(ctx, ca)

    # Active; the message says the web UI login is optional and not set up (test_oidc_config).
    assert deployment.state.unit_status == testing.ActiveStatus(NOT_CONFIGURED)


def test_fully_integrated_non_leader_is_active(ctx, ca: SigningCA):
    leader = deploy(ctx, ca)

    other = follower(ctx, ca, leader)

    assert other.state.unit_status == testing.ActiveStatus(NOT_CONFIGURED)
