"""Enrollment through the connector, as the real MicroCloud client performs it (design D3)."""

from __future__ import annotations

import base64
import json
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from cluster_manager.settings import Settings
from cryptography.hazmat.primitives import serialization

from tests.support import raw_tls
from tools import pki
from tools.microcloud import MicroCloudClient
from tools.stack import CONNECTOR_DOMAIN, Stack


def _client(stack: Stack, token: str, cert: pki.CertKey | None = None) -> MicroCloudClient:
    return MicroCloudClient(token, cert, resolve=stack.resolve)


def _cluster_names(stack: Stack) -> list[str]:
    listing = json.loads(stack.cli("list-clusters", "--json").stdout)
    return [cluster["name"] for cluster in listing]


def _tampered(token: str, **changes: str) -> str:
    fields = {**json.loads(base64.b64decode(token)), **changes}
    return base64.b64encode(json.dumps(fields, separators=(",", ":")).encode()).decode()


def _join_body(name: str, certificate_pem: str, token: str, **extra: object) -> bytes:
    fields = {"cluster_name": name, "cluster_certificate": certificate_pem, "token": token}
    return json.dumps({**fields, **extra}).encode()


def _connector_post(stack: Stack, body: bytes, client: pki.CertKey | None = None):
    context = raw_tls.tls_context(stack.connector_identity.cert_pem, client)
    return raw_tls.request(
        stack.connector_port, CONNECTOR_DOMAIN, context, "POST", "/1.0/remote-cluster", body
    )


def test_join_with_fresh_token_enrolls_the_cluster(stack: Stack) -> None:
    token = stack.mint_token("join-ok")

    response = _client(stack, token).join()

    assert response.status == 200
    assert response.json["metadata"] == {}
    assert "join-ok" in _cluster_names(stack)


def test_join_consumes_the_token(stack: Stack) -> None:
    token = stack.mint_token("join-once")
    assert _client(stack, token).join().ok

    again = _client(stack, token).join()

    assert again.status == 404
    assert "no join token" in again.json["error"]


def test_two_concurrent_joins_with_one_token_enroll_exactly_once(stack: Stack) -> None:
    token = stack.mint_token("join-race")
    clients = [_client(stack, token) for _ in range(6)]
    statuses: list[int] = []
    start = threading.Barrier(len(clients))

    def join(client: MicroCloudClient) -> None:
        client.probe()
        start.wait()
        statuses.append(client.join().status)

    threads = [threading.Thread(target=join, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(statuses).count(200) == 1
    assert _cluster_names(stack).count("join-race") == 1


def test_join_with_wrong_secret_is_forbidden(stack: Stack) -> None:
    token = stack.mint_token("join-bad-secret")
    forged = _tampered(token, secret="0" * 64)

    response = _client(stack, forged).join()

    assert response.status == 403
    assert response.json["error"] == "Forbidden"
    assert "join-bad-secret" not in _cluster_names(stack)


def test_join_with_expired_token_is_forbidden(stack: Stack) -> None:
    token = stack.mint_token("join-expired", expires_in=1)
    time.sleep(1.5)

    response = _client(stack, token).join()

    assert response.status == 403
    assert response.json["error"] == "join token has expired"
    assert "join-expired" not in _cluster_names(stack)


def test_join_whose_tls_certificate_differs_from_the_body_is_forbidden(stack: Stack) -> None:
    token = stack.mint_token("join-mismatch")
    body = _join_body("join-mismatch", pki.cluster_certificate("claimed").cert_pem, token)

    response = _connector_post(stack, body, client=pki.cluster_certificate("presented"))

    assert response.status == 403
    assert "does not match" in response.json["error"]
    assert "join-mismatch" not in _cluster_names(stack)


def test_join_without_a_tls_client_certificate_is_forbidden_saying_one_is_required(
    stack: Stack,
) -> None:
    # microcloudd always presents its cluster certificate; without it the caller has not
    # proved it holds the key of the certificate it asks to enroll (design D3).
    token = stack.mint_token("join-no-tls-cert")
    body = _join_body("join-no-tls-cert", pki.cluster_certificate("no-tls-cert").cert_pem, token)

    response = _connector_post(stack, body)

    assert response.status == 403
    assert response.json["error"] == "a TLS client certificate is required to join"
    assert "join-no-tls-cert" not in _cluster_names(stack)


def test_a_join_refused_for_a_missing_client_certificate_leaves_the_token_usable(
    stack: Stack,
) -> None:
    token = stack.mint_token("join-cert-later")
    cert = pki.cluster_certificate("cert-later")
    assert (
        _connector_post(stack, _join_body("join-cert-later", cert.cert_pem, token)).status == 403
    )

    response = _client(stack, token, cert).join()

    assert response.status == 200
    assert "join-cert-later" in _cluster_names(stack)


def test_join_presenting_an_expired_tls_certificate_is_forbidden(stack: Stack) -> None:
    token = stack.mint_token("join-old-tls-cert")
    expired = pki.cluster_certificate("old", not_before=_days_ago(10), not_after=_days_ago(1))

    response = _client(stack, token, expired).join()

    assert response.status == 403
    assert "expired" in response.json["error"]
    assert "join-old-tls-cert" not in _cluster_names(stack)


def test_join_with_an_expired_cluster_certificate_in_the_body_is_rejected(stack: Stack) -> None:
    token = stack.mint_token("join-old-cert")
    expired = pki.cluster_certificate("old", not_before=_days_ago(10), not_after=_days_ago(1))
    body = _join_body("join-old-cert", expired.cert_pem, token)

    response = _connector_post(stack, body)

    assert response.status == 400
    assert "expired" in response.json["error"]


def test_join_with_a_certificate_already_enrolled_is_a_conflict(stack: Stack) -> None:
    cert = pki.cluster_certificate("shared")
    assert _client(stack, stack.mint_token("join-first"), cert).join().ok
    token = stack.mint_token("join-second")

    response = _client(stack, token, cert).join()

    assert response.status == 409
    assert "already enrolled" in response.json["error"]
    assert "join-second" not in _cluster_names(stack)


def test_join_with_bad_pem_is_a_bad_request_and_keeps_the_token(stack: Stack) -> None:
    token = stack.mint_token("join-bad-pem")
    body = _join_body("join-bad-pem", "not a cert", token)

    response = _connector_post(stack, body)

    assert response.status == 400
    assert response.json["error"].startswith("invalid certificate")
    assert _client(stack, token).join().ok


def test_join_with_malformed_json_is_a_bad_request(stack: Stack) -> None:
    response = _connector_post(stack, b'{"cluster_name": ')

    assert response.status == 400
    assert response.json["type"] == "error"
    assert response.json["error_code"] == 400


def test_join_with_a_number_for_the_cluster_name_is_a_bad_request_naming_it(
    stack: Stack,
) -> None:
    # Go's decoder refuses a number for a string field; so do we, and the token survives.
    token = stack.mint_token("join-number")
    body = _join_body(
        "join-number", pki.cluster_certificate("number").cert_pem, token, cluster_name=5
    )

    response = _connector_post(stack, body)

    assert response.status == 400
    assert response.json["error"].startswith("invalid request: cluster_name:")
    assert _client(stack, token).join().ok


@pytest.mark.parametrize("how", ["null", "absent"])
def test_join_with_a_null_or_absent_cluster_name_says_the_name_is_required(
    stack: Stack, how: str
) -> None:
    # Go leaves a null or missing string at "", and upstream's handler then says so.
    fields = json.loads(_join_body(f"join-{how}", pki.cluster_certificate(how).cert_pem, "t"))
    if how == "null":
        fields["cluster_name"] = None
    else:
        del fields["cluster_name"]

    response = _connector_post(stack, json.dumps(fields).encode())

    assert response.status == 400
    assert response.json["error"] == "remote cluster name is required"


def test_join_with_fields_from_a_newer_microcloud_enrolls_the_cluster(stack: Stack) -> None:
    # Go's decoder, which upstream's server uses, ignores fields it does not know.
    token = stack.mint_token("join-extra")
    cert = pki.cluster_certificate("x")
    body = _join_body("join-extra", cert.cert_pem, token, cluster_uuid="u-1")

    response = _connector_post(stack, body, client=cert)

    assert response.status == 200
    assert "join-extra" in _cluster_names(stack)


def test_join_with_oversized_body_is_refused_by_size(stack: Stack) -> None:
    context = raw_tls.tls_context(stack.connector_identity.cert_pem)
    over_the_default = Settings(database_url="", connector_domain="").connector_max_body_bytes + 1

    response = raw_tls.announce_body(
        stack.connector_port, CONNECTOR_DOMAIN, context, "/1.0/remote-cluster", over_the_default
    )

    assert response.status == 413
    assert response.json["error"] == "request body too large"


def test_join_for_a_name_without_token_is_not_found(stack: Stack) -> None:
    other = stack.mint_token("join-has-token")
    forged = _tampered(other, server_name="join-never-minted")

    response = _client(stack, forged).join()

    assert response.status == 404


def _stored_certificate(stack: Stack, name: str) -> str:
    response = stack.management_session().get(f"{stack.management_url}/1.0/remote-cluster/{name}")
    assert response.status_code == 200, response.text
    return response.json()["metadata"]["cluster_certificate"]


def _rewrapped(pem: str, width: int = 76, newline: str = "\r\n") -> str:
    # The same certificate as another encoder may write it: other line width, CRLF, blanks.
    body = "".join(pem.strip().splitlines()[1:-1])
    lines = [body[i : i + width] for i in range(0, len(body), width)]
    text = newline.join(["-----BEGIN CERTIFICATE-----", *lines, "-----END CERTIFICATE-----"])
    return f"  {newline}{text}{newline}\t"


def test_join_with_two_certificates_in_cluster_certificate_is_a_bad_request_keeping_the_token(
    stack: Stack,
) -> None:
    token = stack.mint_token("join-two-pems")
    cert = pki.cluster_certificate("two-pems")
    pems = cert.cert_pem + pki.cluster_certificate("second").cert_pem

    response = _connector_post(stack, _join_body("join-two-pems", pems, token), client=cert)

    assert response.status == 400
    assert response.json["error"] == (
        "invalid certificate: cluster_certificate must hold exactly one PEM certificate"
    )
    assert _client(stack, token, cert).join().ok


@pytest.mark.parametrize(
    "wrapping", ["before {pem}", "{pem}after", "{pem}\n-----BEGIN PRIVATE KEY-----\n"]
)
def test_join_with_text_around_the_certificate_is_a_bad_request_keeping_the_token(
    stack: Stack, wrapping: str, request: pytest.FixtureRequest
) -> None:
    name = f"join-wrapped-{request.node.callspec.indices['wrapping']}"
    token = stack.mint_token(name)
    cert = pki.cluster_certificate(name)
    body = _join_body(name, wrapping.format(pem=cert.cert_pem), token)

    response = _connector_post(stack, body, client=cert)

    assert response.status == 400
    assert response.json["error"] == (
        "invalid certificate: cluster_certificate must hold exactly one PEM certificate"
    )
    assert _client(stack, token, cert).join().ok


def test_join_with_a_ca_certificate_is_a_bad_request_keeping_the_token(stack: Stack) -> None:
    token = stack.mint_token("join-ca-cert")
    authority = pki.make_ca("join-ca")

    response = _connector_post(
        stack, _join_body("join-ca-cert", authority.cert_pem, token), client=authority
    )

    assert response.status == 400
    assert response.json["error"] == (
        "invalid certificate: cluster_certificate must not be a CA certificate"
    )
    assert _client(stack, token).join().ok


def test_the_enrolled_certificate_is_stored_as_normalized_pem(stack: Stack) -> None:
    token = stack.mint_token("join-normalized")
    cert = pki.cluster_certificate("normalized")
    body = _join_body("join-normalized", _rewrapped(cert.cert_pem), token)
    assert _connector_post(stack, body, client=cert).status == 200

    stored = _stored_certificate(stack, "join-normalized")

    assert stored == cert.certificate.public_bytes(serialization.Encoding.PEM).decode()


def test_join_with_a_trailing_newline_in_the_name_is_a_bad_request(stack: Stack) -> None:
    # "fz-nl" has a token; "fz-nl\n" must not pass the name rule and become a second name.
    token = stack.mint_token("join-nl")
    cert = pki.cluster_certificate("nl")

    response = _connector_post(stack, _join_body("join-nl\n", cert.cert_pem, token), client=cert)

    assert response.status == 400
    assert response.json["error"].startswith("cluster_name must be 1-63 letters")
    assert _client(stack, token, cert).join().ok


@pytest.mark.parametrize("field", ["cluster_name", "cluster_certificate", "token"])
def test_join_with_a_nul_character_in_a_field_is_a_bad_request_naming_it(
    stack: Stack, field: str
) -> None:
    name = f"join-nul-{field.replace('_', '-')}"
    token = stack.mint_token(name)
    cert = pki.cluster_certificate(name)
    fields = {"cluster_name": name, "cluster_certificate": cert.cert_pem, "token": token}
    fields[field] = fields[field][:20] + "\x00" + fields[field][20:]

    response = _connector_post(stack, json.dumps(fields).encode(), client=cert)

    assert response.status == 400
    assert field in response.json["error"]
    assert "NUL" in response.json["error"]
    assert _client(stack, token, cert).join().ok


def _days_ago(days: int) -> datetime:
    return datetime.now(UTC) - timedelta(days=days)
