"""The leader prunes the heartbeat history on update-status; a failed prune is only logged."""

from __future__ import annotations

import dataclasses

from ops import testing

from constants import ENV_FILE
from oidc import NOT_CONFIGURED
from tests.unit.builders import (
    SigningCA,
    cli,
    deploy,
    follower,
    migrate_exec,
    prune_exec,
    replace_container,
    replace_relation,
    workload_file,
)


def _with_execs(state: testing.State, *execs: testing.Exec) -> testing.State:
    container = state.get_container("cluster-manager")
    return replace_container(state, dataclasses.replace(container, execs={migrate_exec(), *execs}))


def _commands(ctx: testing.Context) -> list[list[str]]:
    return [run.command for run in ctx.exec_history.get("cluster-manager", [])]


def test_leader_prunes_history_on_update_status_with_the_env_file_settings(ctx, ca: SigningCA):
    deployment = deploy(ctx, ca)
    ctx.exec_history.clear()

    out = ctx.run(ctx.on.update_status(), _with_execs(deployment.state, prune_exec(removed=7)))

    [prune] = ctx.exec_history["cluster-manager"]
    assert prune.command == cli("prune-history", "--json")
    env = workload_file(out.get_container("cluster-manager"), ENV_FILE).read_text()
    assert prune.environment == dict(line.split("=", 1) for line in env.splitlines())
    assert any("pruned 7 heartbeat history rows" in log.message for log in ctx.juju_log)


def test_leader_prunes_only_on_update_status(ctx, ca: SigningCA):
    deployment = deploy(ctx, ca)
    ctx.exec_history.clear()

    ctx.run(ctx.on.config_changed(), _with_execs(deployment.state, prune_exec()))

    assert cli("prune-history", "--json") not in _commands(ctx)


def test_non_leader_does_not_prune(ctx, ca: SigningCA):
    leader = deploy(ctx, ca)
    other = follower(ctx, ca, leader)
    ctx.exec_history.clear()

    ctx.run(ctx.on.update_status(), _with_execs(other.state, prune_exec()))

    assert cli("prune-history", "--json") not in _commands(ctx)


def test_leader_does_not_prune_before_the_schema_is_migrated(ctx, ca: SigningCA):
    deployment = deploy(ctx, ca)
    fresh = dataclasses.replace(
        deployment.container,
        service_statuses={},
        execs={migrate_exec(return_code=3, stderr="database unavailable"), prune_exec()},
    )
    peers = dataclasses.replace(deployment.relation(deployment.peers), local_app_data={})
    state = replace_relation(replace_container(deployment.state, fresh), peers)
    ctx.exec_history.clear()

    ctx.run(ctx.on.update_status(), state)

    assert _commands(ctx) == [cli("migrate", "--json")]


def test_a_failing_prune_is_logged_and_the_hook_succeeds(ctx, ca: SigningCA):
    deployment = deploy(ctx, ca)
    failing = prune_exec(return_code=3, stderr="error: database unavailable: timeout\n")

    out = ctx.run(ctx.on.update_status(), _with_execs(deployment.state, failing))

    warnings = [log.message for log in ctx.juju_log if log.level == "WARNING"]
    assert "pruning the heartbeat history failed: error: database unavailable: timeout" in (
        warnings
    )
    assert out.unit_status == testing.ActiveStatus(NOT_CONFIGURED)
