"""Every action's success and failure, through the workload CLI in the container."""

from __future__ import annotations

import dataclasses
import json

import pytest
from ops import testing

from tests.unit.builders import (
    APP,
    CONFIG,
    MODEL,
    SigningCA,
    cli,
    deploy,
    migrate_exec,
    replace_container,
    workload_container,
)

TOKEN = "eyJzZWNyZXQiOiJhYmMifQ=="


def with_execs(deployment, *execs: testing.Exec) -> testing.State:
    container = dataclasses.replace(deployment.container, execs={migrate_exec(), *execs})
    return replace_container(deployment.state, container)


def run_action(ctx, state: testing.State, action: str, **params):
    ctx.run(ctx.on.action(action, params=params), state)
    return ctx.action_results


def fail_action(ctx, state: testing.State, action: str, **params) -> str:
    with pytest.raises(testing.ActionFailed) as failure:
        ctx.run(ctx.on.action(action, params=params), state)
    return failure.value.message


@pytest.fixture
def deployment(ctx, ca: SigningCA):
    return deploy(ctx, ca)


def test_enroll_cluster_returns_the_token_and_the_join_command(ctx, deployment):
    output = {
        "cluster_name": "mc-01",
        "token": TOKEN,
        "expires_at": "2030-01-02T03:04:05Z",
        "join_command": f"microcloud cluster-manager join {TOKEN}",
    }
    state = with_execs(
        deployment, testing.Exec(cli("create-join-token"), stdout=json.dumps(output))
    )

    results = run_action(ctx, state, "enroll-cluster", cluster="mc-01")

    assert results == {
        "cluster": "mc-01",
        "token": TOKEN,
        "expires-at": "2030-01-02T03:04:05Z",
        "join-command": f"microcloud cluster-manager join {TOKEN}",
    }


def test_enroll_cluster_passes_description_and_expiry_with_the_env_settings(ctx, deployment):
    output = {"cluster_name": "mc-01", "token": TOKEN, "expires_at": "x", "join_command": "y"}
    state = with_execs(
        deployment, testing.Exec(cli("create-join-token"), stdout=json.dumps(output))
    )
    ctx.exec_history.clear()

    run_action(
        ctx,
        state,
        "enroll-cluster",
        cluster="mc-01",
        description="lab rack 3",
        expiry="2030-01-02T03:04:05Z",
    )

    [call] = ctx.exec_history["cluster-manager"]
    assert call.command == cli(
        "create-join-token",
        "mc-01",
        "--description",
        "lab rack 3",
        "--expiry",
        "2030-01-02T03:04:05Z",
        "--json",
    )
    assert call.environment is not None
    assert call.environment["MCM_CONNECTOR_DOMAIN"] == "cc.example.com"


def test_enroll_cluster_refuses_an_expiry_in_the_past(ctx, deployment):
    message = fail_action(
        ctx, deployment.state, "enroll-cluster", cluster="mc-01", expiry="2001-01-01T00:00:00Z"
    )

    assert message == "Error in action parameters: expiry 2001-01-01T00:00:00Z is in the past"


def test_enroll_cluster_refuses_a_malformed_expiry(ctx, deployment):
    message = fail_action(
        ctx, deployment.state, "enroll-cluster", cluster="mc-01", expiry="tomorrow"
    )

    assert message == (
        "Error in action parameters: "
        "expiry 'tomorrow' is not an RFC 3339 time like 2030-01-31T12:00:00Z"
    )


def test_enroll_cluster_reports_the_cli_user_error(ctx, deployment):
    state = with_execs(
        deployment,
        testing.Exec(
            cli("create-join-token"), return_code=1, stderr="cluster mc-01 is already enrolled\n"
        ),
    )

    message = fail_action(ctx, state, "enroll-cluster", cluster="mc-01")

    assert message == "cluster mc-01 is already enrolled"


def test_action_reports_an_unavailable_database(ctx, deployment):
    state = with_execs(
        deployment,
        testing.Exec(cli("list-clusters"), return_code=3, stderr="connection refused"),
    )

    message = fail_action(ctx, state, "list-clusters")

    assert message == "database unavailable: connection refused"


def test_action_without_database_says_what_is_missing(ctx):
    state = testing.State(
        leader=True,
        config=CONFIG,
        model=testing.Model(name=MODEL),
        containers={workload_container()},
    )

    message = fail_action(ctx, state, "list-clusters")

    assert message == (
        "cannot run list-clusters yet: integrate with PostgreSQL"
        f" (juju integrate {APP}:database postgresql-k8s)"
    )


def test_list_clusters_returns_them_as_json(ctx, deployment):
    clusters = [
        {
            "name": "mc-01",
            "status": "online",
            "member_count": 3,
            "instance_count": 12,
            "last_heartbeat_at": "2030-01-02T03:04:05Z",
        }
    ]
    state = with_execs(deployment, testing.Exec(cli("list-clusters"), stdout=json.dumps(clusters)))

    results = run_action(ctx, state, "list-clusters")

    assert json.loads(results["clusters"]) == clusters
    assert results["count"] == 1


def test_list_tokens_returns_them_as_json(ctx, deployment):
    tokens = [
        {
            "cluster_name": "mc-02",
            "description": "",
            "expiry": "2030-01-02T03:04:05Z",
            "created_at": "2029-12-31T00:00:00Z",
            "expired": False,
        }
    ]
    state = with_execs(deployment, testing.Exec(cli("list-tokens"), stdout=json.dumps(tokens)))

    results = run_action(ctx, state, "list-tokens")

    assert json.loads(results["tokens"]) == tokens
    assert results["count"] == 1


def test_revoke_token_confirms_the_cluster(ctx, deployment):
    output = {"cluster_name": "mc-02", "revoked": True}
    state = with_execs(deployment, testing.Exec(cli("revoke-token"), stdout=json.dumps(output)))

    results = run_action(ctx, state, "revoke-token", cluster="mc-02")

    assert results == {"cluster": "mc-02", "revoked": True}


def test_revoke_token_of_an_unknown_cluster_fails_with_the_cli_message(ctx, deployment):
    state = with_execs(
        deployment,
        testing.Exec(cli("revoke-token"), return_code=1, stderr="no join token for nope"),
    )

    message = fail_action(ctx, state, "revoke-token", cluster="nope")

    assert message == "no join token for nope"


def test_remove_cluster_confirms_the_cluster(ctx, deployment):
    output = {"name": "mc-01", "removed": True}
    state = with_execs(deployment, testing.Exec(cli("remove-cluster"), stdout=json.dumps(output)))

    results = run_action(ctx, state, "remove-cluster", cluster="mc-01")

    assert results == {"cluster": "mc-01", "removed": True}


def test_remove_unknown_cluster_fails_with_the_cli_message(ctx, deployment):
    state = with_execs(
        deployment,
        testing.Exec(cli("remove-cluster"), return_code=1, stderr="unknown cluster nope"),
    )

    message = fail_action(ctx, state, "remove-cluster", cluster="nope")

    assert message == "unknown cluster nope"


def test_show_connector_fingerprint_returns_it(ctx, deployment):
    fingerprint = deployment.relation(deployment.peers).local_app_data["connector-fingerprint"]
    state = with_execs(
        deployment,
        testing.Exec(
            cli("show-connector-fingerprint"), stdout=json.dumps({"fingerprint": fingerprint})
        ),
    )

    results = run_action(ctx, state, "show-connector-fingerprint")

    assert results == {"fingerprint": fingerprint}


def test_create_api_token_returns_the_token(ctx, deployment):
    output = {"name": "ci", "token": "mcm_abc"}
    state = with_execs(
        deployment, testing.Exec(cli("create-api-token"), stdout=json.dumps(output))
    )

    results = run_action(ctx, state, "create-api-token", name="ci")

    assert results == {"name": "ci", "token": "mcm_abc"}


def test_create_api_token_refuses_an_empty_name(ctx, deployment):
    message = fail_action(ctx, deployment.state, "create-api-token", name=" ")

    assert message == "Error in action parameters: name must not be empty"


def test_rotation_without_confirm_is_refused_and_explains_the_consequence(ctx, deployment):
    message = fail_action(ctx, deployment.state, "rotate-connector-certificate")

    assert message == (
        "rotating the connector certificate cuts off every enrolled cluster until it updates "
        "its certificate fingerprint; run again with confirm=true"
    )


def test_rotation_on_a_non_leader_is_refused(ctx, deployment):
    state = dataclasses.replace(deployment.state, leader=False)

    message = fail_action(ctx, state, "rotate-connector-certificate", confirm=True)

    assert message == "run rotate-connector-certificate on the leader unit"


def test_rotation_reports_the_new_fingerprint_and_what_clusters_must_run(ctx, deployment):
    old = deployment.relation(deployment.peers).local_app_data["connector-fingerprint"]

    out = ctx.run(
        ctx.on.action("rotate-connector-certificate", params={"confirm": True}), deployment.state
    )

    new = out.get_relation(deployment.peers.id).local_app_data["connector-fingerprint"]
    # MicroCloud 3.3 renamed the CLI key; 3.1 and 3.2 spell it with a dash.
    command = f"microcloud cluster-manager set certificate_fingerprint {new}"
    command_3_1 = f"microcloud cluster-manager set certificate-fingerprint {new}"
    assert new != old
    assert ctx.action_results == {
        "fingerprint": new,
        "previous-fingerprint": old,
        "command": command,
        "command-microcloud-3-1-and-3-2": command_3_1,
        "message": "the connector certificate was replaced; on one member of every enrolled "
        f"cluster run: {command} (MicroCloud 3.3 and later) or {command_3_1} "
        "(MicroCloud 3.1 and 3.2)",
    }


def test_rotation_after_a_domain_change_also_gives_clusters_the_new_address(ctx, deployment):
    state = dataclasses.replace(
        deployment.state, config={**CONFIG, "cluster-connector-domain": "new.example.com"}
    )

    out = ctx.run(ctx.on.action("rotate-connector-certificate", params={"confirm": True}), state)

    new = out.get_relation(deployment.peers.id).local_app_data["connector-fingerprint"]
    move = "microcloud cluster-manager set addresses new.example.com:443"
    assert ctx.action_results["command"] == (
        f"{move} && microcloud cluster-manager set certificate_fingerprint {new}"
    )
    assert ctx.action_results["command-microcloud-3-1-and-3-2"] == (
        f"{move} && microcloud cluster-manager set certificate-fingerprint {new}"
    )
