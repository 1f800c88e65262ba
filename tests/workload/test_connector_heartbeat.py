"""Heartbeats and leaving, authenticated by the cluster certificate on every request (D4)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support import raw_tls
from tools import pki
from tools.microcloud import MicroCloudClient
from tools.stack import CONNECTOR_DOMAIN, Stack

STATUS_PATH = "/1.0/remote-cluster/status"
HEARTBEAT = {
    "cpu_total_count": 8,
    "cpu_load_1": "0.1",
    "cpu_load_5": "0.2",
    "cpu_load_15": "0.3",
    "memory_total_amount": 1024,
    "memory_usage": 512,
    "instance_statuses": [{"status": "running", "count": 1}, {"status": "stopped", "count": 2}],
    "member_statuses": [{"status": "active", "count": 1}, {"status": "inactive", "count": 2}],
    "storage_pool_usages": [
        {"name": "default", "member": "", "total": 1024, "usage": 512},
        {"name": "data", "member": "", "total": 2048, "usage": 1024},
    ],
}


def _enrolled(stack: Stack, name: str, cert: pki.CertKey | None = None) -> MicroCloudClient:
    client = MicroCloudClient(stack.mint_token(name), cert, resolve=stack.resolve)
    assert client.join().ok
    return client


def _heartbeat_without_certificate(stack: Stack, headers: dict[str, str] | None = None):
    context = raw_tls.tls_context(stack.connector_identity.cert_pem)
    body = json.dumps(HEARTBEAT).encode()
    return raw_tls.request(
        stack.connector_port, CONNECTOR_DOMAIN, context, "POST", STATUS_PATH, body, headers
    )


def _cluster(stack: Stack, name: str) -> dict:
    response = stack.management_session().get(f"{stack.management_url}/1.0/remote-cluster/{name}")
    assert response.status_code == 200, response.text
    return response.json()["metadata"]


def test_heartbeat_is_accepted_with_interval_and_address(stack: Stack) -> None:
    client = _enrolled(stack, "hb-ok")

    response = client.heartbeat(HEARTBEAT)

    assert response.status == 200
    assert response.json["metadata"] == {
        "next_update_in_seconds": "60",
        "cluster_manager_address": stack.connector_address,
    }


def test_heartbeat_details_are_stored_as_sent(stack: Stack) -> None:
    client = _enrolled(stack, "hb-stored")

    assert client.heartbeat(HEARTBEAT).ok

    cluster = _cluster(stack, "hb-stored")
    assert cluster["cpu_total_count"] == 8
    assert cluster["memory_total_amount"] == 1024
    assert cluster["instance_statuses"] == HEARTBEAT["instance_statuses"]
    assert cluster["member_statuses"] == HEARTBEAT["member_statuses"]
    assert cluster["storage_pool_usages"] == HEARTBEAT["storage_pool_usages"]
    assert cluster["member_count"] == 3
    assert cluster["instance_count"] == 3
    assert cluster["last_heartbeat_at"] is not None


def test_heartbeat_with_null_lists_is_accepted_as_empty(stack: Stack) -> None:
    client = _enrolled(stack, "hb-nil")

    response = client.heartbeat({"ceph_statuses": None, "server_metrics": None})

    assert response.status == 200
    assert _cluster(stack, "hb-nil")["ceph_statuses"] == []


def test_heartbeat_with_fields_from_a_newer_microcloud_is_accepted(stack: Stack) -> None:
    client = _enrolled(stack, "hb-newer")

    response = client.heartbeat({**HEARTBEAT, "gpu_count": 4})

    assert response.status == 200


MEMBER_URL = "https://10.0.0.1:8443"
BALANCER_URL = "https://lxd.example.com"


@pytest.mark.parametrize(
    ("links", "shown"),
    [
        ({"lxd_url": BALANCER_URL}, BALANCER_URL),
        ({"ui_url": MEMBER_URL, "lxd_url": BALANCER_URL}, BALANCER_URL),
        ({"ui_url": MEMBER_URL, "lxd_url": ""}, MEMBER_URL),
    ],
    ids=["lxd-url-only", "lxd-url-wins", "empty-lxd-url-falls-back"],
)
def test_the_lxd_ui_link_is_lxd_url_when_sent_else_ui_url(
    stack: Stack, links: dict[str, str], shown: str, request: pytest.FixtureRequest
) -> None:
    # MicroCloud is renaming ui_url to lxd_url (microcloud PR #1539); both must show.
    name = "hb-link-" + request.node.callspec.id
    client = _enrolled(stack, name)

    assert client.heartbeat({**HEARTBEAT, **links}).ok

    assert _cluster(stack, name)["ui_url"] == shown


def test_heartbeat_with_wrong_types_is_a_bad_request_and_stores_nothing(stack: Stack) -> None:
    client = _enrolled(stack, "hb-bad-types")

    response = client.heartbeat({"memory_usage": "lots"})

    assert response.status == 400
    assert "memory_usage" in response.json["error"]
    assert _cluster(stack, "hb-bad-types")["last_heartbeat_at"] is None


def test_heartbeat_with_malformed_json_is_a_bad_request(stack: Stack) -> None:
    client = _enrolled(stack, "hb-malformed")

    response = client.heartbeat(b"{not json")

    assert response.status == 400


def test_heartbeat_without_client_certificate_is_forbidden(stack: Stack) -> None:
    _enrolled(stack, "hb-no-cert")

    response = _heartbeat_without_certificate(stack)

    assert response.status == 403
    assert response.json["error"] == "Forbidden"


def test_heartbeat_with_forged_certificate_header_is_forbidden(stack: Stack) -> None:
    cert = pki.cluster_certificate("victim")
    _enrolled(stack, "hb-forged", cert)

    response = _heartbeat_without_certificate(
        stack, headers={"X-Client-Cert": cert.cert_pem.replace("\n", "%0A")}
    )

    assert response.status == 403


def test_heartbeat_with_unknown_certificate_is_forbidden(stack: Stack) -> None:
    _enrolled(stack, "hb-known")
    stranger = MicroCloudClient(stack.mint_token("hb-stranger"), resolve=stack.resolve)

    response = stranger.heartbeat(HEARTBEAT)

    assert response.status == 403


def test_heartbeat_presenting_the_connector_certificate_is_forbidden(stack: Stack) -> None:
    # Reference §11.1 case 11: a certificate the manager knows, but not an enrolled cluster's.
    _enrolled(stack, "hb-known-too")
    impostor = MicroCloudClient(
        stack.mint_token("hb-impostor"), stack.connector_identity, resolve=stack.resolve
    )

    response = impostor.heartbeat(HEARTBEAT)

    assert response.status == 403


def test_heartbeat_from_removed_cluster_is_forbidden(stack: Stack) -> None:
    client = _enrolled(stack, "hb-removed")
    assert client.heartbeat(HEARTBEAT).ok
    stack.remove_cluster("hb-removed")

    response = client.heartbeat(HEARTBEAT)

    assert response.status == 403


def test_leave_removes_the_cluster_and_its_next_heartbeat_is_forbidden(stack: Stack) -> None:
    client = _enrolled(stack, "hb-leaving")

    left = client.leave()
    after = client.heartbeat(HEARTBEAT)

    assert left.status == 200
    assert after.status == 403
    listing = json.loads(stack.cli("list-clusters", "--json").stdout)
    assert "hb-leaving" not in [cluster["name"] for cluster in listing]


def test_leave_from_unknown_certificate_is_forbidden(stack: Stack) -> None:
    stranger = MicroCloudClient(stack.mint_token("hb-unknown-leave"), resolve=stack.resolve)

    response = stranger.leave()

    assert response.status == 403


def test_heartbeat_through_a_second_unit_right_after_joining_succeeds(
    stack: Stack, tmp_path: Path
) -> None:
    with Stack(
        tmp_path, stack.database_url, connector_identity=stack.connector_identity
    ) as second:
        client = _enrolled(stack, "hb-second-unit")
        via_second = MicroCloudClient(
            client.token_text,
            client.cluster_cert,
            resolve={stack.connector_address: ("127.0.0.1", second.connector_port)},
        )

        response = via_second.heartbeat(HEARTBEAT)

        assert response.status == 200
