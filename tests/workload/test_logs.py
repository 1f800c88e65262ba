"""What the services print (Pebble forwards it to Loki): structured lines and never a secret."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.clusters import KNOWN_HEARTBEAT
from tools.microcloud import MicroCloudClient
from tools.postgres import PostgresServer
from tools.stack import Stack

DB_PASSWORD = "pw-Zx81-never-logged"
HAPROXY_NOTICE_LINE = re.compile(r"^\[(NOTICE|WARNING|ALERT)\] +\(\d+\) : ")
HAPROXY_CONNECTION_ERROR_LINE = re.compile(r"^[0-9a-f.:]+:\d+ \[[^]]+\] \w+/\d+: ")
"""HAProxy 2.6 writes failed TLS handshakes in this format (2.7+: JSON, `error-log-format`)."""


@pytest.fixture(scope="module")
def stack(postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    url = postgres.create_database("logs_stack")
    # Trust authentication ignores the password, but every process is handed it.
    url = url.replace("postgresql://postgres@", f"postgresql://postgres:{DB_PASSWORD}@")
    env = {"MCM_LOG_LEVEL": "debug"}
    with Stack(Path(tmp_path_factory.mktemp("logs")), url, env=env) as running:
        yield running


@pytest.fixture(scope="module")
def secrets_used(stack: Stack) -> list[str]:
    """Exercise joins, heartbeats and the API with real and wrong secrets; return them all."""
    used = [DB_PASSWORD]
    token = stack.mint_token("logs-cluster")
    client = MicroCloudClient(token, resolve=stack.resolve)
    assert client.join().ok
    assert client.heartbeat(KNOWN_HEARTBEAT).ok
    used.append(token)
    unused = stack.mint_token("logs-other")
    stranger = MicroCloudClient(unused, resolve=stack.resolve)
    stranger.token_text = unused[:-8] + "AAAAAAAA"  # a wrong token in the join body
    assert not stranger.join().ok
    used += [unused, stranger.token_text]
    session = stack.management_session()
    assert session.get(f"{stack.management_url}/1.0/remote-cluster", timeout=5).ok
    used.append(str(session.headers["Authorization"]).removeprefix("Bearer "))
    wrong = stack.management_session(token="mcm-wrong-api-token-1234567890")
    assert wrong.get(f"{stack.management_url}/1.0/remote-cluster", timeout=5).status_code == 401
    used.append("mcm-wrong-api-token-1234567890")
    return used


def test_no_secret_or_token_appears_in_any_service_output(stack: Stack, secrets_used: list[str]):
    for service in ("haproxy", "management", "connector"):
        output = stack.log(service)

        assert output, service
        for secret in secrets_used:
            assert secret not in output, f"{service} printed a secret"


def test_every_line_of_the_apps_is_one_json_object(stack: Stack, secrets_used: list[str]):
    for service in ("management", "connector"):
        lines = stack.log(service).splitlines()

        assert lines
        for line in lines:
            entry = json.loads(line)
            assert {"time", "level", "logger", "message"} <= set(entry), line


def test_haproxy_prints_json_access_lines_and_its_own_notices(
    stack: Stack, secrets_used: list[str]
):
    lines = stack.log("haproxy").splitlines()

    access = [json.loads(line) for line in lines if line.startswith("{")]
    others = [line for line in lines if not line.startswith("{")]
    assert any(entry["path"] == "/1.0/remote-cluster/status" for entry in access)
    assert all(entry["source"] == "haproxy" for entry in access)
    assert all(
        HAPROXY_NOTICE_LINE.match(line) or HAPROXY_CONNECTION_ERROR_LINE.match(line)
        for line in others
    ), others
