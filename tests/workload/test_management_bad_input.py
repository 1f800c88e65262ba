"""Bad input on the management API: a clear error envelope, and nothing changes (issue part 10)."""

from __future__ import annotations

import json

import pytest

from tests.support import raw_tls
from tests.support.clusters import enroll
from tests.support.openapi import ValidatedSession
from tools.stack import MANAGEMENT_DOMAIN, Stack

CLUSTER = "bad-input-target"
TOKENS = "/1.0/remote-cluster-join-token"
ONE_MIB = 1024 * 1024


@pytest.fixture(scope="module", autouse=True)
def _target(stack: Stack) -> None:
    enroll(stack, CLUSTER)
    stack.cli("create-join-token", "bad-input-pending", "--description", "untouched")


def _state(api: ValidatedSession, stack: Stack) -> tuple[dict, list]:
    cluster = api.get(f"{stack.management_url}/1.0/remote-cluster/{CLUSTER}").json()["metadata"]
    tokens = api.get(f"{stack.management_url}{TOKENS}").json()["metadata"]
    return cluster, tokens


PATCH_BODIES = {
    "malformed JSON": b'{"description": "x"',
    "not an object": b'["description"]',
    "empty body": b"",
    "threshold above 100": json.dumps({"disk_threshold": 101}).encode(),
    "threshold below 0": json.dumps({"memory_threshold": -1}).encode(),
    "threshold as text": json.dumps({"disk_threshold": "75"}).encode(),
    "threshold as float": json.dumps({"disk_threshold": 75.5}).encode(),
    "threshold as bool": json.dumps({"disk_threshold": True}).encode(),
    "description as number": json.dumps({"description": 7}).encode(),
    "null description": json.dumps({"description": None}).encode(),
    "unknown field": json.dumps({"description": "x", "colour": "red"}).encode(),
    "invalid status": json.dumps({"status": "PAUSED", "description": "x"}).encode(),
    "NUL in the description": json.dumps({"description": "rack\u00002"}).encode(),
    "valid and invalid together": json.dumps(
        {"description": "changed", "disk_threshold": 500}
    ).encode(),
}


@pytest.mark.parametrize("body", PATCH_BODIES.values(), ids=PATCH_BODIES.keys())
def test_invalid_patch_is_400_and_changes_nothing(
    management_api: ValidatedSession, stack: Stack, body: bytes
) -> None:
    before = _state(management_api, stack)

    response = management_api.patch(
        f"{stack.management_url}/1.0/remote-cluster/{CLUSTER}",
        data=body,
        headers={"Content-Type": "application/json"},
    )

    assert response.status_code == 400
    assert response.json()["type"] == "error"
    assert response.json()["error"]
    assert _state(management_api, stack) == before


POST_BODIES = {
    "malformed JSON": b'{"cluster_name": ',
    "name as number": json.dumps({"cluster_name": 5}).encode(),
    "empty name": json.dumps({"cluster_name": ""}).encode(),
    "unknown field": json.dumps({"cluster_name": "bad-new-1", "ttl": 5}).encode(),
    "expiry as number": json.dumps({"cluster_name": "bad-new-2", "expiry": 4102444800}).encode(),
    "expiry without offset": json.dumps(
        {"cluster_name": "bad-new-3", "expiry": "2100-01-01T00:00:00"}
    ).encode(),
    "expiry not a time": json.dumps({"cluster_name": "bad-new-4", "expiry": "tomorrow"}).encode(),
    "NUL in the description": json.dumps(
        {"cluster_name": "bad-new-5", "description": "rack\u00002"}
    ).encode(),
    "NUL in the name": json.dumps({"cluster_name": "bad-new\u00006"}).encode(),
    "name with a trailing newline": json.dumps({"cluster_name": "bad-new-7\n"}).encode(),
}


@pytest.mark.parametrize("body", POST_BODIES.values(), ids=POST_BODIES.keys())
def test_invalid_token_request_is_400_and_changes_nothing(
    management_api: ValidatedSession, stack: Stack, body: bytes
) -> None:
    before = _state(management_api, stack)

    response = management_api.post(
        f"{stack.management_url}{TOKENS}", data=body, headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 400
    assert response.json()["error"]
    assert _state(management_api, stack) == before


def test_oversized_body_is_413_and_changes_nothing(
    management_api: ValidatedSession, stack: Stack
) -> None:
    before = _state(management_api, stack)
    context = raw_tls.tls_context(stack.management_identity.cert_pem)
    headers = {
        "Content-Type": "application/json",
        "Authorization": str(management_api.headers["Authorization"]),
    }

    # The front answers from the headers; a client still sending would see the connection close.
    response = raw_tls.announce_body(
        stack.management_port,
        MANAGEMENT_DOMAIN,
        context,
        f"/1.0/remote-cluster/{CLUSTER}",
        ONE_MIB + 1,
        method="PATCH",
        headers=headers,
    )

    assert response.status == 413
    assert response.json["error_code"] == 413
    assert _state(management_api, stack) == before


def test_patch_of_unknown_name_is_404_and_changes_nothing(
    management_api: ValidatedSession, stack: Stack
) -> None:
    before = _state(management_api, stack)

    response = management_api.patch(
        f"{stack.management_url}/1.0/remote-cluster/no-such-cluster", json={}
    )

    assert response.status_code == 404
    assert _state(management_api, stack) == before


def test_revoking_unknown_name_is_404_and_changes_nothing(
    management_api: ValidatedSession, stack: Stack
) -> None:
    before = _state(management_api, stack)

    response = management_api.delete(f"{stack.management_url}{TOKENS}/no-such-token")

    assert response.status_code == 404
    assert _state(management_api, stack) == before


NUL_URLS = {
    "query of the cluster list": ("GET", "/1.0/remote-cluster?page=1%00"),
    "query parameter name": ("GET", f"{TOKENS}?a%00=1"),
    "cluster name": ("GET", "/1.0/remote-cluster/a%00b"),
    "cluster to patch": ("PATCH", "/1.0/remote-cluster/a%00b"),
    "cluster to delete": ("DELETE", "/1.0/remote-cluster/a%00b"),
    "token to revoke": ("DELETE", f"{TOKENS}/a%00b"),
}


@pytest.mark.parametrize(("method", "target"), NUL_URLS.values(), ids=NUL_URLS.keys())
def test_a_nul_character_in_the_url_is_400_and_changes_nothing(
    management_api: ValidatedSession, stack: Stack, method: str, target: str
) -> None:
    before = _state(management_api, stack)

    response = management_api.request(method, f"{stack.management_url}{target}", json={})

    assert response.status_code == 400
    assert "NUL" in response.json()["error"]
    assert "\x00" not in response.json()["error"]
    assert _state(management_api, stack) == before
