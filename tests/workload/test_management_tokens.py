"""Join tokens through the management API: minting, listing, revoking (reference §1.1, §2.1)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import psycopg

from tests.support.clusters import enroll
from tests.support.openapi import ValidatedSession
from tools.jointoken import JoinToken
from tools.microcloud import MicroCloudClient
from tools.stack import Stack

TOKENS = "/1.0/remote-cluster-join-token"


def _mint(api: ValidatedSession, stack: Stack, **body: object) -> str:
    response = api.post(f"{stack.management_url}{TOKENS}", json=body)
    assert response.status_code == 200, response.text
    return response.json()["metadata"]["token"]


def _listed(api: ValidatedSession, stack: Stack) -> dict[str, dict]:
    response = api.get(f"{stack.management_url}{TOKENS}")
    assert response.status_code == 200
    return {token["cluster_name"]: token for token in response.json()["metadata"]}


def _configured_fingerprint(api: ValidatedSession, stack: Stack) -> str:
    metadata = api.get(f"{stack.management_url}/1.0/configuration").json()["metadata"]
    return metadata["cluster_connector_fingerprint"]["value"]


def test_minted_token_decodes_to_what_microcloud_needs(
    management_api: ValidatedSession, stack: Stack
) -> None:
    token = JoinToken.decode(_mint(management_api, stack, cluster_name="round-trip"))

    assert len(token.secret) == 64
    assert int(token.secret, 16) >= 0
    assert token.addresses == (stack.connector_address,)
    assert token.server_name == "round-trip"
    assert datetime.fromisoformat(token.expires_at) > datetime.now(UTC)


def test_token_fingerprint_is_the_connector_fingerprint(
    management_api: ValidatedSession, stack: Stack
) -> None:
    token = JoinToken.decode(_mint(management_api, stack, cluster_name="fingerprint-check"))

    from_cli = json.loads(stack.cli("show-connector-fingerprint", "--json").stdout)
    assert token.fingerprint == _configured_fingerprint(management_api, stack)
    assert token.fingerprint == from_cli["fingerprint"]


def test_token_without_expiry_lives_for_the_default(
    management_api: ValidatedSession, stack: Stack
) -> None:
    before = datetime.now(UTC)

    token = JoinToken.decode(_mint(management_api, stack, cluster_name="default-expiry"))

    expected = before + timedelta(seconds=86400)
    assert abs(datetime.fromisoformat(token.expires_at) - expected) < timedelta(seconds=30)


def test_token_keeps_the_requested_expiry(management_api: ValidatedSession, stack: Stack) -> None:
    expiry = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=24)

    _mint(
        management_api,
        stack,
        cluster_name="explicit-expiry",
        description="for rack 7",
        expiry=expiry.isoformat(),
    )

    listed = _listed(management_api, stack)["explicit-expiry"]
    assert datetime.fromisoformat(listed["expiry"]) == expiry
    assert listed["description"] == "for rack 7"
    assert listed["expired"] is False


def test_list_never_shows_the_token_text(management_api: ValidatedSession, stack: Stack) -> None:
    token = _mint(management_api, stack, cluster_name="secret-list")

    response = management_api.get(f"{stack.management_url}{TOKENS}")

    assert "secret-list" in response.text
    assert token not in response.text
    assert JoinToken.decode(token).secret not in response.text


def test_only_the_token_hash_is_stored(management_api: ValidatedSession, stack: Stack) -> None:
    token = _mint(management_api, stack, cluster_name="hash-only")

    with psycopg.connect(stack.database_url) as conn:
        rows = conn.execute("SELECT * FROM join_tokens WHERE cluster_name = 'hash-only'")
        stored = repr(rows.fetchall())
    assert token not in stored
    assert JoinToken.decode(token).secret not in stored


def test_minted_token_enrolls_a_microcloud(management_api: ValidatedSession, stack: Stack) -> None:
    token = _mint(management_api, stack, cluster_name="api-minted", description="from the API")

    joined = MicroCloudClient(token, resolve=stack.resolve).join()

    cluster = management_api.get(f"{stack.management_url}/1.0/remote-cluster/api-minted")
    assert joined.ok
    assert cluster.json()["metadata"]["description"] == "from the API"
    assert "api-minted" not in _listed(management_api, stack)


def test_post_without_cluster_name_is_400(management_api: ValidatedSession, stack: Stack) -> None:
    before = _listed(management_api, stack)

    response = management_api.post(
        f"{stack.management_url}{TOKENS}", json={"description": "no name"}
    )

    assert response.status_code == 400
    assert response.json()["error"] == "cluster name is required"
    assert _listed(management_api, stack) == before


def test_post_with_past_expiry_is_400(management_api: ValidatedSession, stack: Stack) -> None:
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()

    response = management_api.post(
        f"{stack.management_url}{TOKENS}", json={"cluster_name": "too-late", "expiry": past}
    )

    assert response.status_code == 400
    assert response.json()["error"] == "expiry date must be in the future"
    assert "too-late" not in _listed(management_api, stack)


def test_post_with_invalid_name_is_400(management_api: ValidatedSession, stack: Stack) -> None:
    response = management_api.post(
        f"{stack.management_url}{TOKENS}", json={"cluster_name": "no spaces/allowed"}
    )

    assert response.status_code == 400
    assert "no spaces/allowed" not in _listed(management_api, stack)


def test_post_for_a_name_with_a_token_is_409(
    management_api: ValidatedSession, stack: Stack
) -> None:
    first = _mint(management_api, stack, cluster_name="twice")

    response = management_api.post(
        f"{stack.management_url}{TOKENS}", json={"cluster_name": "twice"}
    )

    assert response.status_code == 409
    assert response.json()["error"] == "a join token for cluster twice already exists"
    # The first token still works: the refused request replaced nothing.
    assert MicroCloudClient(first, resolve=stack.resolve).join().ok


def test_post_for_an_enrolled_name_is_one_409_body(
    management_api: ValidatedSession, stack: Stack
) -> None:
    enroll(stack, "already-in")

    response = management_api.post(
        f"{stack.management_url}{TOKENS}", json={"cluster_name": "already-in"}
    )

    assert response.status_code == 409
    assert response.text.count('"type"') == 1
    assert response.json()["error"] == "cluster already-in is already enrolled"
    assert "already-in" not in _listed(management_api, stack)


def test_delete_revokes_the_token(management_api: ValidatedSession, stack: Stack) -> None:
    token = _mint(management_api, stack, cluster_name="revoke-me")

    response = management_api.delete(f"{stack.management_url}{TOKENS}/revoke-me")

    assert response.status_code == 200
    assert "revoke-me" not in _listed(management_api, stack)
    assert MicroCloudClient(token, resolve=stack.resolve).join().status == 404


def test_delete_missing_token_is_404(management_api: ValidatedSession, stack: Stack) -> None:
    response = management_api.delete(f"{stack.management_url}{TOKENS}/never-minted")

    assert response.status_code == 404
    assert response.json()["error"] == "no join token for cluster never-minted"
