"""The operator CLI: output, JSON and exit codes exactly as docs/workload-contract.md says."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from tests.support.clusters import KNOWN_HEARTBEAT, enroll
from tools.jointoken import JoinToken
from tools.ports import free_port
from tools.stack import Stack


def _json(stack: Stack, *args: str) -> object:
    return json.loads(stack.cli(*args, "--json").stdout)


def test_create_join_token_prints_token_expiry_and_join_command(stack: Stack) -> None:
    result = stack.cli("create-join-token", "cli-human")

    token_line, expiry_line, command_line = result.stdout.strip().splitlines()
    token = token_line.removeprefix("token: ")
    assert result.returncode == 0
    assert JoinToken.decode(token).server_name == "cli-human"
    assert expiry_line.startswith("expires at: ")
    assert command_line == f"microcloud cluster-manager join {token}"


def test_create_join_token_json_has_the_contract_fields(stack: Stack) -> None:
    result = _json(stack, "create-join-token", "cli-json", "--description", "rack 2")

    assert isinstance(result, dict)
    assert list(result) == ["cluster_name", "token", "expires_at", "join_command"]
    assert result["cluster_name"] == "cli-json"
    assert result["join_command"] == f"microcloud cluster-manager join {result['token']}"
    assert JoinToken.decode(result["token"]).expires_at == result["expires_at"]


def test_create_join_token_honours_expires_in(stack: Stack) -> None:
    before = datetime.now(UTC)

    result = _json(stack, "create-join-token", "cli-expires-in", "--expires-in", "600")

    assert isinstance(result, dict)
    expires = datetime.fromisoformat(result["expires_at"])
    assert before + timedelta(seconds=590) < expires < before + timedelta(seconds=660)


def test_create_join_token_honours_expiry(stack: Stack) -> None:
    expiry = "2100-01-02T03:04:05Z"

    result = _json(stack, "create-join-token", "cli-expiry", "--expiry", expiry)

    assert isinstance(result, dict)
    assert result["expires_at"] == expiry


def test_create_join_token_with_past_expiry_exits_1(stack: Stack) -> None:
    result = stack.cli(
        "create-join-token", "cli-past", "--expiry", "2000-01-01T00:00:00Z", check=False
    )

    assert result.returncode == 1
    assert "expiry date must be in the future" in result.stderr


def test_create_join_token_for_a_name_with_a_token_exits_1(stack: Stack) -> None:
    stack.cli("create-join-token", "cli-dup")

    result = stack.cli("create-join-token", "cli-dup", check=False)

    assert result.returncode == 1
    assert "already exists" in result.stderr


def test_create_join_token_for_a_name_with_a_trailing_newline_exits_1(stack: Stack) -> None:
    result = stack.cli("create-join-token", "cli-nl\n", check=False)

    assert result.returncode == 1
    assert "cluster name must be 1-63 letters" in result.stderr
    assert "cli-nl" not in stack.cli("list-tokens").stdout


def test_create_api_token_for_a_name_with_a_trailing_newline_exits_1(stack: Stack) -> None:
    result = stack.cli("create-api-token", "cli-api-nl\n", check=False)

    assert result.returncode == 1
    assert "API token name must be 1-63 letters" in result.stderr
    assert result.stdout == ""


def test_create_join_token_with_both_expiry_options_is_a_usage_error(stack: Stack) -> None:
    result = stack.cli(
        "create-join-token", "cli-both", "--expiry", "2100-01-01T00:00:00Z",
        "--expires-in", "60", check=False,
    )  # fmt: skip

    assert result.returncode == 2


def test_list_tokens_shows_a_table(stack: Stack) -> None:
    stack.cli("create-join-token", "cli-listed", "--description", "listed one")

    lines = stack.cli("list-tokens").stdout.splitlines()

    assert lines[0].split() == ["CLUSTER", "DESCRIPTION", "EXPIRES", "CREATED"]
    assert any(line.startswith("cli-listed") and "listed one" in line for line in lines[1:])


def test_list_tokens_json_has_the_contract_fields(stack: Stack) -> None:
    stack.cli("create-join-token", "cli-listed-json")

    listing = _json(stack, "list-tokens")

    assert isinstance(listing, list)
    entry = next(item for item in listing if item["cluster_name"] == "cli-listed-json")
    assert list(entry) == ["cluster_name", "description", "expiry", "created_at", "expired"]
    assert entry["expired"] is False


def test_revoke_token_confirms(stack: Stack) -> None:
    stack.cli("create-join-token", "cli-revoke")

    result = stack.cli("revoke-token", "cli-revoke")

    assert result.stdout.strip() == "revoked join token for cli-revoke"
    assert "cli-revoke" not in stack.cli("list-tokens").stdout


def test_revoke_token_json(stack: Stack) -> None:
    stack.cli("create-join-token", "cli-revoke-json")

    assert _json(stack, "revoke-token", "cli-revoke-json") == {
        "cluster_name": "cli-revoke-json",
        "revoked": True,
    }


def test_revoke_unknown_token_exits_1_with_message(stack: Stack) -> None:
    result = stack.cli("revoke-token", "cli-never", check=False)

    assert result.returncode == 1
    assert result.stderr.strip() == "error: no join token for cluster cli-never"


def test_list_clusters_shows_an_aligned_table(stack: Stack) -> None:
    enroll(stack, "cli-online", KNOWN_HEARTBEAT)
    enroll(stack, "cli-never-reported")

    lines = stack.cli("list-clusters").stdout.splitlines()

    header = lines[0]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert header.split() == ["NAME", "STATUS", "MEMBERS", "INSTANCES", "LAST", "HEARTBEAT"]
    assert rows["cli-online"].split()[1:4] == ["online", "3", "3"]
    assert rows["cli-online"].endswith("s ago")
    assert rows["cli-never-reported"].split()[1] == "offline"
    assert rows["cli-never-reported"].endswith("never")
    for column in ("STATUS", "LAST HEARTBEAT"):
        start = header.index(column)
        assert all(line[start - 1] == " " and line[start] != " " for line in rows.values())


def test_list_clusters_json_has_the_contract_fields(stack: Stack) -> None:
    enroll(stack, "cli-json-cluster", KNOWN_HEARTBEAT)

    listing = _json(stack, "list-clusters")

    assert isinstance(listing, list)
    entry = next(item for item in listing if item["name"] == "cli-json-cluster")
    assert list(entry) == ["name", "status", "member_count", "instance_count", "last_heartbeat_at"]
    assert (entry["status"], entry["member_count"], entry["instance_count"]) == ("online", 3, 3)
    assert datetime.fromisoformat(entry["last_heartbeat_at"]) <= datetime.now(UTC)


def test_remove_cluster_confirms_and_forgets(stack: Stack) -> None:
    enroll(stack, "cli-remove")

    result = stack.cli("remove-cluster", "cli-remove")

    assert result.stdout.strip() == "removed cluster cli-remove"
    assert "cli-remove" not in stack.cli("list-clusters").stdout


def test_remove_cluster_json(stack: Stack) -> None:
    enroll(stack, "cli-remove-json")

    assert _json(stack, "remove-cluster", "cli-remove-json") == {
        "name": "cli-remove-json",
        "removed": True,
    }


def test_remove_unknown_cluster_exits_1_with_message(stack: Stack) -> None:
    result = stack.cli("remove-cluster", "cli-ghost", check=False)

    assert result.returncode == 1
    assert result.stderr.strip() == "error: remote cluster cli-ghost not found"


def test_create_api_token_prints_only_the_token(stack: Stack) -> None:
    result = stack.cli("create-api-token", "cli-bot")

    token = result.stdout.strip()
    assert token.startswith("mcm_")
    assert len(result.stdout.splitlines()) == 1


def test_create_api_token_json(stack: Stack) -> None:
    result = _json(stack, "create-api-token", "cli-bot-json")

    assert isinstance(result, dict)
    assert list(result) == ["name", "token"]
    assert result["name"] == "cli-bot-json"


def test_create_api_token_with_a_taken_name_exits_1(stack: Stack) -> None:
    stack.cli("create-api-token", "cli-bot-twice")

    result = stack.cli("create-api-token", "cli-bot-twice", check=False)

    assert result.returncode == 1
    assert "already exists" in result.stderr


def test_show_connector_fingerprint(stack: Stack) -> None:
    result = stack.cli("show-connector-fingerprint")

    assert result.stdout.strip() == stack.connector_identity.fingerprint


def test_show_connector_fingerprint_json(stack: Stack) -> None:
    assert _json(stack, "show-connector-fingerprint") == {
        "fingerprint": stack.connector_identity.fingerprint
    }


@pytest.mark.parametrize(
    "args",
    [
        ("create-join-token", "cli-down"),
        ("list-tokens",),
        ("revoke-token", "cli-down"),
        ("list-clusters",),
        ("remove-cluster", "cli-down"),
        ("create-api-token", "cli-down"),
        ("prune-history",),
    ],
    ids=lambda args: args[0],
)
def test_unreachable_database_exits_3(stack: Stack, args: tuple[str, ...]) -> None:
    closed = f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere"

    result = subprocess.run(
        [sys.executable, "-m", "cluster_manager", *args],
        env={**os.environ, "MCM_ENV_FILE": str(stack.env_file), "MCM_DATABASE_URL": closed},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 3
    assert "database unavailable" in result.stderr
